"""Secondary sources are never stale: whenever a source imports a record (new, changed, or read
again unchanged), the record's properties from every other source of its model are recomputed
in the same run, a batch at a time, as Grouparoo marked all of an imported record's properties
pending. A secondary source without a schedule of its own is therefore kept current by the
primary source's runs, and `run_schedule --full` recomputes every property of every record."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from core import models as m
from core.choices import AggregationMethod, PropertyType, RuleOp
from core.engine.single import record_import_now
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db


def values_of(shop, key: str) -> dict[int, object]:
    """user_id -> typed value of property `key`."""
    ids = {
        rp.record_id: int(rp.value_number)
        for rp in m.RecordProperty.objects.filter(property=shop.props["user_id"])
    }
    return {
        ids[rp.record_id]: rp.value
        for rp in m.RecordProperty.objects.filter(property=shop.props[key])
    }


def members(group: m.Group) -> set[int]:
    """user_ids of the group's current members."""
    records = m.GroupMember.objects.filter(group=group, left_at__isnull=True).values_list(
        "record_id", flat=True
    )
    return {
        int(v)
        for v in m.RecordProperty.objects.filter(
            property__key="user_id", property__model=group.model, record_id__in=list(records)
        ).values_list("value_number", flat=True)
    }


@pytest.fixture
def spenders(shop):
    """Purchases with a state; total_spend counts paid purchases only (a property filter); the
    purchases source has no schedule; a group of users who spent more than 20, exported."""
    shop.src_sql("ALTER TABLE purchases ADD COLUMN state TEXT DEFAULT 'paid'")
    shop.purchases_schedule.delete()
    m.PropertyFilter.objects.create(
        property=shop.props["total_spend"], key="state", op="ne", match="refunded"
    )
    group = m.Group.objects.create(model=shop.model, name="Spenders")
    m.GroupRule.objects.create(
        group=group, property=shop.props["total_spend"], op=RuleOp.GT, match="20"
    )
    m.DestinationGroupMembership.objects.create(
        destination=shop.destination, group=group, remote_key="spender"
    )
    run = sync(shop.users_schedule)
    assert run.state == "complete", run.error
    assert values_of(shop, "total_spend")[1] == 40.0
    assert members(group) == {1}
    assert ("1", "spender") in shop.dst_groups()
    return group


def crm(shop) -> dict[str, dict]:
    return {r["id"]: r for r in shop.dst_rows()}


@pytest.mark.parametrize(
    ("change", "spend", "count"),
    [
        ("UPDATE purchases SET state = 'refunded' WHERE id = 2", 10.0, 2),  # leaves the filter
        ("UPDATE purchases SET amount = 1 WHERE id = 2", 11.0, 2),  # its amount changes
        ("DELETE FROM purchases WHERE user_id = 1", 0.0, 0),  # no purchases left at all
    ],
    ids=["refunded", "amount", "deleted"],
)
def test_a_reimported_user_gets_its_purchases_recomputed_and_leaves_the_group(
    shop, spenders, change, spend, count
):
    shop.src_sql(change)
    # Only the user's row is touched (its watermark), none of its mapped values: Grouparoo
    # recomputed every property of every record a run imported, changed or not.
    shop.src_sql("UPDATE users SET updated_at = '2026-03-01T00:00:00' WHERE id = 1")
    run = sync(shop.users_schedule)
    assert run.state == "complete", run.error
    # Read: user 1, and user 4 again at the old watermark's edge (nothing of it changed).
    assert run.starting_watermark is not None and run.rows_read == 2
    assert values_of(shop, "total_spend")[1] == spend
    assert values_of(shop, "purchase_count")[1] == count
    assert members(spenders) == set()
    assert run.records_updated == 1 and run.groups_changed == 1 and run.exports_created == 1
    row = crm(shop)["1"]
    assert row["total_spend"] == spend and row["purchase_count"] == count
    assert ("1", "spender") not in shop.dst_groups()
    assert ("1", "high-value") in shop.dst_groups()  # the other group is untouched


def test_a_user_read_again_with_nothing_changed_anywhere_exports_nothing(shop, spenders):
    shop.src_sql("UPDATE users SET updated_at = '2026-03-01T00:00:00' WHERE id = 1")
    before = m.Export.objects.count()
    run = sync(shop.users_schedule)
    assert run.rows_read == 2 and run.records_updated == 0 and run.exports_created == 0
    assert m.Export.objects.count() == before


