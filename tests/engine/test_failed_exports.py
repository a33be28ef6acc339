"""Failed exports: a run whose exports failed does not read "complete" (admin, API, run_schedule),
and a failure that a newer export of the same record replaced is superseded, so it is counted
nowhere any more (run, destination, admin, API, retries)."""

from __future__ import annotations

import importlib
import io
import sqlite3

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from core import models as m
from core.choices import ExportState, RunState
from core.engine.exports import exports_send
from core.selectors import status_summary
from core.services.exports import exports_retry_failed
from tests.engine import fakes
from tests.engine.conftest import Shop
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _one_attempt(db):
    m.Setting.objects.update_or_create(
        plugin="core", key="exports-max-attempts", defaults={"value": "1"}
    )


@pytest.fixture
def picky_crm(shop: Shop) -> Shop:
    """The CRM refuses a first name with a digit in it (a CHECK constraint): such a record fails
    there. Bob's is typed with a zero."""
    with sqlite3.connect(shop.dst) as conn:
        conn.execute("DROP TABLE crm")
        conn.execute(
            "CREATE TABLE crm (id TEXT PRIMARY KEY, email TEXT, first_name TEXT CHECK (first_name NOT GLOB '*[0-9]*'), "
            "ltv REAL, purchase_count INTEGER, total_spend REAL, last_purchase_at TEXT)"
        )
    shop.src_sql("UPDATE users SET first_name = 'B0b' WHERE id = 2")  # the typo
    return shop


def failed_count(destination: m.Destination) -> int:
    [row] = [d for d in status_summary()["destinations"] if d["name"] == destination.name]
    return row["failed"]


def test_a_run_whose_exports_failed_does_not_read_complete(picky_crm, admin_client):
    shop = picky_crm
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE and run.exports_failed == 1
    assert run.has_failed_exports and run.outcome == "complete, 1 export failed"
    assert str(run).endswith("complete, 1 export failed)")

    listing = admin_client.get(reverse("admin:core_run_changelist")).content.decode()
    assert "complete, 1 export failed" in listing
    only_failed = admin_client.get(reverse("admin:core_run_changelist"), {"failed_exports": "yes"})
    assert list(only_failed.context["cl"].result_list) == [run]
    page = admin_client.get(reverse("admin:core_run_change", args=[run.pk])).content.decode()
    assert "complete, 1 export failed" in page

    body = admin_client.get(f"/api/v1/runs/{run.pk}/").json()
    assert body["state"] == "complete" and body["exports_failed"] == 1
    assert body["has_failed_exports"] is True and body["outcome"] == "complete, 1 export failed"
    listed = admin_client.get("/api/v1/runs/", {"has_failed_exports": "true"}).json()
    assert [r["id"] for r in listed["results"]] == [run.pk]


def test_run_schedule_summary_says_how_many_exports_failed(picky_crm):
    out = io.StringIO()
    call_command("run_schedule", "users", stdout=out)
    run = m.Run.objects.get(source=picky_crm.users)
    assert (
        f"users: run {run.pk} complete, 1 export failed: exports created 4, sent 3, failed 1"
        in out.getvalue()
    )


def test_fixing_the_typo_clears_the_failure_everywhere(picky_crm, admin_client):
    shop = picky_crm
    first = sync(shop.users_schedule)
    failed = m.Export.objects.get(state=ExportState.FAILED)
    assert "CHECK constraint" in failed.error_message
    assert failed_count(shop.destination) == 1

    shop.src_sql("UPDATE users SET first_name = 'Bob', updated_at = '2026-02-01' WHERE id = 2")
    second = sync(shop.users_schedule)
    assert second.exports_failed == 0 and second.outcome == "complete"
    assert [r["first_name"] for r in shop.dst_rows()] == ["Ada", "Bob", "Cy", "Dee"]

    failed.refresh_from_db()
    first.refresh_from_db()
    # The failure is history now: superseded, with its reason kept, and counted nowhere.
    assert failed.state == ExportState.SUPERSEDED and "CHECK constraint" in failed.error_message
    assert (
        first.exports_failed == 0 and first.outcome == "complete" and not first.has_failed_exports
    )
    assert failed_count(shop.destination) == 0
    assert not m.Export.objects.filter(state=ExportState.FAILED).exists()
    assert admin_client.get(f"/api/v1/runs/{first.pk}/").json()["has_failed_exports"] is False
    destinations = (
        admin_client.get(reverse("admin:core_destination_changelist")).context["cl"].result_list
    )
    assert [d.n_failed for d in destinations] == [0]
    assert exports_retry_failed(destination=shop.destination) == 0


