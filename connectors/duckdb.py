"""DuckDB: the app ("duckdb", a database file) with table and query sources — the embedded
stand-in for an analytics warehouse. Only what DuckDB does differently from `connectors.sql`
lives here. (`import duckdb` below is the DuckDB package: imports are absolute.)

- The file is opened read only, with external access disabled (a query cannot read other files,
  ATTACH databases, load extensions or write with COPY) and the configuration locked (no SET can
  change it), for one call at a time: DuckDB locks its file, and a connection kept open would
  block the process that writes the warehouse. Refresh queries and test_connection open it the
  same way.
- DuckDB's Python `execute` runs every statement of a `;`-separated string: a call holding more
  than one statement is refused before anything runs.
- DuckDB hands an infinite date or timestamp to Python as `date.max`/`datetime.max` (`.min` for
  -infinity), the same as a real 9999-12-31: where a result holds such a value, the statement is
  read again (same transaction, same snapshot) asking DuckDB which values are infinite, and those
  become the text `infinity`/`-infinity`, which the engine flags on the record. Years past 9999
  already arrive as text.
- DuckDB has no statement timeout: a timer interrupts the connection when the app's
  statementTimeout passes.
- DuckDB binds a parameter with the type its context asks for, so keys and watermarks that went
  through JSON (ISO strings, text numbers) compare with typed columns as they are.
- DuckDB has no savepoints, and no destination here.

`DuckdbDialect` is also the engine of the CSV source (`connectors.csv_file`).
"""
from __future__ import annotations

import os
import re
import threading
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.base import ConnectorError, Option
from connectors.lazy import LazyModule
from connectors.registry import register
from connectors.sql import Dialect, SqlApp, SqlQuerySource, SqlTableSource, timeout_option

duckdb = LazyModule("duckdb")


# Python's stand-ins for DuckDB's infinite dates and timestamps.
_INFINITE_STAND_INS = frozenset({date.max, date.min, datetime.max, datetime.min})
_DATE_TYPE = re.compile(r"^(DATE|TIMESTAMP(_S|_MS|_NS)?( WITH TIME ZONE)?)$")


