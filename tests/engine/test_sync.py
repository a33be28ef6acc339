"""End-to-end sync through the real SQLite connectors: import, groups, exports, destination."""
from __future__ import annotations

import pytest

from core.choices import ExportState, RecordState, RunState
from core.models import Export, GroupMember, Import, Record, RecordProperty, Run
from tests.engine.helpers import sync, sync_all

pytestmark = pytest.mark.django_db


def values_of(shop, key: str) -> dict[int, object]:
    """user_id -> typed value of property `key`."""
    ids = {rp.record_id: int(rp.value_number) for rp in RecordProperty.objects.filter(property=shop.props["user_id"])}
    out = {}
    for rp in RecordProperty.objects.filter(property=shop.props[key]):
        out[ids[rp.record_id]] = rp.value
    return out


def test_first_sync_creates_records_properties_groups_and_destination_rows(shop):
    users_run, purchases_run = sync_all(shop)
    assert users_run.state == RunState.COMPLETE, users_run.error
    assert purchases_run.state == RunState.COMPLETE, purchases_run.error
    assert users_run.records_created == 4
    assert Record.objects.filter(state=RecordState.READY).count() == 4
    assert values_of(shop, "ltv") == {1: 900.0, 2: 100.0, 3: 600.0, 4: 50.0}
    assert values_of(shop, "purchase_count") == {1: 2, 2: 1, 3: 0, 4: 0}
    assert values_of(shop, "total_spend")[1] == 40.0
    assert values_of(shop, "last_purchase_at")[1].isoformat().startswith("2026-01-07")
    members = set(GroupMember.objects.filter(group=shop.high_value, left_at__isnull=True).values_list("record_id", flat=True))
    assert len(members) == 2
    rows = shop.dst_rows()
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    ada = rows[0]
    assert ada["email"] == "ada@example.com" and ada["purchase_count"] == 2 and ada["total_spend"] == 40.0
    assert shop.dst_groups() == {("1", "high-value"), ("3", "high-value")}
    assert Export.objects.exclude(state__in=[ExportState.COMPLETE, ExportState.CANCELED]).count() == 0


def test_second_run_with_nothing_changed_creates_no_exports(shop):
    sync_all(shop)
    before = Export.objects.count()
    users_run = sync(shop.users_schedule, full=True)
    assert users_run.state == RunState.COMPLETE
    assert users_run.records_updated == 0
    assert users_run.exports_created == 0
    assert Export.objects.count() == before


def test_incremental_run_reads_only_rows_past_the_watermark(shop):
    sync_all(shop)
    shop.src_sql("UPDATE users SET ltv = 700, updated_at = '2026-02-01T00:00:00' WHERE id = 2")
    run = sync(shop.users_schedule)
    # >= the stored watermark (2026-01-03, user 4's) re-reads the edge row; nothing older.
    assert run.starting_watermark is not None
    assert run.rows_read == 2
    assert run.records_updated == 1
    assert values_of(shop, "ltv")[2] == 700.0
    assert shop.dst_rows()[1]["ltv"] == 700.0
    assert ("2", "high-value") in shop.dst_groups()
    imports = Import.objects.filter(run=run)
    assert sum(i.rows_read for i in imports) == 2


def test_rows_sharing_a_watermark_across_a_batch_edge_are_not_lost(shop, settings):
    settings.GROUPAROO_BATCH_SIZE = 2
    sync_all(shop)
    shop.src_many(
        "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
        [(10 + i, f"u{i}@example.com", f"U{i}", 1.0, "2026-03-01T00:00:00") for i in range(5)],
    )
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE
    assert run.records_created == 5
    assert len(shop.dst_rows()) == 9


def test_schedule_filter_change_resets_the_watermark(shop):
    from core.models import ScheduleFilter

    sync_all(shop)
    ScheduleFilter.objects.create(schedule=shop.users_schedule, key="ltv", op="gt", match="0")
    run = sync(shop.users_schedule)
    assert run.starting_watermark is None
    assert run.rows_read == 4


