"""A tiny shop database, built for real on SQLite (a temp file), PostgreSQL (a scratch schema),
MariaDB (a scratch database) and DuckDB (a temp file), so every SQL connector test runs against each dialect
without mocks. DuckDB is a source only: destination tests use `DESTINATION_KINDS`."""
from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from connectors import registry
from tests.connectors.plugins import example_plugin  # noqa: F401 - a fixture
from tests.connectors.servers import scratch_mysql  # noqa: F401 - a fixture

registry.load_builtins()

SOURCE_KINDS = ("sqlite", "postgres", "mysql", "duckdb")
DESTINATION_KINDS = ("sqlite", "postgres", "mysql")

USERS = [
    # id, email, first_name, ltv, vip, updated_at, version
    (1, "alice@example.com", "Alice", 100.5, True, "2024-01-01 10:00:00", 1),
    (2, "bob@example.com", "Bob", 20, False, "2024-01-02 10:00:00", 2),
    (3, "carol@shop.test", "Carol", None, True, "2024-01-03 10:00:00", 3),
    (4, "dave@example.com", None, 0, False, "2024-01-03 10:00:00", 3),
    (5, "eve@example.com", "Eve", 55.25, None, "2024-01-03 10:00:00", 3),
    (6, "frank@shop.test", "Frank", 70, True, "2024-01-03 10:00:00", 3),
    (7, "grace@example.com", "Grace", 5, False, "2024-01-04 10:00:00", 4),
    (8, "heidi_50%@other.test", "Heidi", 60, True, "2099-01-01 10:00:00", 5),
]
PURCHASES = [
    # id, user_id, amount, category, purchased_at
    (1, 1, 10.00, "books", "2024-01-01 09:00:00"),
    (2, 1, 25.50, "games", "2024-02-01 09:00:00"),
    (3, 1, 4.50, "books", "2024-03-01 09:00:00"),
    (4, 2, 100.00, "games", "2024-01-15 09:00:00"),
    (5, 2, 7.00, "books", None),
    (6, 3, 1.00, "books", "2023-12-31 09:00:00"),
    (7, None, 3.00, "books", "2024-01-01 09:00:00"),
]

DDL = {
    "sqlite": [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, ltv REAL, vip BOOLEAN,"
        " updated_at TIMESTAMP, version INTEGER)",
        "CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount NUMERIC, category TEXT,"
        " purchased_at TIMESTAMP)",
        "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, name TEXT, score INTEGER CHECK (score >= 0))",
        "CREATE TABLE people_groups (person_id INTEGER, group_name TEXT)",
        "CREATE TABLE no_key (id INTEGER, email TEXT)",
    ],
    "postgres": [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, ltv NUMERIC(10, 2),"
        " vip BOOLEAN, updated_at TIMESTAMPTZ, version INTEGER)",
        "CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount NUMERIC(10, 2), category TEXT,"
        " purchased_at TIMESTAMPTZ)",
        "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, name TEXT, score INTEGER CHECK (score >= 0))",
        "CREATE TABLE people_groups (person_id INTEGER, group_name TEXT)",
        "CREATE TABLE no_key (id INTEGER, email TEXT)",
        # A function that writes, to prove query sources run read-only.
        "CREATE FUNCTION bump() RETURNS integer LANGUAGE sql AS"
        " 'UPDATE users SET version = version + 1 RETURNING 1'",
    ],
    "mysql": [
        "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(255), first_name VARCHAR(255), ltv DECIMAL(10, 2),"
        " vip BOOLEAN, updated_at DATETIME, version INT)",
        "CREATE TABLE purchases (id INT PRIMARY KEY, user_id INT, amount DECIMAL(10, 2), category VARCHAR(255),"
        " purchased_at DATETIME)",
        "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(255), name VARCHAR(255), score INT CHECK (score >= 0))",
        "CREATE TABLE people_groups (person_id INT, group_name VARCHAR(255))",
        "CREATE TABLE no_key (id INT, email VARCHAR(255))",
        "CREATE FUNCTION bump() RETURNS INT MODIFIES SQL DATA BEGIN UPDATE users SET version = version + 1;"
        " RETURN 1; END",
    ],
    "duckdb": [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR, first_name VARCHAR, ltv DECIMAL(10, 2),"
        " vip BOOLEAN, updated_at TIMESTAMP, version INTEGER)",
        "CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount DECIMAL(10, 2), category VARCHAR,"
        " purchased_at TIMESTAMP)",
    ],
}
# A column type that can be a primary key holding text.
TEXT_KEY = {"sqlite": "TEXT", "postgres": "TEXT", "mysql": "VARCHAR(255)", "duckdb": "VARCHAR"}


