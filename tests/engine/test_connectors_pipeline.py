"""The sync pipeline end to end through each new connector: MySQL/MariaDB (source and
destination), DuckDB (table and query sources), CSV files (source and destination), webhooks
(destination, against a local receiver) and a connector plugin installed from its own package.

Each test builds the same small world (as tests/engine/conftest.py does for SQLite): customers
with an email and a lifetime value, purchases aggregated per customer (count, most recent date),
a group of big spenders, and one destination tracking the model with the group mapped.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.core.management import call_command

from core import models as m
from core.choices import (
    AggregationMethod,
    DestinationCollection,
    ExportState,
    PropertyType,
    RuleOp,
    RunState,
)
from tests.connectors.contract import WebhookReceiver, write_csv, write_jsonl
from tests.connectors.plugins import example_plugin  # noqa: F401 - a fixture
from tests.connectors.servers import scratch_mysql  # noqa: F401 - a fixture
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db

N = 120
START = datetime(2026, 1, 1)
CUSTOMER_COLUMNS = ("id", "email", "ltv", "updated_at")
PURCHASE_COLUMNS = ("id", "customer_id", "amount", "purchased_at")
CUSTOMERS = [(i, f"c{i}@example.com", i * 10, (START + timedelta(minutes=i)).isoformat(sep=" ")) for i in range(1, N + 1)]
PURCHASES = [(i, i % 60 + 1, 5, (START + timedelta(days=31, hours=i)).isoformat(sep=" ")) for i in range(1, 151)]
PURCHASE_COUNTS = {c: sum(1 for p in PURCHASES if p[1] == c) for c in range(1, N + 1)}
LAST_PURCHASE = {c: max(p[3] for p in PURCHASES if p[1] == c) for c in range(1, 61)}
BIG = {c for c, _, ltv, _ in CUSTOMERS if ltv >= 1000}  # 100..120: 21 customers
SECRET = "whsec-pipeline-0123456789"


@dataclass
class World:
    customers: m.Schedule
    purchases: m.Schedule
    destination: m.Destination


def build(*, source_app: tuple[str, dict], customers: tuple[str, dict], purchases: tuple[str, dict],
          dest_app: tuple[str, dict], dest: tuple[str, dict], query_props: bool = False,
          secret_options: dict | None = None) -> World:
    """The model, sources, properties, schedules, group and destination of the world."""
    model = m.RecordModel.objects.create(name="customers")
    app = m.App.objects.create(name="shop", type=source_app[0], options=source_app[1])
    out_app = m.App.objects.create(name="out", type=dest_app[0], options=dest_app[1], secret_options=secret_options or {})
    cust = m.Source.objects.create(name="customers", app=app, model=model, type=customers[0], options=customers[1],
                                   is_primary=True)
    purch = m.Source.objects.create(name="purchases", app=app, model=model, type=purchases[0], options=purchases[1])
    P = PropertyType

    def prop(key, source, type_, options, **kw):
        return m.Property.objects.create(model=model, source=source, key=key, type=type_, options=options, **kw)

    pk = prop("customer_id", cust, P.INTEGER, {"column": "id"}, unique=True, is_primary_key=True)
    if query_props:
        email = prop("email", cust, P.EMAIL, {"query": "SELECT email FROM customers WHERE id = {{{ customer_id }}}"})
        ltv = prop("ltv", cust, P.FLOAT, {"query": "SELECT ltv FROM customers WHERE id = {{{ customer_id }}}"})
    else:
        email = prop("email", cust, P.EMAIL, {"column": "email"}, unique=True)
        ltv = prop("ltv", cust, P.FLOAT, {"column": "ltv"})
    count = prop("purchase_count", purch, P.INTEGER, {"column": "id", "aggregationMethod": AggregationMethod.COUNT})
    last = prop("last_purchase_at", purch, P.DATE, {"column": "purchased_at", "aggregationMethod": "most recent value",
                                                     "sortColumn": "purchased_at"})
    m.SourceMapping.objects.create(source=cust, remote_key="id", property=pk)
    m.SourceMapping.objects.create(source=purch, remote_key="customer_id", property=pk)
    schedules = (m.Schedule.objects.create(source=cust, options={"column": "updated_at"}),
                 m.Schedule.objects.create(source=purch, options={"column": "purchased_at"}))
    big = m.Group.objects.create(model=model, name="big")
    m.GroupRule.objects.create(group=big, property=ltv, op=RuleOp.GTE, match="1000")
    destination = m.Destination.objects.create(name="out", app=out_app, model=model, type=dest[0],
                                               collection=DestinationCollection.MODEL, options=dest[1])
    for remote, p in [("id", pk), ("email", email), ("ltv", ltv), ("purchases", count), ("last_purchase", last)]:
        m.DestinationMapping.objects.create(destination=destination, remote_key=remote, property=p)
    m.DestinationGroupMembership.objects.create(destination=destination, group=big, remote_key="big")
    return World(*schedules, destination)


def assert_complete(run: m.Run) -> None:
    assert run.state == RunState.COMPLETE, run.error
    assert run.exports_failed == 0, list(m.Export.objects.exclude(error_message="").values_list("error_message", flat=True)[:3])


def check_rows(rows: dict[int, dict[str, Any]], groups: dict[int, set[str]]) -> None:
    """What every destination must hold after the first sync."""
    assert set(rows) == set(range(1, N + 1))
    assert {c: int(float(r["purchases"])) for c, r in rows.items()} == PURCHASE_COUNTS
    assert float(rows[7]["ltv"]) == 70.0 and rows[7]["email"] == "c7@example.com"
    assert {c: str(r["last_purchase"]).replace("T", " ")[:19] for c, r in rows.items() if c <= 60} == LAST_PURCHASE
    assert all(r["last_purchase"] in (None, "") for c, r in rows.items() if c > 60)
    assert {c for c, g in groups.items() if "big" in g} == BIG


# --- MySQL/MariaDB → MySQL/MariaDB ----------------------------------------------------------


@pytest.fixture
def mysql_world(scratch_mysql):  # noqa: F811 - the imported fixture
    conn = scratch_mysql["conn"]
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE customers (id BIGINT PRIMARY KEY, email VARCHAR(255), ltv DECIMAL(12,2), updated_at DATETIME)")
        cur.execute("CREATE TABLE purchases (id BIGINT PRIMARY KEY, customer_id BIGINT, amount DECIMAL(12,2), purchased_at DATETIME)")
        cur.execute("CREATE TABLE out_customers (id VARCHAR(20) PRIMARY KEY, email VARCHAR(255), ltv DOUBLE, purchases INT,"
                    " last_purchase DATETIME)")
        cur.execute("CREATE TABLE out_groups (customer_id VARCHAR(20), name VARCHAR(50), PRIMARY KEY (customer_id, name))")
        cur.executemany("INSERT INTO customers VALUES (%s, %s, %s, %s)", CUSTOMERS)
        cur.executemany("INSERT INTO purchases VALUES (%s, %s, %s, %s)", PURCHASES)
    options = {k: scratch_mysql[k] for k in ("host", "port", "user", "password", "database")}
    world = build(
        source_app=("mysql", options), customers=("mysql-import-table", {"table": "customers"}),
        purchases=("mysql-table", {"table": "purchases"}), dest_app=("mysql", options),
        dest=("mysql-export-records", {"table": "out_customers", "primaryKey": "id", "groupsTable": "out_groups",
                                       "groupForeignKey": "customer_id", "groupColumnName": "name"}),
    )
    return conn, world


def mysql_rows(conn) -> tuple[dict[int, dict], dict[int, set[str]]]:
    with conn.cursor() as cur:
        cur.execute("SELECT id, email, ltv, purchases, last_purchase FROM out_customers")
        rows = {int(r[0]): dict(zip(("id", "email", "ltv", "purchases", "last_purchase"), r, strict=True)) for r in cur.fetchall()}
        cur.execute("SELECT customer_id, name FROM out_groups")
        groups: dict[int, set[str]] = {}
        for customer, name in cur.fetchall():
            groups.setdefault(int(customer), set()).add(name)
    return rows, groups


def test_mysql_source_to_mysql_destination(mysql_world):
    conn, world = mysql_world
    run = sync(world.customers)
    assert_complete(run)
    assert run.records_created == N
    check_rows(*mysql_rows(conn))
    with conn.cursor() as cur:
        cur.execute("UPDATE customers SET ltv = 5000, updated_at = '2026-03-01 00:00:00' WHERE id = 3")
    run = sync(world.customers)
    assert_complete(run)
    assert run.records_updated == 1 and run.exports_created == 1
    rows, groups = mysql_rows(conn)
    assert rows[3]["ltv"] == 5000.0 and groups[3] == {"big"}


def test_mysql_deletes_through_run_schedule(mysql_world):
    conn, world = mysql_world
    m.Schedule.objects.filter(pk=world.customers.pk).update(confirm_records=True)
    call_command("run_schedule", str(world.customers.pk), stdout=open("/dev/null", "w"))
    assert m.Run.objects.latest("pk").state == RunState.COMPLETE
    with conn.cursor() as cur:
        cur.execute("DELETE FROM customers WHERE id IN (110, 111)")
    call_command("run_schedule", str(world.customers.pk), "--full", stdout=open("/dev/null", "w"))
    run = m.Run.objects.latest("pk")
    assert_complete(run)
    assert run.records_deleted == 2
    rows, groups = mysql_rows(conn)
    assert len(rows) == N - 2 and 110 not in groups and 111 not in groups


# --- DuckDB → CSV -------------------------------------------------------------------------


def csv_rows(path: Path) -> tuple[dict[int, dict], dict[int, set[str]]]:
    with open(path, newline="") as handle:
        rows = {int(r["id"]): r for r in csv.DictReader(handle)}
    return rows, {c: set(filter(None, r["groups"].split(";"))) for c, r in rows.items()}


def test_duckdb_sources_to_a_csv_file(tmp_path):
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE customers (id BIGINT, email VARCHAR, ltv DECIMAL(12,2), updated_at TIMESTAMP)")
        conn.execute("CREATE TABLE purchases (id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), purchased_at TIMESTAMP)")
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", [list(c) for c in CUSTOMERS])
        conn.executemany("INSERT INTO purchases VALUES (?, ?, ?, ?)", [list(p) for p in PURCHASES])
    out = tmp_path / "out" / "customers.csv"
    out.parent.mkdir()
    world = build(
        source_app=("duckdb", {"path": str(path)}),
        customers=("duckdb-query", {"query": "SELECT id, updated_at FROM customers"}),
        purchases=("duckdb-table", {"table": "purchases"}), query_props=True,
        dest_app=("csv", {"baseDirectory": str(out.parent)}),
        dest=("csv-export", {"path": "customers.csv", "primaryKey": "id"}),
    )
    run = sync(world.customers)
    assert_complete(run)
    assert run.records_created == N
    check_rows(*csv_rows(out))
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE customers SET ltv = 1, updated_at = '2026-03-01' WHERE id = 120")
        conn.execute("INSERT INTO purchases VALUES (999, 120, 1, '2026-04-01')")
    assert_complete(sync(world.customers))
    run = sync(world.purchases)
    assert_complete(run)
    rows, groups = csv_rows(out)
    assert float(rows[120]["ltv"]) == 1.0 and groups[120] == set()
    assert rows[120]["purchases"] == "1" and rows[120]["last_purchase"].startswith("2026-04-01")


# --- CSV → webhook --------------------------------------------------------------------------


@pytest.fixture
def csv_shop(tmp_path) -> tuple[Path, Path]:
    return (write_csv(tmp_path / "customers.csv", CUSTOMER_COLUMNS, CUSTOMERS),
            write_csv(tmp_path / "purchases.csv", PURCHASE_COLUMNS, PURCHASES))


def webhook_world(csv_shop, url: str) -> World:
    customers, purchases = csv_shop
    return build(
        source_app=("csv", {}), customers=("csv-file", {"path": str(customers)}),
        purchases=("csv-import", {"path": str(purchases)}),
        dest_app=("webhook", {"url": url, "batchSize": 25}), secret_options={"secret": SECRET},
        dest=("webhook-export", {}),
    )


def receiver_rows(receiver: WebhookReceiver) -> tuple[dict[int, dict], dict[int, set[str]]]:
    rows = {int(k): {**props, "id": k} for k, (props, _) in receiver.store.items()}
    return rows, {int(k): groups for k, (_, groups) in receiver.store.items()}


def test_csv_source_to_a_webhook_that_throttles_once(csv_shop, httpserver, settings):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
    receiver = WebhookReceiver(SECRET)
    throttled = []

    def handle(request):
        from werkzeug.wrappers import Response

        if not throttled:
            throttled.append(True)
            return Response("busy", status=429, headers={"Retry-After": "1"})
        return receiver.handle(request)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handle)
    world = webhook_world(csv_shop, httpserver.url_for("/hook"))
    run = sync(world.customers)
    assert_complete(run)
    assert run.records_created == N
    check_rows(*receiver_rows(receiver))
    assert receiver.bad_signatures == 0
    ops = {r["operation"] for doc in receiver.requests for r in doc["records"]}
    assert ops == {"create"}
    # The throttled request did not spend an attempt.
    assert set(m.Export.objects.values_list("attempts", flat=True)) == {1}
    # Deleting is an operation too: a record leaving the model is sent as "delete".
    m.Schedule.objects.filter(pk=world.customers.pk).update(confirm_records=True)
    customers, _ = csv_shop
    write_csv(customers, CUSTOMER_COLUMNS, CUSTOMERS[:-1])
    run = sync(m.Schedule.objects.get(pk=world.customers.pk), full=True)
    assert_complete(run)
    assert run.records_deleted == 1 and 120 not in receiver.store
    assert receiver.requests[-1]["records"][0]["operation"] == "delete"


def test_a_webhook_rejecting_records_fails_them_finally(csv_shop, httpserver, settings):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
    httpserver.expect_request("/hook", method="POST").respond_with_json({"error": "unknown customer"}, status=422)
    world = webhook_world(csv_shop, httpserver.url_for("/hook"))
    run = sync(world.customers)
    assert run.state == RunState.COMPLETE
    failed = m.Export.objects.filter(state=ExportState.FAILED)
    assert failed.count() == N and run.exports_failed == N
    export = failed.first()
    assert export.error_level == "info" and export.attempts == 1 and "unknown customer" in export.error_message


def test_a_private_webhook_is_refused_and_the_run_says_why(csv_shop, settings):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = False
    world = webhook_world(csv_shop, "http://169.254.169.254/latest")
    run = sync(world.customers)
    export = m.Export.objects.filter(destination=world.destination).first()
    assert export.state == ExportState.FAILED and export.attempts == 1
    assert "non-public address" in export.error_message and "Traceback" not in export.error_message
    assert run.exports_failed == N


# --- a plugin (installed from tests/plugin_example) ----------------------------------------


def test_sync_through_a_plugin_connector(example_plugin, tmp_path):  # noqa: F811 - the imported fixture
    write_jsonl(tmp_path / "customers.jsonl", CUSTOMER_COLUMNS, CUSTOMERS)
    write_jsonl(tmp_path / "purchases.jsonl", PURCHASE_COLUMNS, PURCHASES)
    app = {"directory": str(tmp_path)}
    world = build(
        source_app=("jsonl", app), customers=("jsonl-file", {"file": "customers.jsonl"}),
        purchases=("jsonl-file", {"file": "purchases.jsonl"}),
        dest_app=("jsonl", app), dest=("jsonl-export", {"file": "out.jsonl", "keyField": "id"}),
    )
    run = sync(world.customers)
    assert_complete(run)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    check_rows({r["id"]: r for r in records}, {r["id"]: set(r["groups"]) for r in records})
    rerun = sync(world.customers, full=True)
    assert_complete(rerun)
    assert rerun.exports_created == 0  # nothing changed: nothing sent
