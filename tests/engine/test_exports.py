"""Exports: sync modes, superseding, retries with backoff, throttling, failing destinations."""
from __future__ import annotations

import pytest

from core import models as m
from core.choices import DestinationCollection, ExportState, RunState, SyncMode
from core.engine.exports import exports_send
from tests.engine import fakes
from tests.engine.helpers import sync, sync_all

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _reset_memory():
    fakes.reset()
    yield
    fakes.reset()


@pytest.fixture(autouse=True, params=["lease", "held"])
def claims(request, monkeypatch):
    """Every test here runs with the run's sends claiming by lease and, on PostgreSQL, by row
    lock (exports_send's hold=True, what a run's sender process does)."""
    from django.db import connection

    from core.engine import delivery as engine_delivery
    from core.engine import exports as engine_exports

    if request.param == "held":
        if connection.vendor != "postgresql":
            pytest.skip("claims by row lock are PostgreSQL's")
        monkeypatch.setattr(
            engine_delivery, "exports_send", lambda **kw: engine_exports.exports_send(**kw, hold=True)
        )
    return request.param


@pytest.fixture(autouse=True)
def _fast_retries(db):
    m.Setting.objects.update_or_create(plugin="core", key="exports-retry-base-seconds", defaults={"value": "0.01"})


def add_memory_destination(shop, name: str, *, sync_mode=SyncMode.SYNC, collection=DestinationCollection.MODEL, group=None):
    app, _ = m.App.objects.get_or_create(name="memory", defaults={"type": "memory"})
    dest = m.Destination.objects.create(
        name=name, app=app, model=shop.model, type="memory-export", sync_mode=sync_mode,
        collection=collection, group=group, options={"name": name},
    )
    m.DestinationMapping.objects.create(destination=dest, remote_key="id", property=shop.props["user_id"])
    m.DestinationMapping.objects.create(destination=dest, remote_key="ltv", property=shop.props["ltv"])
    m.DestinationGroupMembership.objects.create(destination=dest, group=shop.high_value, remote_key="vip")
    return dest


def store(name):
    return fakes.MemoryDestination.STORE.get(name, {})


@pytest.mark.parametrize("mode", [SyncMode.SYNC, SyncMode.ADDITIVE, SyncMode.ENRICH])
def test_sync_mode_matrix(shop, mode):
    """new record / changed record / record leaves the tracked group / record deleted."""
    m.Destination.objects.filter(pk=shop.destination.pk).delete()
    dest = add_memory_destination(shop, "d", sync_mode=mode, collection=DestinationCollection.GROUP, group=shop.high_value)
    if mode == SyncMode.ENRICH:
        fakes.MemoryDestination.STORE["d"] = {"1": {"id": 1, "ltv": 1.0}}  # only Ada exists there
    sync(shop.users_schedule)
    # new records (members of the tracked group: Ada 900, Cy 600)
    expected_new = {"1", "3"} if mode != SyncMode.ENRICH else {"1"}
    assert set(store("d")) == expected_new
    assert store("d")["1"]["ltv"] == 900.0
    # changed record
    shop.src_sql("UPDATE users SET ltv = 950, updated_at = '2026-05-01' WHERE id = 1")
    sync(shop.users_schedule)
    assert store("d")["1"]["ltv"] == 950.0
    # record leaves the tracked group
    shop.src_sql("UPDATE users SET ltv = 10, updated_at = '2026-05-02' WHERE id = 1")
    sync(shop.users_schedule)
    if mode == SyncMode.SYNC:
        assert "1" not in store("d")
    else:
        assert "1" in store("d") and fakes.MemoryDestination.GROUPS["d"]["1"] == []
    # record deleted from the source (confirm records, full run)
    m.Schedule.objects.filter(pk=shop.users_schedule.pk).update(confirm_records=True)
    shop.src_sql("DELETE FROM users WHERE id = 3")
    run = sync(m.Schedule.objects.get(pk=shop.users_schedule.pk), full=True)
    assert run.records_deleted == 1
    if mode == SyncMode.SYNC:
        assert "3" not in store("d")
    elif mode == SyncMode.ADDITIVE:
        assert "3" in store("d") and fakes.MemoryDestination.GROUPS["d"]["3"] == []
    else:
        assert "3" not in store("d")  # never created in enrich mode
    assert not m.GroupMember.objects.filter(record__state="deleted", left_at__isnull=True).exists()
    assert dest.exports.filter(state__in=[ExportState.PENDING, ExportState.PROCESSING]).count() == 0


def test_retries_with_backoff_then_success(shop):
    dest = add_memory_destination(shop, "flaky")
    fakes.MemoryDestination.SCRIPT["flaky"] = ["down", "down"]
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE
    assert set(store("flaky")) == {"1", "2", "3", "4"}
    attempts = set(dest.exports.values_list("attempts", flat=True))
    assert attempts == {3}


def test_export_fails_after_max_attempts(shop):
    dest = add_memory_destination(shop, "broken")
    m.Setting.objects.update_or_create(plugin="core", key="exports-max-attempts", defaults={"value": "3"})
    fakes.MemoryDestination.SCRIPT["broken"] = ["down"] * 10
    run = sync(shop.users_schedule)
    assert dest.exports.filter(state=ExportState.FAILED).count() == 4
    assert set(dest.exports.values_list("attempts", flat=True)) == {3}
    assert run.exports_failed == 4
    assert any("connection refused" in k for k in run.errors)
    # The other destination (the sqlite CRM) got everything: one failing destination blocks nothing.
    assert len(shop.dst_rows()) == 4