def test_a_failure_recorded_after_a_newer_export_was_queued_is_superseded(shop):
    """The sender finds the newer export when it records the failure (the build came first)."""
    from tests.engine.test_exports import add_memory_destination

    fakes.reset()
    dest = add_memory_destination(shop, "late")
    run = sync(shop.users_schedule, export=False)
    ada = m.Export.objects.get(
        destination=dest,
        record__properties__unique_value="1",
        record__properties__property=shop.props["user_id"],
    )

    def change_ada_while_her_export_is_sent():
        shop.src_sql("UPDATE users SET ltv = 950, updated_at = '2026-02-01' WHERE id = 1")
        sync(shop.users_schedule, export=False)

    fakes.MemoryDestination.SCRIPT["late"] = [
        ("call", change_ada_while_her_export_is_sent, ("info", 1))
    ]
    summary = exports_send(destination_id=dest.pk)
    assert summary.superseded == 1 and summary.failed == 0 and summary.sent == 3
    ada.refresh_from_db()
    assert ada.state == ExportState.SUPERSEDED and ada.error_message == "rejected 1"
    run.refresh_from_db()
    assert run.exports_failed == 0 and run.exports_sent == 3
    while exports_send(destination_id=dest.pk).claimed:
        pass
    assert fakes.MemoryDestination.STORE["late"]["1"]["ltv"] == 950.0
    fakes.reset()


def replaced_failure(shop: Shop, run: m.Run, key: str) -> m.Export:
    """A failed export of the record `key` followed by a newer complete one, as an earlier
    version left them (it did not supersede failures)."""
    record = m.Record.objects.get(
        properties__unique_value=key, properties__property=shop.props["user_id"]
    )
    failed = m.Export.objects.create(
        destination=shop.destination,
        record=record,
        run=run,
        state=ExportState.FAILED,
        error_message="refused",
    )
    last = m.Export.objects.filter(
        destination=shop.destination, record=record, state=ExportState.COMPLETE
    ).first()
    m.Export.objects.create(
        destination=shop.destination,
        record=record,
        run=run,
        state=ExportState.COMPLETE,
        new_properties=last.new_properties,
        new_groups=last.new_groups,
    )
    return failed


def test_retrying_failed_exports_supersedes_the_replaced_ones(shop):
    """A failure whose record has a newer export is not sent again: the retry marks it
    superseded and takes it off its run's count."""
    run = sync(shop.users_schedule)
    older = replaced_failure(shop, run, "1")
    m.Run.objects.filter(pk=run.pk).update(exports_failed=1)
    assert exports_retry_failed(destination=shop.destination) == 0
    older.refresh_from_db()
    run.refresh_from_db()
    assert older.state == ExportState.SUPERSEDED and older.error_message == "refused"
    assert run.exports_failed == 0


def test_the_migration_supersedes_failures_stored_before(shop):
    run = sync(shop.users_schedule)
    stale = replaced_failure(shop, run, "1")
    alone = m.Export.objects.create(  # Bob's newest export: it stays failed
        destination=shop.destination,
        record=m.Record.objects.get(
            properties__unique_value="2", properties__property=shop.props["user_id"]
        ),
        run=run,
        state=ExportState.FAILED,
    )
    m.Run.objects.filter(pk=run.pk).update(exports_failed=2)
    migration = importlib.import_module("core.migrations.0017_export_superseded_state")
    migration.supersede_replaced_failures(apps, None)
    migration.supersede_replaced_failures(apps, None)  # again: nothing more
    stale.refresh_from_db()
    alone.refresh_from_db()
    run.refresh_from_db()
    assert (stale.state, alone.state, run.exports_failed) == (
        ExportState.SUPERSEDED,
        ExportState.FAILED,
        1,
    )
