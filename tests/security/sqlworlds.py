"""Source databases for the security tests, one per SQL dialect with query sources: a SQLite
file, a scratch PostgreSQL database, a scratch MariaDB database and a DuckDB file, each with a
small `customers` table and an `out_customers`/`out_groups` destination pair (DuckDB has no
destination connector: `KINDS` are the dialects with both sides, `SOURCE_KINDS` add DuckDB)."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

KINDS = ("sqlite", "postgres", "mysql")
SOURCE_KINDS = (*KINDS, "duckdb")

DDL = {
    "sqlite": [
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, code TEXT, note TEXT, updated_at TEXT)",
        "CREATE TABLE out_customers (code TEXT PRIMARY KEY, note TEXT, note_q TEXT)",
        "CREATE TABLE out_groups (code TEXT, name TEXT, PRIMARY KEY (code, name))",
    ],
    "postgres": [
        "CREATE TABLE customers (id integer PRIMARY KEY, code text, note text, updated_at timestamptz)",
        "CREATE TABLE out_customers (code text PRIMARY KEY, note text, note_q text)",
        "CREATE TABLE out_groups (code text, name text, PRIMARY KEY (code, name))",
    ],
    "mysql": [
        "CREATE TABLE customers (id INT PRIMARY KEY, code VARCHAR(191), note TEXT, updated_at DATETIME)",
        "CREATE TABLE out_customers (code VARCHAR(191) PRIMARY KEY, note TEXT, note_q TEXT)",
        "CREATE TABLE out_groups (code VARCHAR(191), name VARCHAR(191), PRIMARY KEY (code, name))",
    ],
    "duckdb": [
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, code VARCHAR, note VARCHAR, updated_at TIMESTAMP)",
        "CREATE TABLE out_customers (code VARCHAR PRIMARY KEY, note VARCHAR, note_q VARCHAR)",
        "CREATE TABLE out_groups (code VARCHAR, name VARCHAR, PRIMARY KEY (code, name))",
    ],
}


@dataclass
class SqlDb:
    """One dialect's database: app options for the connectors and a setup/assertion connection."""

    kind: str
    options: dict[str, Any]
    conn: Any

    def run(self, sql: str, params: Any = ()) -> list[tuple]:
        if self.kind == "duckdb":
            import duckdb

            # DuckDB locks its file: a connection per call, so the connectors can open it.
            with duckdb.connect(self.options["path"]) as conn:
                cur = conn.execute(sql, list(params))
                return [tuple(r) for r in cur.fetchall()] if cur.description else []
        if self.kind != "sqlite":
            sql = sql.replace("?", "%s")
        if self.kind == "mysql":
            with self.conn.cursor() as cur:
                cur.execute(sql, list(params) or None)
                return [tuple(r) for r in cur.fetchall()] if cur.description else []
        cur = self.conn.execute(sql, list(params))
        rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
        if self.kind == "sqlite":
            self.conn.commit()
        return rows

    def tables(self) -> set[str]:
        sql = {
            "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
            "postgres": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
            "mysql": "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
            "duckdb": "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'",
        }[self.kind]
        return {r[0] for r in self.run(sql)}


def make_db(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> SqlDb:
    if kind == "sqlite":
        path = tmp_path / "shop.sqlite3"
        db = SqlDb("sqlite", {"path": str(path)}, sqlite3.connect(path))
        request.addfinalizer(db.conn.close)
    elif kind == "duckdb":
        db = SqlDb("duckdb", {"path": str(tmp_path / "shop.duckdb")}, None)
    elif kind == "postgres":
        import psycopg

        pg = request.getfixturevalue("scratch_pg")
        conn = psycopg.connect(pg["url"], autocommit=True)
        request.addfinalizer(conn.close)
        db = SqlDb("postgres", {k: pg[k] for k in ("host", "port", "user", "database")}, conn)
    else:
        my = request.getfixturevalue("scratch_mysql")
        db = SqlDb("mysql", {k: my[k] for k in ("host", "port", "user", "password", "database")}, my["conn"])
    for statement in DDL[kind]:
        db.run(statement)
    return db