def test_users_not_read_again_keep_their_values_until_they_are(shop, spenders):
    shop.src_sql("UPDATE purchases SET amount = 100 WHERE user_id = 2")
    shop.src_sql("UPDATE users SET updated_at = '2026-03-01T00:00:00' WHERE id = 1")
    sync(shop.users_schedule)
    assert values_of(shop, "total_spend")[2] == 5.0  # user 2 was not imported by this run
    shop.src_sql("UPDATE users SET updated_at = '2026-03-02T00:00:00' WHERE id = 2")
    sync(shop.users_schedule)
    assert values_of(shop, "total_spend")[2] == 100.0
    assert members(spenders) == {1, 2}
    assert crm(shop)["2"]["total_spend"] == 100.0 and ("2", "spender") in shop.dst_groups()


def test_a_page_with_new_and_known_users_enriches_both_in_the_same_run(shop, spenders, settings):
    settings.GROUPAROO_BATCH_SIZE = 2
    shop.src_sql(
        "INSERT INTO users VALUES (5, 'eve@example.com', 'Eve', 10, '2026-03-01T00:00:00')"
    )
    shop.src_sql(
        "INSERT INTO purchases (id, user_id, amount, purchased_at) VALUES (10, 5, 25, '2026-01-01T00:00:00')"
    )
    shop.src_sql(
        "INSERT INTO purchases (id, user_id, amount, purchased_at) VALUES (11, 4, 60, '2026-01-01T00:00:00')"
    )
    shop.src_sql("UPDATE users SET updated_at = '2026-03-01T00:00:00' WHERE id = 4")
    run = sync(shop.users_schedule)
    assert run.state == "complete", run.error
    assert run.records_created == 1
    assert values_of(shop, "purchase_count")[5] == 1 and values_of(shop, "total_spend")[5] == 25.0
    assert values_of(shop, "purchase_count")[4] == 1 and values_of(shop, "total_spend")[4] == 60.0
    assert members(spenders) == {1, 4, 5}
    rows = crm(shop)
    assert rows["5"]["total_spend"] == 25.0 and rows["4"]["total_spend"] == 60.0
    assert {("4", "spender"), ("5", "spender")} <= shop.dst_groups()


def test_run_schedule_full_recomputes_every_property_of_every_record(shop, spenders):
    shop.src_sql("UPDATE purchases SET amount = amount * 10")
    shop.src_sql("UPDATE users SET first_name = 'Robert' WHERE id = 2")  # no watermark change
    call_command("run_schedule", "users", "--full", "--export-wait", "30", stdout=None)
    assert values_of(shop, "total_spend") == {1: 400.0, 2: 50.0, 3: 0.0, 4: 0.0}
    assert values_of(shop, "first_name")[2] == "Robert"
    assert members(spenders) == {1, 2}
    rows = crm(shop)
    assert rows["1"]["total_spend"] == 400.0 and rows["2"]["total_spend"] == 50.0
    assert rows["2"]["first_name"] == "Robert" and ("2", "spender") in shop.dst_groups()


def test_a_secondary_sources_run_recomputes_the_other_secondary_sources(shop):
    """Tickets has no schedule; a purchases run that imports user 3 recomputes its tickets."""
    shop.src_sql("CREATE TABLE tickets (id INTEGER PRIMARY KEY, user_id INTEGER, opened_at TEXT)")
    tickets = m.Source.objects.create(
        name="tickets",
        app=shop.users.app,
        model=shop.model,
        type="sqlite-table",
        options={"table": "tickets"},
    )
    m.SourceMapping.objects.create(
        source=tickets, remote_key="user_id", property=shop.props["user_id"]
    )
    shop.props["ticket_count"] = m.Property.objects.create(
        model=shop.model,
        source=tickets,
        key="ticket_count",
        type=PropertyType.INTEGER,
        options={"column": "id", "aggregationMethod": AggregationMethod.COUNT},
    )
    sync(shop.users_schedule)
    sync(shop.purchases_schedule)
    assert values_of(shop, "ticket_count") == {1: 0, 2: 0, 3: 0, 4: 0}
    shop.src_many(
        "INSERT INTO tickets (user_id, opened_at) VALUES (?, ?)", [(3, "x"), (3, "y"), (4, "z")]
    )
    shop.src_sql("INSERT INTO purchases VALUES (4, 3, 99.5, '2026-02-01T00:00:00')")
    run = sync(shop.purchases_schedule)
    assert run.state == "complete", run.error
    # The purchases run read users 1 (at its watermark's edge) and 3; user 4 was not imported.
    assert values_of(shop, "ticket_count") == {1: 0, 2: 0, 3: 2, 4: 0}
    assert values_of(shop, "purchase_count")[3] == 1


