"""A query source can neither write nor run past its statement timeout, seen through a real
run: a query or query property that would write (DML, DDL, a writing CTE or function) fails the
run with a clear error and changes nothing in the source; a query slower than the app's
statementTimeout is cancelled and the run's error names the timeout.

Read only is structural, not a first-word check: the attacks below (statements stacked through
the `(<query>) AS _q` wrapper, COMMIT then DDL, turning the read-only flag or the timeout off,
writing functions) go through a run, the preview API (with a key that may only read sources)
and the App Refresh Query on SQLite, PostgreSQL, MariaDB and DuckDB, and the source database is
unchanged after each."""
from __future__ import annotations

import itertools
import time

import pytest
from rest_framework.test import APIClient

from core import models as m
from core.choices import ApiTopic, PropertyType, RunState
from core.services.api_keys import api_key_create, api_key_set_permissions
from core.services.schedules import app_refresh_query_run
from tests.engine.helpers import sync
from tests.security.sqlworlds import SOURCE_KINDS, make_db

pytestmark = pytest.mark.django_db

ROWS = [(1, "a", "note a", "2026-01-01 00:00:01"), (2, "b", "note b", "2026-01-01 00:00:02")]


@pytest.fixture(params=SOURCE_KINDS)
def src(request, tmp_path, db):
    src = make_db(request.param, request, tmp_path)
    src.run("INSERT INTO customers VALUES (?, ?, ?, ?), (?, ?, ?, ?)", [v for r in ROWS for v in r])
    if src.kind == "postgres":
        src.run("CREATE FUNCTION bump() RETURNS text LANGUAGE sql AS 'UPDATE customers SET note = ''bumped'' RETURNING note'")
    if src.kind == "mysql":
        src.run("CREATE FUNCTION bump() RETURNS TEXT MODIFIES SQL DATA BEGIN UPDATE customers SET note = 'bumped';"
                " RETURN 'bumped'; END")
    return src


def untouched(src) -> None:
    assert src.tables() == {"customers", "out_customers", "out_groups"}
    assert src.run("SELECT id, code, note FROM customers ORDER BY id") == [r[:3] for r in ROWS]


_n = itertools.count(1)


def query_world(src, *, query: str, note_query: str | None = None, timeout: float | None = None) -> m.Schedule:
    options = dict(src.options)
    if timeout is not None:
        options["statementTimeout"] = timeout
    n = next(_n)
    model = m.RecordModel.objects.create(name=f"customers{n}")
    app = m.App.objects.create(name=f"shop{n}", type=src.kind, options=options)
    source = m.Source.objects.create(name=f"q{n}", app=app, model=model, type=f"{src.kind}-query",
                                     options={"query": query}, is_primary=True)
    code = m.Property.objects.create(model=model, source=source, key="code", type=PropertyType.STRING,
                                     unique=True, is_primary_key=True, options={"column": "code"})
    m.SourceMapping.objects.create(source=source, remote_key="code", property=code)
    if note_query:
        m.Property.objects.create(model=model, source=source, key="note", type=PropertyType.STRING,
                                  options={"query": note_query})
    return m.Schedule.objects.create(source=source, options={})


WRITING_QUERIES = {
    "sqlite": ["DROP TABLE customers", "DELETE FROM customers", "UPDATE customers SET note = 'x' RETURNING code",
               "INSERT INTO customers (id, code) VALUES (9, 'z') RETURNING code"],
    "postgres": ["DROP TABLE customers", "DELETE FROM customers RETURNING code",
                 "WITH gone AS (DELETE FROM customers RETURNING code) SELECT code FROM gone",
                 "SELECT code, bump() AS b FROM customers", "SELECT code FROM customers; DROP TABLE customers"],
    "mysql": ["DROP TABLE customers", "DELETE FROM customers", "SELECT code, bump() AS b FROM customers",
              "SELECT code FROM customers; DROP TABLE customers", "CREATE TABLE x AS SELECT code FROM customers"],
    "duckdb": ["DROP TABLE customers", "DELETE FROM customers RETURNING code",
               "UPDATE customers SET note = 'x' RETURNING code", "SELECT code FROM customers; DROP TABLE customers",
               "CREATE TABLE x AS SELECT code FROM customers"],
}


