"""The same pipeline through the PostgreSQL connectors: a PostgreSQL source and destination."""
from __future__ import annotations

import psycopg
import pytest

from core import models as m
from core.choices import AggregationMethod, DestinationCollection, PropertyType, RuleOp, RunState
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def pg_shop(scratch_pg):
    with psycopg.connect(scratch_pg["url"], autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id bigint PRIMARY KEY, email text, ltv numeric(12,2), updated_at timestamptz)")
        conn.execute("CREATE TABLE purchases (id bigserial PRIMARY KEY, customer_id bigint, amount numeric(12,2), purchased_at timestamptz)")
        conn.execute("CREATE TABLE out_customers (customer_id text PRIMARY KEY, email text, ltv double precision, purchases integer, last_purchase text)")
        conn.execute("CREATE TABLE out_groups (customer_id text, name text, PRIMARY KEY (customer_id, name))")
        conn.execute(
            "INSERT INTO customers SELECT i, 'c' || i || '@example.com', i * 10, timestamptz '2026-01-01' + i * interval '1 minute' "
            "FROM generate_series(1, 120) i"
        )
        conn.execute(
            "INSERT INTO purchases (customer_id, amount, purchased_at) SELECT i % 60 + 1, 5, timestamptz '2026-02-01' + i * interval '1 hour' "
            "FROM generate_series(1, 150) i"
        )
    opts = {k: scratch_pg[k] for k in ("host", "port", "user", "database")}
    model = m.RecordModel.objects.create(name="customers")
    app = m.App.objects.create(name="pg", type="postgres", options=opts)
    customers = m.Source.objects.create(name="customers", app=app, model=model, type="postgres-import-table",
                                        options={"table": "customers"}, is_primary=True)
    purchases = m.Source.objects.create(name="purchases", app=app, model=model, type="postgres-table",
                                        options={"table": "purchases"})
    pk = m.Property.objects.create(model=model, source=customers, key="customer_id", type=PropertyType.INTEGER,
                                   unique=True, is_primary_key=True, options={"column": "id"})
    email = m.Property.objects.create(model=model, source=customers, key="email", type=PropertyType.EMAIL,
                                      unique=True, options={"column": "email"})
    ltv = m.Property.objects.create(model=model, source=customers, key="ltv", type=PropertyType.FLOAT, options={"column": "ltv"})
    count = m.Property.objects.create(model=model, source=purchases, key="purchase_count", type=PropertyType.INTEGER,
                                      options={"column": "id", "aggregationMethod": AggregationMethod.COUNT})
    last = m.Property.objects.create(model=model, source=purchases, key="last_purchase_at", type=PropertyType.DATE,
                                     options={"column": "purchased_at", "aggregationMethod": "most recent value",
                                              "sortColumn": "purchased_at"})
    m.SourceMapping.objects.create(source=customers, remote_key="id", property=pk)
    m.SourceMapping.objects.create(source=purchases, remote_key="customer_id", property=pk)
    schedule = m.Schedule.objects.create(source=customers, options={"column": "updated_at"})
    m.Schedule.objects.create(source=purchases, options={"column": "purchased_at"})
    big = m.Group.objects.create(model=model, name="big")
    m.GroupRule.objects.create(group=big, property=ltv, op=RuleOp.GTE, match="1000")
    dest = m.Destination.objects.create(
        name="warehouse", app=app, model=model, type="postgres-export-records", collection=DestinationCollection.MODEL,
        options={"table": "out_customers", "primaryKey": "customer_id", "groupsTable": "out_groups",
                 "groupForeignKey": "customer_id", "groupColumnName": "name"},
    )
    for remote, prop in [("customer_id", pk), ("email", email), ("ltv", ltv), ("purchases", count), ("last_purchase", last)]:
        m.DestinationMapping.objects.create(destination=dest, remote_key=remote, property=prop)
    m.DestinationGroupMembership.objects.create(destination=dest, group=big, remote_key="big")
    return scratch_pg["url"], schedule


def test_postgres_source_to_postgres_destination(pg_shop):
    url, schedule = pg_shop
    run = sync(schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_created == 120
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT customer_id, ltv, purchases FROM out_customers ORDER BY customer_id::int").fetchall()
        groups = conn.execute("SELECT count(*) FROM out_groups WHERE name = 'big'").fetchone()[0]
        expected_counts = dict(conn.execute("SELECT customer_id, count(*) FROM purchases GROUP BY customer_id").fetchall())
    assert len(rows) == 120
    assert rows[0] == ("1", 10.0, expected_counts.get(1, 0))
    assert {int(r[0]): r[2] for r in rows} == {i: expected_counts.get(i, 0) for i in range(1, 121)}
    assert groups == 21  # ltv 1000..1200
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE customers SET ltv = 5000, updated_at = now() WHERE id = 3")
    run = sync(schedule)
    assert run.records_updated == 1 and run.exports_created == 1
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT ltv FROM out_customers WHERE customer_id = '3'").fetchone()[0] == 5000.0
        assert conn.execute("SELECT count(*) FROM out_groups WHERE customer_id = '3'").fetchone()[0] == 1



def test_postgres_destination_deletes_by_a_text_key(pg_shop):
    url, schedule = pg_shop
    m.Schedule.objects.filter(pk=schedule.pk).update(confirm_records=True)
    sync(schedule)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM customers WHERE id IN (110, 111)")
    run = sync(m.Schedule.objects.get(pk=schedule.pk), full=True)
    assert run.state == RunState.COMPLETE and run.records_deleted == 2 and run.exports_failed == 0
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM out_customers").fetchone()[0] == 118
        assert conn.execute("SELECT count(*) FROM out_groups WHERE customer_id IN ('110', '111')").fetchone()[0] == 0