def test_importing_one_record_clears_the_aggregates_of_a_user_without_purchases_left(shop):
    sync(shop.users_schedule)
    assert values_of(shop, "purchase_count")[1] == 2
    shop.src_sql("DELETE FROM purchases WHERE user_id = 1")
    record_import_now(model=shop.model, property_key="user_id", value="1")
    assert values_of(shop, "purchase_count")[1] == 0
    assert values_of(shop, "total_spend")[1] == 0.0
    assert crm(shop)["1"]["purchase_count"] == 0


def test_a_secondary_value_that_does_not_parse_is_reported_on_the_run(shop, spenders):
    shop.props["last_amount"] = m.Property.objects.create(
        model=shop.model,
        source=shop.purchases,
        key="last_amount",
        type=PropertyType.INTEGER,
        options={
            "column": "state",
            "aggregationMethod": AggregationMethod.MOST_RECENT,
            "sortColumn": "purchased_at",
        },
    )
    shop.src_sql("UPDATE users SET updated_at = '2026-03-01T00:00:00' WHERE id = 1")
    run = sync(shop.users_schedule)
    assert run.state == "complete", run.error
    # Users 1 and 4 were read: user 1's most recent purchase state is text; user 4 has none.
    assert run.records_invalid == 1
    assert [c for message, c in run.errors.items() if message.startswith("last_amount:")] == [1]
    record = m.RecordProperty.objects.get(
        property=shop.props["last_amount"], raw_value="paid"
    ).record
    assert record.invalid is True


def test_statements_of_an_incremental_page_do_not_grow_with_the_records_it_reads(
    tmp_path, settings, db
):
    """The recompute is set-based: one aggregate query per other source and a fixed number of
    application-database statements per page, however many records the page holds."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from connectors.sql import SqlTableSource
    from tests.engine.conftest import make_shop

    settings.GROUPAROO_BATCH_SIZE = 1000
    counts, aggregate_calls = {}, []
    original = SqlTableSource.aggregate

    def aggregate(self, **kwargs):
        aggregate_calls.append(len(kwargs["keys"]))
        return original(self, **kwargs)

    for n in (10, 60):
        # User 100 holds the watermark; the run reads the n touched users and it again.
        users = [
            (i, f"u{i}@x.com", f"U{i}", 1.0, f"2025-{1 + i // 100:02d}-01") for i in range(1, 101)
        ]
        purchases = [(i, i, 1.0, "2026-01-01T00:00:00") for i in range(1, 101)]
        d = tmp_path / str(n)
        d.mkdir()
        for model in (m.Destination, m.Group, m.Property, m.Source, m.App, m.RecordModel):
            model.objects.all().delete()
        shop = make_shop(d, users=users, purchases=purchases)
        sync(shop.users_schedule)
        shop.src_sql("UPDATE purchases SET amount = 2 WHERE user_id <= ?", (n,))
        shop.src_sql("UPDATE users SET updated_at = '2026-02-01T00:00:00' WHERE id <= ?", (n,))
        aggregate_calls.clear()
        with CaptureQueriesContext(connection) as ctx:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(SqlTableSource, "aggregate", aggregate)
                run = sync(shop.users_schedule, export=False)  # sending is counted elsewhere
        assert run.state == "complete" and run.rows_read == n + 1 and run.records_updated == n
        assert aggregate_calls == [n + 1]  # one query for the page's keys
        assert values_of(shop, "total_spend")[n] == 2.0
        counts[n] = len(ctx.captured_queries)
    assert counts[10] == counts[60], counts


def test_a_source_computed_from_the_records_neither_recomputes_nor_is_recomputed(shop):
    """Its run follows every run that changed records and reads every record: recomputing the
    purchases there would re-aggregate the whole model after each run."""
    from core.engine.imports import source_plan
    from core.engine.secondary import enrichers_for

    app = m.App.objects.create(name="calc", type="calculated-property", options={})
    calc = m.Source.objects.create(
        name="calc", app=app, model=shop.model, type="calculated-property-import", options={}
    )
    m.SourceMapping.objects.create(
        source=calc, remote_key="user_id", property=shop.props["user_id"]
    )
    m.Property.objects.create(
        model=shop.model,
        source=calc,
        key="shout",
        type=PropertyType.STRING,
        options={"customFunction": '() => "{{{ first_name }}}".toUpperCase()'},
    )

    def names(source):
        enrichers = enrichers_for(source_plan(source))
        for enricher in enrichers:
            enricher.conn.close()
        return [e.plan.source.name for e in enrichers]

    assert names(shop.users) == ["purchases"]
    assert names(calc) == []