def test_a_writing_source_query_fails_the_run_and_changes_nothing(src):
    for query in WRITING_QUERIES[src.kind]:
        schedule = query_world(src, query=query)
        run = sync(schedule)
        assert run.state == RunState.FAILED, query
        assert run.error.strip(), query
        assert m.Record.objects.filter(model=schedule.source.model).count() == 0, query
        untouched(src)


WRITING_PROPERTY_QUERIES = {
    "sqlite": ["DELETE FROM customers WHERE code = {{{ code }}} RETURNING note",
               "UPDATE customers SET note = 'x' WHERE code = {{{ code }}} RETURNING note"],
    "postgres": ["WITH d AS (UPDATE customers SET note = 'x' WHERE code = {{{ code }}} RETURNING note) SELECT note FROM d",
                 "SELECT bump() FROM customers WHERE code = {{{ code }}}",
                 "DELETE FROM customers WHERE code = {{{ code }}} RETURNING note"],
    "mysql": ["SELECT bump() FROM customers WHERE code = {{{ code }}}",
              "DELETE FROM customers WHERE code = {{{ code }}}"],
    "duckdb": ["DELETE FROM customers WHERE code = {{{ code }}} RETURNING note",
               "UPDATE customers SET note = 'x' WHERE code = {{{ code }}} RETURNING note"],
}


def test_a_writing_query_property_fails_with_a_clear_error_and_changes_nothing(src):
    for note_query in WRITING_PROPERTY_QUERIES[src.kind]:
        schedule = query_world(src, query="SELECT code FROM customers", note_query=note_query)
        run = sync(schedule)
        assert run.state == RunState.FAILED, note_query
        assert run.error.strip(), note_query
        if "bump" in note_query:
            assert "read-only" in run.error, run.error
        assert not m.RecordProperty.objects.filter(property__source=schedule.source, property__key="note",
                                                   raw_value__gt="").exists()
        untouched(src)


SLOW = {
    "sqlite": "SELECT code FROM customers WHERE (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"
              " SELECT MAX(x) FROM c) > 0",
    "postgres": "SELECT code FROM customers, (SELECT pg_sleep(20)) AS s",
    "mysql": "SELECT code FROM customers WHERE SLEEP(20) = 0",
    "duckdb": "SELECT code FROM customers WHERE (SELECT SUM(hash(x)) FROM range(100000000000) AS r(x)) <> 0",
}


def test_a_query_past_its_statement_timeout_is_cancelled_and_named(src):
    schedule = query_world(src, query=SLOW[src.kind], timeout=1)
    started = time.monotonic()
    run = sync(schedule)
    elapsed = time.monotonic() - started
    assert run.state == RunState.FAILED
    assert "statement timeout of 1 s" in run.error, run.error
    assert elapsed < 15
    assert m.Record.objects.count() == 0
    untouched(src)


# --- structural read only: the same attacks through a run, the preview and the refresh query ----