def test_new_purchase_updates_the_aggregates_on_the_next_purchases_run(shop):
    sync_all(shop)
    shop.src_sql("INSERT INTO purchases VALUES (4, 3, 99.5, '2026-02-01T00:00:00')")
    run = sync(shop.purchases_schedule)
    assert run.state == RunState.COMPLETE
    # Distinct keys with rows >= the stored watermark: user 3 (new) and user 1 (at the edge).
    assert run.rows_read == 2
    assert run.records_updated == 1
    assert values_of(shop, "purchase_count")[3] == 1
    assert values_of(shop, "total_spend")[3] == 99.5
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert crm["3"]["purchase_count"] == 1 and crm["3"]["total_spend"] == 99.5
    assert run.exports_created == 1


def test_secondary_source_never_creates_phantom_records(shop):
    sync_all(shop)
    shop.src_sql("INSERT INTO purchases VALUES (5, 999, 1.0, '2026-02-02T00:00:00')")
    run = sync(shop.purchases_schedule)
    assert run.records_skipped == 1
    assert Record.objects.count() == 4


def test_invalid_value_is_flagged_with_a_reason_and_the_run_goes_on(shop):
    shop.src_sql("UPDATE users SET ltv = 'n/a', email = 'not-an-email' WHERE id = 4")
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE
    assert run.records_invalid == 1
    rp = RecordProperty.objects.get(property=shop.props["ltv"], raw_value="n/a")
    assert rp.value_number is None and "not a number" in rp.invalid_reason
    assert rp.record.invalid is True
    assert Record.objects.filter(invalid=False).count() == 3
    assert any("not a number" in message for message in run.errors)


def test_statements_per_batch_do_not_grow_with_the_batch_size(tmp_path, settings, django_assert_max_num_queries, db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.engine.conftest import make_shop

    counts = {}
    for n in (10, 60):
        settings.GROUPAROO_BATCH_SIZE = 1000
        settings.GROUPAROO_EXPORT_BATCH_SIZE = 1000
        users = [(i, f"u{i}@x.com", f"U{i}", float(i * 100), "2026-01-01T00:00:00") for i in range(1, n + 1)]
        purchases = [(i, i, 1.0, "2026-01-01T00:00:00") for i in range(1, n + 1)]
        d = tmp_path / str(n)
        d.mkdir()
        from core import models as m

        for model in (m.Destination, m.Group, m.Property, m.Source, m.App, m.RecordModel):
            model.objects.all().delete()
        shop = make_shop(d, users=users, purchases=purchases)
        with CaptureQueriesContext(connection) as ctx:
            run = sync(shop.users_schedule)
        assert run.state == RunState.COMPLETE and run.records_created == n
        counts[n] = len(ctx.captured_queries)
    assert counts[10] == counts[60], counts


def test_run_errors_are_aggregated_by_message(shop):
    shop.src_many("INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                  [(20 + i, f"x{i}@example.com", "X", "bad", "2026-01-01T00:00:00") for i in range(3)])
    run = sync(shop.users_schedule)
    counts = [c for message, c in run.errors.items() if "ltv" in message]
    assert counts == [3]


def test_the_run_records_what_each_batch_read(shop, settings):
    settings.GROUPAROO_BATCH_SIZE = 3
    run = sync(shop.users_schedule)
    imports = list(Import.objects.filter(run=run).order_by("batch"))
    assert [i.rows_read for i in imports] == [3, 1]
    all_ids = set().union(*(set(i.record_ids) for i in imports))
    assert all_ids == set(Record.objects.values_list("pk", flat=True))
    assert Run.objects.get(pk=run.pk).batches_done == 2


def test_first_sync_leaves_secondary_sources_only_what_changed_since(shop):
    users_run, purchases_run = sync_all(shop)
    # The users run enriched every new record from purchases; the purchases schedule starts
    # from the watermark taken when that run started (the newest purchase, re-read at the edge).
    assert purchases_run.starting_watermark is not None
    assert purchases_run.rows_read == 1
    assert values_of(shop, "purchase_count") == {1: 2, 2: 1, 3: 0, 4: 0}
