"""A query source can neither write nor run past its statement timeout, seen through a real
run: a query or query property that would write (DML, DDL, a writing CTE or function) fails the
run with a clear error and changes nothing in the source; a query slower than the app's
statementTimeout is cancelled and the run's error names the timeout."""
from __future__ import annotations

import itertools
import time

import pytest

from core import models as m
from core.choices import PropertyType, RunState
from tests.engine.helpers import sync
from tests.security.sqlworlds import KINDS, make_db

pytestmark = pytest.mark.django_db

ROWS = [(1, "a", "note a", "2026-01-01 00:00:01"), (2, "b", "note b", "2026-01-01 00:00:02")]


@pytest.fixture(params=KINDS)
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
    assert {"customers", "out_customers", "out_groups"} <= src.tables()
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
