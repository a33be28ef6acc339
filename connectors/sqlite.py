"""SQLite: the app ("sqlite", a database file), table and query sources, and the export
destination. Only what SQLite does differently from `connectors.sql` lives here.

Sources, refresh queries and test_connection open the file read only (`file:...?mode=ro` plus
`PRAGMA query_only`), with ATTACH (and so VACUUM INTO, which would create a file) refused by an
authorizer; Python's sqlite3 runs one statement per execute() and refuses a second one. A
progress handler aborts any statement running past the app's statementTimeout. Timestamps are usually
text in SQLite: dates are compared through `datetime()`, so '2024-01-02T03:04:05Z' and
'2024-01-02 03:04:05' agree; watermarks are compared as stored (text or numbers).
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from datetime import date, datetime
from datetime import time as dtime
from decimal import Context, Decimal
from typing import Any
from urllib.parse import quote as url_quote
from uuid import UUID

from connectors.base import ConnectorError, Option
from connectors.registry import register
from connectors.sql import (
    Dialect,
    SqlApp,
    SqlDestination,
    SqlQuerySource,
    SqlTableSource,
    timeout_option,
)


class _Connection(sqlite3.Connection):
    """A connection that knows the deadline of its current statement."""

    deadline: float | None = None

    def past_deadline(self) -> int:
        return 1 if self.deadline is not None and time.monotonic() > self.deadline else 0


class _DecimalSum:
    """SUM as exact decimals: each value as it reads (0.1, not the binary float nearest it),
    so 0.1 + 0.2 is 0.3. Values as SQLite's SUM takes them: text is read as a number (0 when
    it is not one), NULLs are skipped. The result is text (None when every value was NULL)."""

    def __init__(self) -> None:
        self.total = Decimal(0)
        self.count = 0

    def step(self, value: Any) -> None:
        if value is None:
            return
        self.count += 1
        # No trap: a sum past Decimal's range is Infinity (flagged on that record's value, not
        # an exception that fails the whole statement, and so the whole run).
        self.total = _CONTEXT.add(self.total, _decimal(value))

    def finalize(self) -> str | None:
        return None if self.count == 0 else str(self.total)


class _DecimalAvg(_DecimalSum):
    """AVG as exact decimals (see _DecimalSum), to 28 significant digits."""

    def finalize(self) -> str | None:
        return None if self.count == 0 else str(_CONTEXT.divide(self.total, self.count))


# Decimal arithmetic that never raises: overflow gives Infinity, Infinity - Infinity NaN.
_CONTEXT = Context(prec=28, traps=[])
# The numeric prefix SQLite reads in a text ("12abc" is 12; "NaN", "Infinity" are 0).
_NUMERIC_PREFIX = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")


def _decimal(value: Any) -> Decimal:
    """A value of a SQLite column as the decimal SQLite's SUM reads it as (never raises):
    text is read up to where it stops being a number, and is 0 when it starts with none
    ("NaN", "Infinity" and "sNaN" are text to SQLite, not numbers)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    match = _NUMERIC_PREFIX.match(str(value))
    return Decimal(match[1]) if match else Decimal(0)


def _deny_attach(action: int, *_: Any) -> int:
    """Authorizer of read-only connections: ATTACH and DETACH (VACUUM INTO attaches) refused."""
    return sqlite3.SQLITE_DENY if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH) else sqlite3.SQLITE_OK