class _Connection:
    """A DuckDB connection that is its own cursor (DuckDB's `cursor()` opens a second connection
    outside the transaction), runs one statement per execute(), reads infinite dates as text
    and carries the timer of its statement timeout."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, label: str):
        self.conn = conn
        self.label = label
        self.timer: threading.Timer | None = None
        self._statement: tuple[str, Any] | None = None
        self._description: Any = None
        self._rerun: list[tuple[Any, ...]] | None = None
        self._position = 0

    def cursor(self) -> _Connection:
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    # -- one statement per call, infinite dates as text
    def execute(self, sql: str, params: Any = None) -> _Connection:
        if ";" in sql and len(self.conn.extract_statements(sql)) > 1:
            raise ConnectorError("Only one SQL statement can run at a time; this query holds several.", permanent=True)
        self.conn.execute(sql, params)
        self._statement, self._description, self._rerun, self._position = (sql, params), None, None, 0
        return self

    @property
    def description(self) -> Any:
        return self._description if self._description is not None else self.conn.description

    def fetchall(self) -> list[Any]:
        rows = self.conn.fetchall() if self._rerun is None else self._rerun[self._position :]
        start, self._position = self._position, self._position + len(rows)
        return self._finite(rows, start)

    def fetchone(self) -> Any:
        row = self.conn.fetchone() if self._rerun is None else next(iter(self._rerun[self._position :]), None)
        if row is None:
            return None
        self._position += 1
        return self._finite([row], self._position - 1)[0]

    def _finite(self, rows: list[Any], start: int) -> list[Any]:
        """`rows` (from position `start` of the result) with infinite dates as text."""
        if self._rerun is not None or not rows:
            return rows
        dates = [i for i, d in enumerate(self.conn.description or ()) if _DATE_TYPE.match(str(d[1]))]
        if not dates or not any(row[i] in _INFINITE_STAND_INS for row in rows for i in dates):
            return rows
        return self._reread(dates)[start : start + len(rows)]

    def _reread(self, dates: list[int]) -> list[tuple[Any, ...]]:
        """The whole result again, with `isinf()` of each date column beside it. The same
        statement in the same transaction sees the same snapshot, in the same order (DuckDB
        keeps the order of a projection)."""
        assert self._statement is not None
        sql, params = self._statement
        description = self.conn.description
        names = ", ".join(f"_c{i}" for i in range(len(description)))
        flags = ", ".join(f"isinf(_c{i})" for i in dates)
        self.conn.execute(f"SELECT *, {flags} FROM ({sql}) AS _r({names})", params)
        width = len(description)
        rows: list[tuple[Any, ...]] = []
        for full in self.conn.fetchall():
            row = list(full[:width])
            for flag, i in zip(full[width:], dates, strict=True):
                if flag:
                    row[i] = "infinity" if row[i] in (date.max, datetime.max) else "-infinity"
            rows.append(tuple(row))
        self._description, self._rerun = description, rows
        return rows

    def arm(self, timeout: float | None) -> None:
        self.disarm()
        if timeout:
            self.timer = threading.Timer(timeout, self.conn.interrupt)
            self.timer.daemon = True
            self.timer.start()

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> None:
        self.disarm()
        self.conn.close()


def first_line(exc: BaseException) -> str:
    """DuckDB's message without its context lines (LINE 1: ..., the caret, file details)."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class DuckdbDialect(Dialect):
    name = "DuckDB"
    placeholder = "?"
    @property
    def driver_errors(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        return (duckdb.Error,)
    supports_savepoints = False
    persistent_connections = False

    def _path(self, options: dict[str, Any]) -> str:
        path = options.get("path")
        if not path:
            raise ConnectorError("The DuckDB app has no database file path.", permanent=True)
        return os.path.abspath(os.path.expanduser(str(path)))

    def open(self, database: str, label: str) -> _Connection:
        """A connection to `database` (a file, read only; ":memory:" for CSV files)."""
        config: dict[str, Any] = {"enable_external_access": False, "threads": 2, "lock_configuration": True}
        try:
            if database == ":memory:":
                conn = duckdb.connect(":memory:", config={"threads": 2})
            else:
                conn = duckdb.connect(database, read_only=True, config=config)
        except duckdb.Error as exc:
            raise self.translate_error(exc, timeout=None) from None
        return _Connection(conn, label)

    def connect(self, options: dict[str, Any], *, read_only: bool) -> Any:
        path = self._path(options)
        if not os.path.isfile(path):
            raise ConnectorError(f'DuckDB database file "{path}" does not exist', permanent=True)
        if not os.access(path, os.R_OK):
            raise ConnectorError(f'DuckDB database file "{path}" cannot be read (permissions)', permanent=True)
        return self.open(path, path)

    def begin(self, conn: Any, *, read_only: bool, timeout: float | None) -> None:
        conn.arm(timeout)
        conn.conn.execute("BEGIN TRANSACTION")

    def commit(self, conn: Any) -> None:
        conn.disarm()
        conn.conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        conn.disarm()
        conn.conn.execute("ROLLBACK")

    def server_description(self, conn: Any, options: dict[str, Any]) -> str:
        version = conn.execute("SELECT version()").fetchone()[0]
        tables = conn.execute("SELECT COUNT(*) FROM information_schema.tables").fetchone()[0]
        return f"Connected to DuckDB {version}, file {self._path(options)} ({tables} tables)"

    # -- catalog
    def table_ref(self, options: dict[str, Any], table: str) -> str:
        schema = options.get("schema") or "main"
        return f"{self.quote(schema)}.{self.quote(table)}"

    def table_columns(self, cur: Any, options: dict[str, Any], table: str) -> list[tuple[str, str | None]]:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [options.get("schema") or "main", table],
        )
        return [(name, type_) for name, type_ in cur.fetchall()]

    def has_unique_index(self, cur: Any, options: dict[str, Any], table: str, column: str) -> bool:
        return False  # pragma: no cover - DuckDB has no destination

    def description_types(self, cur: Any) -> list[str | None]:
        return [str(d[1]) if d[1] is not None else None for d in cur.description]

    def classify_type(self, type_name: str | None) -> str | None:
        if not type_name:
            return None
        t = type_name.strip().lower()
        if t.startswith(("struct", "map", "union", "enum", "list", "uuid", "blob", "bit", "json", "varchar")):
            return "string"
        if t == "time" or t.startswith("time with"):
            return "string"
        return super().classify_type(t)

    # -- spellings
    def like_sql(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR) ILIKE ? ESCAPE '\\'"

    def aggregate_sql(self, function: str, value: str, db_type: str | None) -> str:
        # DuckDB has no exact decimal wider than DECIMAL(38) to add binary floats in (CSV
        # files' decimals are DOUBLE): their sum or average is rounded to 15 significant
        # digits, the precision every double holds, which drops the noise of adding them
        # (0.30000000000000004 is 0.3). DECIMAL columns are exact already.
        if function in ("SUM", "AVG") and (db_type or "").upper() in ("DOUBLE", "FLOAT", "REAL", "FLOAT8", "FLOAT4"):
            return f"printf('%.15g', {function}({value}))"
        return super().aggregate_sql(function, value, db_type)

    def decode_number(self, value: Any) -> Any:
        return Decimal(value) if isinstance(value, str) else value

    def array_agg_sql(self, value: str, order: str) -> str:
        return f"list({value} ORDER BY {order})"

    def array_subquery_sql(self, select_sql: str, column: str) -> str:
        return f"ARRAY({select_sql})"

    # -- errors
    def translate_error(self, exc: BaseException, *, timeout: float | None) -> ConnectorError:
        line = first_line(exc)
        text = str(exc)
        missing = re.search(r"Table with name (.+?) does not exist", text)
        if isinstance(exc, duckdb.CatalogException) and missing:
            return ConnectorError(f'table "{missing.group(1)}" does not exist', permanent=True)
        if isinstance(exc, duckdb.InterruptException):
            limit = f" of {timeout:g} s" if timeout else ""
            return ConnectorError(f"The query was cancelled after the statement timeout{limit}.")
        if "read-only mode" in text:
            return ConnectorError(f"Sources are read-only: DuckDB refused a write ({line}).", permanent=True)
        if "Could not set lock" in text or "Conflicting lock" in text:
            return ConnectorError("The DuckDB file is locked by another process (a writer); try again later.")
        if "not a valid DuckDB database file" in text:
            return ConnectorError(f"{line.removeprefix('IO Error: ')}", permanent=True)
        if isinstance(exc, duckdb.PermissionException):
            return ConnectorError(f"DuckDB refused: {line} (queries may read only this database).", permanent=True)
        transient = isinstance(exc, duckdb.IOException | duckdb.OutOfMemoryException)
        return ConnectorError(f"DuckDB error: {line}", permanent=not transient)


DUCKDB = DuckdbDialect()


@register
class DuckdbApp(SqlApp):
    key = "duckdb"
    label = "DuckDB"
    dialect = DUCKDB
    max_concurrency = 2
    options = (
        Option(
            "path", "Database file", required=True, file_path=True,
            help_text="Path to the DuckDB database file (opened read only).",
        ),
        Option("schema", "Schema", default="main", help_text="Tables are read from this schema."),
        timeout_option(),
    )


@register
class DuckdbTableSource(SqlTableSource):
    key = "duckdb-table"
    app_key = "duckdb"
    label = "DuckDB table"
    aliases = ("duckdb-import-table", "duckdb-table-import")
    dialect = DUCKDB


@register
class DuckdbQuerySource(SqlQuerySource):
    key = "duckdb-query"
    app_key = "duckdb"
    label = "DuckDB query"
    aliases = ("duckdb-import-query", "duckdb-query-import")
    dialect = DUCKDB
