"""Read only is structural on every SQL dialect, below the first-word check of user SQL: every
driver runs one statement per call; the connections of sources, refresh queries and
test_connection are read only themselves (a read-only file, or a read-only session with the
statement timeout set for the session); and on PostgreSQL a statement whose query lifted the
session's timeout is still cancelled, by a client-side backstop."""

from __future__ import annotations

import time

import pytest

from connectors import registry
from connectors.base import ConnectorError
from connectors.sql import SqlConnectionMixin
from tests.connectors.conftest import SOURCE_KINDS, make_world


@pytest.fixture(params=SOURCE_KINDS)
def world(request, tmp_path):
    return make_world(request.param, request, tmp_path)


def connection(world, *, read_only: bool = True, **app):
    """A connection as the dialect opens it for a source (read_only) or a destination."""
    return registry.get_app(world.kind).dialect.connect(
        {**world.app_options, **app}, read_only=read_only
    )


def run_raw(conn, sql: str) -> list:
    cur = conn.cursor()
    cur.execute(sql)
    rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
    if hasattr(cur, "close") and cur is not conn:
        cur.close()
    return rows


def untouched(world) -> None:
    assert world.run("SELECT COUNT(*) FROM users") == [(8,)]
    assert world.run("SELECT MAX(version) FROM users") == [(5,)]


def test_one_statement_per_call_on_every_driver(world):
    """`SELECT 1; SELECT 2` is refused by the driver itself, on read-only connections and
    (where the dialect has a destination) on writing ones. On PostgreSQL this proves that every
    statement takes the extended protocol, which a psycopg upgrade could otherwise undo."""
    kinds = (True, False) if world.kind != "duckdb" else (True,)
    for read_only in kinds:
        conn = connection(world, read_only=read_only)
        try:
            with pytest.raises(Exception) as info:
                run_raw(conn, "SELECT 1; SELECT 2")
            assert not isinstance(info.value, AssertionError)
        finally:
            conn.close()
    with pytest.raises(ConnectorError) as info:
        world.app().refresh_query("SELECT 1; UPDATE users SET version = 9")
    assert info.value.permanent
    untouched(world)


def test_read_only_connections_cannot_write_even_outside_a_transaction(world):
    """The session (or file) is read only, not only the transactions the connector begins."""
    conn = connection(world)
    try:
        for sql in ("UPDATE users SET version = 9", "CREATE TABLE pwned (x INTEGER)"):
            with pytest.raises(Exception) as info:
                if world.kind == "postgres":
                    conn.rollback()
                run_raw(conn, sql)
                if world.kind in ("postgres", "mysql"):
                    conn.commit()
            assert not isinstance(info.value, AssertionError), sql
    finally:
        conn.close()
    untouched(world)
    assert world.run("SELECT COUNT(*) FROM users WHERE version = 9") == [(0,)]


def test_read_only_sessions_say_so(world):
    """What each server reports for a read-only connection: PostgreSQL's session defaults,
    MariaDB's session transaction mode and time limit, SQLite's query_only, DuckDB's mode."""
    conn = connection(world, statementTimeout=7)
    try:
        if world.kind == "postgres":
            assert run_raw(conn, "SHOW default_transaction_read_only") == [("on",)]
            assert run_raw(conn, "SHOW statement_timeout") == [("7s",)]
        elif world.kind == "mysql":
            assert run_raw(conn, "SELECT @@session.tx_read_only") == [(1,)]
            assert run_raw(conn, "SELECT @@session.max_statement_time") == [(7.0,)]
        elif world.kind == "sqlite":
            assert run_raw(conn, "PRAGMA query_only") == [(1,)]
        else:
            assert run_raw(conn, "SELECT current_setting('access_mode')") == [("read_only",)]
            assert run_raw(conn, "SELECT current_setting('lock_configuration')") == [(True,)]
    finally:
        conn.close()


def test_test_connection_and_refresh_queries_use_read_only_connections(world, monkeypatch):
    modes: list[bool] = []
    dialect = registry.get_app(world.kind).dialect
    real = type(dialect).connect

    def spy(self, options, *, read_only):
        modes.append(read_only)
        return real(self, options, read_only=read_only)

    monkeypatch.setattr(type(dialect), "connect", spy)
    world.app().test_connection()
    world.app().refresh_query("SELECT MAX(version) FROM users")
    assert modes == [True, True]


