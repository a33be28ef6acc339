"""The demo's source database on each local server: write the tables as the demo does, read them
back and run a query property's SQL through the plain driver (never through the engine)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.grouparoo_demo import data


@dataclass
class DemoDatabase:
    """One source database: `kind` is the demo's plugin name (postgres, mysql, sqlite) and
    `connection` the demo's connection settings (host, port, database, user, password, schema
    for PostgreSQL; `file` for SQLite)."""

    kind: str
    connection: dict[str, Any]

    def write(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        if self.kind == "postgres":
            data.write_postgres(self._pg_conninfo(), tables, schema=self.connection["schema"])
        elif self.kind == "mysql":
            data.write_mysql(self._mysql_connect, tables)
        else:
            data.write_sqlite(self.connection["file"], tables)

    def read(
        self, tables: tuple[str, ...] = tuple(data.COLUMNS)
    ) -> dict[str, list[dict[str, Any]]]:
        """The tables as stored (all six of the demo's unless `tables` says which)."""
        return data.read_tables(self._fetch, tables)

    def query(self, sql: str) -> list[tuple]:
        """Rows of `sql`, a query property's SELECT, on this database."""
        return self._fetch_sql(sql)[1]

    def _table(self, table: str) -> str:
        if self.kind == "postgres":
            return f'{self.connection["schema"]}."{table}"'
        return f"`{table}`"

    def _fetch(self, table: str) -> tuple[list[str], list[tuple]]:
        return self._fetch_sql(f"SELECT * FROM {self._table(table)} ORDER BY id")

    def _fetch_sql(self, sql: str) -> tuple[list[str], list[tuple]]:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(self._pg_conninfo()) as conn, conn.cursor() as cur:
                cur.execute(sql)
                return [d.name for d in cur.description], cur.fetchall()
        if self.kind == "mysql":
            conn = self._mysql_connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    return [d[0] for d in cur.description], list(cur.fetchall())
            finally:
                conn.close()
        conn = sqlite3.connect(self.connection["file"])
        try:
            cur = conn.execute(sql)
            return [d[0] for d in cur.description], cur.fetchall()
        finally:
            conn.close()

    def _pg_conninfo(self) -> str:
        c = self.connection
        return f"host={c['host']} port={c['port']} dbname={c['database']} user={c['user']}"

    def _mysql_connect(self) -> Any:
        import pymysql

        c = self.connection
        return pymysql.connect(
            host=c["host"],
            port=int(c["port"]),
            user=c["user"],
            password=c["password"] or "",
            database=c["database"],
            autocommit=True,
            charset="utf8mb4",
            init_command="SET SESSION time_zone = '+00:00'",
        )


def sqlite_database(directory: Path) -> DemoDatabase:
    """The demo's SQLite file, `grouparoo_demo_seed.sqlite` (the demo writes it in the project
    directory), in `directory`."""
    return DemoDatabase("sqlite", {"file": str(directory / "grouparoo_demo_seed.sqlite")})