class SqliteDialect(Dialect):
    name = "SQLite"
    placeholder = "?"
    driver_errors = (sqlite3.Error,)

    def _path(self, options: dict[str, Any]) -> str:
        path = options.get("path")
        if not path:
            raise ConnectorError("The SQLite app has no database file path.", permanent=True)
        return os.path.abspath(os.path.expanduser(str(path)))

    def connect(self, options: dict[str, Any], *, read_only: bool) -> Any:
        path = self._path(options)
        if not os.path.isfile(path):
            raise ConnectorError(f'SQLite database file "{path}" does not exist', permanent=True)
        uri = f"file:{url_quote(path)}?mode={'ro' if read_only else 'rw'}"
        try:
            conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, timeout=10, factory=_Connection, check_same_thread=False
            )
            if read_only:
                conn.execute("PRAGMA query_only = ON")
                conn.set_authorizer(_deny_attach)
        except sqlite3.Error as exc:
            raise ConnectorError(f'Cannot open SQLite database "{path}": {exc}', permanent=True) from None
        conn.set_progress_handler(conn.past_deadline, 1000)
        conn.create_aggregate("grouparoo_decimal_sum", 1, _DecimalSum)
        conn.create_aggregate("grouparoo_decimal_avg", 1, _DecimalAvg)
        return conn

    def begin(self, conn: Any, *, read_only: bool, timeout: float | None) -> None:
        conn.deadline = time.monotonic() + timeout if timeout else None
        conn.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")

    def commit(self, conn: Any) -> None:
        conn.deadline = None
        if conn.in_transaction:
            conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        conn.deadline = None
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def server_description(self, conn: Any, options: dict[str, Any]) -> str:
        version = conn.execute("SELECT sqlite_version()").fetchone()[0]
        tables = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type IN ('table', 'view')").fetchone()[0]
        return f"Connected to SQLite {version}, file {self._path(options)} ({tables} tables)"

    def table_columns(self, cur: Any, options: dict[str, Any], table: str) -> list[tuple[str, str | None]]:
        cur.execute("SELECT name, type FROM pragma_table_info(?) ORDER BY cid", [table])
        return [(name, type_ or None) for name, type_ in cur.fetchall()]

    def has_unique_index(self, cur: Any, options: dict[str, Any], table: str, column: str) -> bool:
        cur.execute(
            "SELECT 1 FROM pragma_table_info(?) WHERE name = ? AND pk = 1"
            " AND (SELECT COUNT(*) FROM pragma_table_info(?) WHERE pk > 0) = 1"
            " UNION ALL SELECT 1 FROM pragma_index_list(?) il WHERE il.\"unique\" = 1 AND il.partial = 0"
            " AND (SELECT COUNT(*) FROM pragma_index_info(il.name)) = 1"
            " AND (SELECT name FROM pragma_index_info(il.name)) = ?",
            [table, column, table, table, column],
        )
        return cur.fetchone() is not None

    def date_expr(self, expr: str) -> str:
        return f"datetime({expr})"

    def date_param_sql(self) -> str:
        return "datetime(?)"

    def date_param(self, moment: datetime) -> Any:
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def aggregate_sql(self, function: str, value: str, db_type: str | None) -> str:
        # SQLite adds binary floats (every NUMERIC or DECIMAL column holds REALs): sums and
        # averages are added as decimals in Python instead.
        if function in ("SUM", "AVG"):
            return f"grouparoo_decimal_{function.lower()}({value})"
        return super().aggregate_sql(function, value, db_type)

    def decode_number(self, value: Any) -> Any:
        return Decimal(value) if isinstance(value, str) else value

    def array_agg_sql(self, value: str, order: str) -> str:
        # No ORDER BY inside aggregates before SQLite 3.44: the rows arrive ordered instead.
        return f"json_group_array({value})"

    def array_subquery_sql(self, select_sql: str, column: str) -> str:
        return f"(SELECT json_group_array(_w.{column}) FROM ({select_sql}) AS _w)"

    def decode_array(self, value: Any) -> list[Any]:
        return json.loads(value) if isinstance(value, str) else list(value or [])

    def adapt_value(self, value: Any, column_type: str | None) -> Any:
        if isinstance(value, list | dict):
            return json.dumps(value, default=str)
        if isinstance(value, Decimal | UUID):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat(sep=" ")
        if isinstance(value, date | dtime):
            return value.isoformat()
        return value

    def translate_error(self, exc: BaseException, *, timeout: float | None) -> ConnectorError:
        msg = str(exc)
        if msg == "interrupted":
            limit = f" of {timeout:g} s" if timeout else ""
            return ConnectorError(f"The query was cancelled after the statement timeout{limit}.")
        missing = re.match(r"no such table: (?:main\.)?(.+)", msg)
        if missing:
            return ConnectorError(f'table "{missing.group(1)}" does not exist', permanent=True)
        if "readonly" in msg or "attempt to write" in msg:
            return ConnectorError(f"Sources are read-only: SQLite refused a write ({msg}).", permanent=True)
        transient = "locked" in msg or "busy" in msg or "disk I/O" in msg
        return ConnectorError(f"SQLite error: {msg}", permanent=not transient)

    def is_record_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) or "datatype mismatch" in str(exc)


SQLITE = SqliteDialect()


@register
class SqliteApp(SqlApp):
    key = "sqlite"
    label = "SQLite"
    dialect = SQLITE
    max_concurrency = 1
    options = (
        Option("path", "Database file", required=True, help_text="Path to the SQLite database file.", file_path=True),
        timeout_option(),
    )


@register
class SqliteTableSource(SqlTableSource):
    key = "sqlite-table"
    app_key = "sqlite"
    label = "SQLite table"
    aliases = ("sqlite-import-table", "sqlite-table-import")
    dialect = SQLITE


@register
class SqliteQuerySource(SqlQuerySource):
    key = "sqlite-query"
    app_key = "sqlite"
    label = "SQLite query"
    aliases = ("sqlite-import-query", "sqlite-query-import")
    dialect = SQLITE


@register
class SqliteDestination(SqlDestination):
    key = "sqlite-export"
    app_key = "sqlite"
    label = "SQLite table export"
    aliases = ("sqlite-export-records",)
    dialect = SQLITE