def test_throttling_waits_without_spending_an_attempt(shop):
    dest = add_memory_destination(shop, "slow")
    fakes.MemoryDestination.SCRIPT["slow"] = [("throttle", 0.05), ("throttle", 0.05)]
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE
    assert set(dest.exports.values_list("attempts", flat=True)) == {1}
    assert len(store("slow")) == 4


def test_records_never_sent_are_retried_without_spending_an_attempt(shop):
    # Record 3 fails (an attempt spent); record 4 was never sent (an earlier request failed).
    dest = add_memory_destination(shop, "partial")
    m.Setting.objects.update_or_create(plugin="core", key="exports-max-attempts", defaults={"value": "2"})
    fakes.MemoryDestination.SCRIPT["partial"] = [("notsent", 4), ("notsent", 4), ("notsent", 4)]
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE
    four = dest.exports.get(record__properties__unique_value="4", record__properties__property=shop.props["user_id"])
    # Three "never sent" answers with max attempts 2: not failed, one attempt when it finally went.
    assert four.state == ExportState.COMPLETE and four.attempts == 1, (four.state, four.attempts)
    assert set(store("partial")) == {"1", "2", "3", "4"}
    assert not any("not sent" in k for k in run.errors)


def test_info_errors_are_final_and_other_records_complete(shop):
    dest = add_memory_destination(shop, "picky")
    fakes.MemoryDestination.SCRIPT["picky"] = [("info", 2)]
    sync(shop.users_schedule)
    failed = dest.exports.get(state=ExportState.FAILED)
    assert failed.error_level == "info" and failed.attempts == 1 and "rejected 2" in failed.error_message
    assert dest.exports.filter(state=ExportState.COMPLETE).count() == 3


def test_only_the_newest_export_is_sent_older_pending_ones_are_superseded(shop):
    dest = add_memory_destination(shop, "q")
    sync(shop.users_schedule, export=True)
    shop.src_sql("UPDATE users SET ltv = 1, updated_at = '2026-06-01' WHERE id = 2")
    run1 = sync(shop.users_schedule, export=False)  # queue, do not send
    shop.src_sql("UPDATE users SET ltv = 2, updated_at = '2026-06-02' WHERE id = 2")
    sync(shop.users_schedule, export=False)
    pending = dest.exports.filter(state=ExportState.PENDING)
    assert pending.count() == 1
    assert dest.exports.filter(state=ExportState.CANCELED, run=run1).count() == 1
    fakes.MemoryDestination.CALLS.clear()
    while exports_send(destination_id=dest.pk).claimed:
        pass
    sent = [p for call in fakes.MemoryDestination.CALLS["q"] for p in call]
    assert [p.new_properties["ltv"] for p in sent] == [2.0]
    assert store("q")["2"]["ltv"] == 2.0


def test_retry_failed_exports_service(shop):
    from core.services.exports import exports_retry_failed

    dest = add_memory_destination(shop, "later")
    m.Setting.objects.update_or_create(plugin="core", key="exports-max-attempts", defaults={"value": "1"})
    fakes.MemoryDestination.SCRIPT["later"] = ["down"]
    sync(shop.users_schedule)
    assert dest.exports.filter(state=ExportState.FAILED).count() == 4
    assert exports_retry_failed(destination=dest) == 4
    assert exports_retry_failed(destination=dest) == 0
    while exports_send(destination_id=dest.pk).claimed:
        pass
    assert len(store("later")) == 4


@pytest.mark.parametrize("mode", [SyncMode.ADDITIVE, SyncMode.ENRICH, SyncMode.SYNC])
def test_a_record_leaving_the_tracked_group_is_sent_with_its_current_values(tmp_path, mode):
    """Additive and enrich never delete: a record that leaves the tracked group is updated with
    its current properties and loses its groups (Grouparoo). Sync deletes it."""
    import sqlite3

    from tests.engine.conftest import make_shop

    shop = make_shop(tmp_path, sync_mode=mode, collection=DestinationCollection.GROUP)
    if mode == SyncMode.ENRICH:  # enrich only updates records the CRM has
        with sqlite3.connect(shop.dst) as conn:
            conn.execute("INSERT INTO crm (id) VALUES ('1'), ('3')")
    sync_all(shop)
    assert {r["id"]: r["ltv"] for r in shop.dst_rows()} == {"1": 900.0, "3": 600.0}
    assert shop.dst_groups() == {("1", "high-value"), ("3", "high-value")}

    # Ada leaves "High value" (her lifetime value drops) and changes her name.
    shop.src_sql("UPDATE users SET ltv = 10, first_name = 'Adah', updated_at = '2026-05-02' WHERE id = 1")
    sync(shop.users_schedule)
    leaving = shop.destination.exports.order_by("-pk").first()
    assert leaving.to_delete and leaving.new_groups == [] and leaving.old_groups == ["high-value"]
    assert shop.dst_groups() == {("3", "high-value")}
    if mode == SyncMode.SYNC:
        assert leaving.new_properties["ltv"] == 900.0  # deleted where the CRM has it
        assert [r["id"] for r in shop.dst_rows()] == ["3"]
    else:
        assert (leaving.new_properties["ltv"], leaving.new_properties["first_name"]) == (10.0, "Adah")
        ada = shop.dst_rows()[0]
        assert (ada["id"], ada["ltv"], ada["first_name"], ada["purchase_count"]) == ("1", 10.0, "Adah", 2)

    # Outside the group she is no longer sent, whatever changes.
    exports = shop.destination.exports.count()
    shop.src_sql("UPDATE users SET ltv = 20, updated_at = '2026-05-03' WHERE id = 1")
    sync(shop.users_schedule)
    assert shop.destination.exports.count() == exports