def test_sqlite_read_only_connections_cannot_attach_or_vacuum_into_files(tmp_path, request):
    world = make_world("sqlite", request, tmp_path)
    conn = connection(world)
    try:
        for sql in (
            f"ATTACH DATABASE '{tmp_path / 'pwned.db'}' AS pwned",
            f"VACUUM INTO '{tmp_path / 'copy.db'}'",
        ):
            with pytest.raises(Exception, match="authoriz"):
                run_raw(conn, sql)
    finally:
        conn.close()
    assert not (tmp_path / "pwned.db").exists() and not (tmp_path / "copy.db").exists()


def test_duckdb_configuration_cannot_be_changed_by_a_query(tmp_path, request):
    world = make_world("duckdb", request, tmp_path)
    conn = connection(world)
    try:
        for sql in (
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "SET threads = 64",
        ):
            with pytest.raises(Exception, match="locked"):
                run_raw(conn, sql)
    finally:
        conn.close()


def test_a_query_that_lifts_the_postgres_timeout_is_still_cancelled(tmp_path, request):
    """set_config('statement_timeout', '0', false) inside a SELECT lifts the session's timeout
    for the statements after it in that transaction: the client-side backstop cancels them.
    In the next call, the transaction sets the timeout again."""
    world = make_world("postgres", request, tmp_path)
    source = world.source("query", app={"statementTimeout": 1}, query="SELECT id FROM users")
    assert isinstance(source, SqlConnectionMixin)
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        with source.transaction() as cur:
            cur.execute("SELECT set_config('statement_timeout', '0', false)")
            cur.execute("SELECT pg_sleep(30)")
    assert "statement timeout of 1 s" in info.value.message
    assert time.monotonic() - started < 15
    # A committed lift does not outlive its transaction either.
    with source.transaction() as cur:
        cur.execute("SELECT set_config('statement_timeout', '0', false)")
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        with source.transaction() as cur:
            cur.execute("SELECT pg_sleep(30)")
    assert "statement timeout of 1 s" in info.value.message
    assert time.monotonic() - started < 5
    source.close()


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "1e300", "soon"])
def test_a_statement_timeout_that_is_not_a_bounded_number_is_refused(world, value):
    """Never read as "no limit": refused by the app's option check, and a value stored before
    the check fails the call naming it."""
    cls = registry.get_app(world.kind)
    errors = cls.validate_options({**world.app_options, "statementTimeout": value})
    assert "statementTimeout" in errors, errors
    source = world.source("table", app={"statementTimeout": value}, table="users")
    with pytest.raises(ConnectorError, match="statementTimeout") as info:
        source.preview(1)
    assert info.value.permanent
    source.close()
    assert not cls.validate_options({**world.app_options, "statementTimeout": 0})


def test_the_connection_test_notes_a_role_that_could_write_and_not_a_read_only_one(tmp_path, request):
    """Superusers (PostgreSQL) and users with FILE or all privileges (MySQL) are named by the
    connection test; a role that may only read is not."""
    import uuid

    for kind in ("postgres", "mysql"):
        world = make_world(kind, request, tmp_path / kind)
        assert "sources are safer" in registry.get_app(kind)(world.app_options).test_connection()
        role = f"gp_ro_{uuid.uuid4().hex[:8]}"
        database = world.app_options["database"]
        if kind == "postgres":
            world.run(f'CREATE ROLE "{role}" LOGIN')
            world.run(f'GRANT USAGE ON SCHEMA "{world.app_options.get("schema", "public")}" TO "{role}"')
            request.addfinalizer(lambda w=world, r=role: w.run(f'DROP OWNED BY "{r}"; DROP ROLE "{r}"'))
        else:
            world.run(f"CREATE USER '{role}'@'%'")
            world.run(f"GRANT SELECT ON `{database}`.* TO '{role}'@'%'")
            request.addfinalizer(lambda w=world, r=role: w.run(f"DROP USER '{r}'@'%'"))
        message = registry.get_app(kind)({**world.app_options, "user": role, "password": ""}).test_connection()
        assert message.startswith("Connected to") and "safer" not in message, message