# A source query is sent as `SELECT ... FROM (<query>) AS _q ...`: these close the wrapper early
# and stack statements after it, or change the session from inside a SELECT.
SMUGGLE = "SELECT code FROM customers) AS _a; {}; SELECT * FROM (SELECT code FROM customers"
STACKED = [
    SMUGGLE.format("COMMIT; DROP TABLE customers"),
    SMUGGLE.format("COMMIT; DROP TABLE out_groups"),
    SMUGGLE.format("COMMIT; UPDATE customers SET note = 'x'"),
    SMUGGLE.format("COMMIT; CREATE TABLE pwned (x INTEGER)"),
]
SOURCE_ATTACKS = {
    "sqlite": [*STACKED, SMUGGLE.format("PRAGMA query_only = OFF; DELETE FROM customers"),
               SMUGGLE.format("ATTACH DATABASE 'pwned.sqlite3' AS pwned")],
    "postgres": [
        *STACKED,
        SMUGGLE.format("COMMIT; SET default_transaction_read_only = off; DROP TABLE customers"),
        SMUGGLE.format("SET statement_timeout = 0; COMMIT; DROP TABLE customers"),
        "SELECT code, set_config('transaction_read_only', 'off', false) AS a, bump() AS b FROM customers",
        "SELECT code, set_config('default_transaction_read_only', 'off', false) AS a, bump() AS b FROM customers",
        "SELECT code, bump() AS b FROM customers",
    ],
    "mysql": [
        *STACKED,
        SMUGGLE.format("SET SESSION TRANSACTION READ WRITE; COMMIT; DROP TABLE customers"),
        "SELECT code, bump() AS b FROM customers",
    ],
    "duckdb": [*STACKED, SMUGGLE.format("SET enable_external_access = true; COPY customers TO 'pwned.csv'")],
}
REFRESH_ATTACKS = {
    "sqlite": ["SELECT 1; DROP TABLE customers", "SELECT 1; COMMIT; CREATE TABLE pwned (x INTEGER)",
               "SELECT 1; ATTACH DATABASE 'pwned.sqlite3' AS pwned"],
    "postgres": ["SELECT 1; COMMIT; DROP TABLE customers", "SELECT 1; COMMIT; CREATE TABLE pwned (x integer)",
                 "SELECT set_config('transaction_read_only', 'off', false), bump()",
                 "SELECT 1; COMMIT; SET default_transaction_read_only = off; UPDATE customers SET note = 'x'",
                 "SELECT bump()"],
    "mysql": ["SELECT 1; COMMIT; DROP TABLE customers", "SELECT 1; COMMIT; CREATE TABLE pwned (x INT)",
              "SELECT bump()"],
    "duckdb": ["SELECT 1; COMMIT; DROP TABLE customers", "SELECT 1; COMMIT; CREATE TABLE pwned (x INTEGER)"],
}


def test_stacked_and_session_changing_queries_change_nothing_through_a_run(src):
    for query in SOURCE_ATTACKS[src.kind]:
        schedule = query_world(src, query=query)
        run = sync(schedule)
        untouched(src)
        assert run.state == RunState.FAILED and run.error.strip(), query
        if query.startswith("SELECT code, bump()"):
            assert "read-only" in run.error, run.error


def read_only_client(db) -> APIClient:
    """A client whose API key may only read sources."""
    api_key, key = api_key_create(name=f"reader{next(_n)}")
    api_key_set_permissions(api_key=api_key, read=[ApiTopic.SOURCES], write=[])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_the_preview_is_as_read_only_as_a_run(src):
    client = read_only_client(src)
    for query in SOURCE_ATTACKS[src.kind]:
        source = query_world(src, query=query).source
        response = client.post(f"/api/v1/sources/{source.pk}/preview/", {"limit": 5}, format="json")
        assert response.status_code == 502, (query, response.status_code, response.content)
        untouched(src)
        # An invalid request answers 400 (a GET, 405) before the source is touched at all.
        response = client.post(f"/api/v1/sources/{source.pk}/preview/", {"limit": 0}, format="json")
        assert response.status_code == 400
        assert client.get(f"/api/v1/sources/{source.pk}/preview/").status_code == 405
        untouched(src)


def test_refresh_queries_are_as_read_only_as_a_run(src):
    app = m.App.objects.create(name=f"refreshed{next(_n)}", type=src.kind, options=dict(src.options))
    for query in REFRESH_ATTACKS[src.kind]:
        refresh = m.AppRefreshQuery.objects.create(app=app, query=query)
        assert app_refresh_query_run(refresh_query=refresh) == 0
        refresh.refresh_from_db()
        assert refresh.value is None, query  # the query failed: no value
        untouched(src)
        refresh.delete()