@dataclass
class SqlWorld:
    """One dialect's database with the shop tables, plus helpers to build connectors on it."""

    kind: str
    app_options: dict[str, Any]
    _conn: Any = field(default=None, repr=False)

    @property
    def ph(self) -> str:
        return "?" if self.kind in ("sqlite", "duckdb") else "%s"

    @property
    def text_key(self) -> str:
        return TEXT_KEY[self.kind]

    def run(self, sql: str, params: Any = ()) -> list[tuple]:
        """Run SQL on a separate autocommit connection (setup and assertions). DuckDB: a
        read-write connection for this call only, as the connectors open the file read only."""
        sql = sql.replace("?", self.ph)
        if self.kind == "duckdb":
            import duckdb

            with duckdb.connect(self.app_options["path"]) as conn:
                cur = conn.execute(sql, list(params))
                rows = cur.fetchall() if cur.description else []
            return [tuple(r) for r in rows]
        if self.kind == "mysql":
            with self._conn.cursor() as cur:
                cur.execute(sql, list(params) or None)
                rows = list(cur.fetchall()) if cur.description else []
            return [tuple(r) for r in rows]
        cur = self._conn.execute(sql, list(params))
        rows = cur.fetchall() if cur.description else []
        if self.kind == "sqlite":
            self._conn.commit()
        return [tuple(r) for r in rows]

    def runmany(self, sql: str, rows: Any) -> None:
        sql = sql.replace("?", self.ph)
        if self.kind == "duckdb":
            import duckdb

            with duckdb.connect(self.app_options["path"]) as conn:
                conn.executemany(sql, [list(r) for r in rows])
            return
        if self.kind == "sqlite":
            self._conn.executemany(sql, rows)
            self._conn.commit()
            return
        cur = self._conn.cursor()
        cur.executemany(sql, [list(r) for r in rows])
        cur.close()

    def source(self, flavour: str, app: dict[str, Any] | None = None, **options: Any):
        cls = registry.get_source(f"{self.kind}-{flavour}")
        return cls({**self.app_options, **(app or {})}, options)

    def destination(self, **options: Any):
        return registry.get_destination(f"{self.kind}-export")(self.app_options, options)

    def app(self, **overrides: Any):
        return registry.get_app(self.kind)({**self.app_options, **overrides})

    def ts(self, text: str) -> Any:
        """A timestamp as max_watermark would report it on this dialect (naive on MySQL's
        DATETIME and DuckDB's TIMESTAMP, UTC on PostgreSQL's timestamptz, text on SQLite)."""
        if self.kind == "sqlite":
            return text
        if self.kind == "postgres":
            return text.replace(" ", "T") + "+00:00"
        return text.replace(" ", "T")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _load(world: SqlWorld) -> None:
    ph = world.ph
    if world.kind == "duckdb":
        import duckdb

        with duckdb.connect(world.app_options["path"]) as conn:  # one connection: opening costs
            for statement in DDL["duckdb"]:
                conn.execute(statement)
            conn.executemany(f"INSERT INTO users VALUES ({', '.join([ph] * 7)})", [list(u) for u in USERS])
            conn.executemany(f"INSERT INTO purchases VALUES ({', '.join([ph] * 5)})", [list(p) for p in PURCHASES])
            conn.execute("CHECKPOINT")
        return
    for statement in DDL[world.kind]:
        world.run(statement)
    world.runmany(f"INSERT INTO users VALUES ({', '.join([ph] * 7)})", USERS)
    world.runmany(f"INSERT INTO purchases VALUES ({', '.join([ph] * 5)})", PURCHASES)


@pytest.fixture(scope="session")
def duckdb_shop_template(tmp_path_factory) -> str:
    """The shop as a DuckDB file, built once; each test works on a copy."""
    path = tmp_path_factory.mktemp("duckdb") / "shop.duckdb"
    _load(SqlWorld("duckdb", {"path": str(path)}))
    return str(path)


@pytest.fixture(scope="session")
def pg_shop_database(postgres_url) -> Iterator[dict[str, Any]]:
    """One scratch PostgreSQL database for the connector tests of this session; each test gets a
    fresh schema in it (creating a database per test costs half a second), dropped after."""
    import psycopg

    name = f"gt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_url.rsplit("/", 1)[0]
    yield {"url": f"{base}/{name}", "host": "127.0.0.1", "port": 5432, "user": "postgres", "database": name}
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def make_world(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> SqlWorld:
    """The shop database on `kind` (server dialects: a scratch database dropped afterwards)."""
    if kind == "sqlite":
        path = tmp_path / "shop.db"
        conn = sqlite3.connect(path)
        w = SqlWorld("sqlite", {"path": str(path), "statementTimeout": 5}, conn)
    elif kind == "duckdb":
        path = tmp_path / "shop.duckdb"
        shutil.copyfile(request.getfixturevalue("duckdb_shop_template"), path)
        return SqlWorld("duckdb", {"path": str(path), "statementTimeout": 5})
    elif kind == "mysql":
        my = request.getfixturevalue("scratch_mysql")
        options = {k: my[k] for k in ("host", "port", "user", "password", "database")}
        w = SqlWorld("mysql", {**options, "statementTimeout": 5}, my["conn"])
    else:
        import psycopg

        pg = request.getfixturevalue("pg_shop_database")
        schema = f"s_{uuid.uuid4().hex[:12]}"
        conn = psycopg.connect(pg["url"], autocommit=True)
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("SET TIME ZONE 'UTC'")
        request.addfinalizer(lambda: _drop_schema(pg["url"], schema))
        options = {
            "host": pg["host"],
            "port": pg["port"],
            "database": pg["database"],
            "user": pg["user"],
            "password": "",
            "schema": schema,
            "statementTimeout": 5,
        }
        w = SqlWorld("postgres", options, conn)
    _load(w)
    return w


@pytest.fixture(params=SOURCE_KINDS)
def world(request, tmp_path) -> Iterator[SqlWorld]:
    """The shop database on each dialect with SQL sources."""
    w = make_world(request.param, request, tmp_path)
    yield w
    if w.kind != "mysql":  # scratch_mysql closes its own connection
        w.close()
