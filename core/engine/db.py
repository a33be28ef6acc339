"""Small database helpers for the set-based pipeline statements, on PostgreSQL and SQLite.

Python moves rows in bulk (COPY on PostgreSQL, executemany on SQLite); the statements that
decide anything are set-based SQL over a whole batch.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.db import connection, transaction


def vendor() -> str:
    return connection.vendor


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def ts(value):
    """A datetime as a raw-SQL parameter: as is on PostgreSQL, Django's stored text form (naive
    UTC) on SQLite, so raw statements compare and store exactly as the ORM does."""
    if value is None or is_postgres():
        return value
    return connection.ops.adapt_datetimefield_value(value)


def in_list(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`column IN (...)` for a batch of values: one array parameter on PostgreSQL, a list of
    parameters on SQLite (batches stay far below SQLite's 32,766-parameter limit)."""
    if not values:
        return "1 = 0", []
    if is_postgres():
        if all(type(v) is int for v in values):
            return f"{column} = ANY(%s::bigint[])", [pg_array(values)]
        if all(type(v) is str for v in values):
            return f"{column} = ANY(%s::text[])", [pg_array(values)]
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def _array_item(value: Any) -> str:
    if value is None:
        return "NULL"
    if type(value) is int:
        return str(value)
    text = value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pg_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal ('{1,2,NULL,"a \\"b\\""}') for a parameter cast in SQL
    (`%s::bigint[]`, `%s::text[]`): much cheaper than letting psycopg adapt a list item by
    item, which showed in the profile of every batch statement keyed by record ids."""
    return "{" + ",".join([_array_item(v) for v in values]) + "}"


def fetchall(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params: Sequence[Any] = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def bulk_insert(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert many rows in one round trip: COPY on PostgreSQL, executemany on SQLite."""
    rows = list(rows)
    if not rows:
        return
    with connection.cursor() as cursor:
        if is_postgres():
            chunks = (rows[i : i + COPY_CHUNK_ROWS] for i in range(0, len(rows), COPY_CHUNK_ROWS))
            _copy(cursor.cursor, table, columns, (copy_text(chunk) for chunk in chunks))
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _copy(cursor: Any, table: str, columns: Sequence[str], texts: Iterable[str]) -> None:
    """One COPY ... FROM STDIN on a psycopg cursor, fed with blocks of COPY text. psycopg's
    errors are raised as Django's (a lost connection is an OperationalError, which the run
    retries), as for every statement through Django's own cursors."""
    with connection.wrap_database_errors:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for text in texts:
                copy.write(text)


def _joined(chunks: Iterable[Sequence[str]]) -> Iterator[str]:
    for chunk in chunks:
        if chunk:
            yield "\n".join(chunk) + "\n"


def copy_lines(table: str, columns: Sequence[str], lines: Sequence[str]) -> None:
    """COPY rows already in COPY's text format (one line each, no newline) into a table
    (PostgreSQL only)."""
    if not lines:
        return
    chunks = (lines[i : i + COPY_CHUNK_ROWS] for i in range(0, len(lines), COPY_CHUNK_ROWS))
    with connection.cursor() as cursor:
        _copy(cursor.cursor, table, columns, _joined(chunks))


def copy_chunks_in_background(
    table: str, columns: Sequence[str], chunks: Iterable[list[str]]
) -> Callable[[], None]:
    """Start COPYing `chunks` (lists of lines in COPY's text format) into a table on this
    connection, from a thread, and return a function that waits for the COPY to end (raising
    its error, as Django's database errors). Until then the caller may run Python but must not
    use the database (the connection's lock would make it wait anyway). PostgreSQL only.

    The server inserts the rows (index entries and all) while the caller goes on, instead of
    the two taking turns."""
    raw = connection.connection  # psycopg's connection: thread-safe, one operation at a time
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with raw.cursor() as cursor:
                _copy(cursor, table, columns, _joined(chunks))
        except BaseException as exc:  # raised by wait(), in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=work, name=f"copy-{table}", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if errors:
            with connection.wrap_database_errors:
                raise errors[0]

    return wait


# COPY's text format, written by us: psycopg's write_row adapts value by value and was the
# largest Python cost of a first sync (a row per record and property).
COPY_CHUNK_ROWS = 2000
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_float(value: float) -> str:
    if math.isfinite(value):
        return repr(value)
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _copy_json(value: Any) -> str:
    return json.dumps(value).translate(COPY_ESCAPES)


_COPY_FORMAT = {
    str: lambda v: v.translate(COPY_ESCAPES),
    int: str,
    bool: lambda v: "t" if v else "f",
    float: _copy_float,
    Decimal: str,
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    dt.time: dt.time.isoformat,
    uuid.UUID: str,
    dict: _copy_json,
    list: _copy_json,
}


def copy_value(value: Any) -> str:
    """One value in COPY's text format (NULL is \\N; backslash, tab, newline, CR escaped)."""
    if value is None:
        return "\\N"
    fmt = _COPY_FORMAT.get(type(value))
    if fmt is not None:
        return fmt(value)
    for kind, fmt in _COPY_FORMAT.items():  # subclasses (e.g. Django's SafeString)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return fmt(value)
    obj = getattr(value, "obj", None)  # psycopg's Json / Jsonb wrappers
    if obj is not None or type(value).__name__ in ("Json", "Jsonb"):
        return _copy_json(obj)
    raise TypeError(f"cannot write a {type(value).__name__} with COPY")


def copy_text(rows: Sequence[Sequence[Any]]) -> str:
    """Rows as COPY text: tab-separated values, one line each. The common types are inlined and
    a repeated timestamp object (a batch's `now`) is formatted once."""
    esc, null, DT = COPY_ESCAPES, "\\N", dt.datetime
    last_dt, last_dt_text = None, ""
    lines = []
    for row in rows:
        out = []
        for v in row:
            t = type(v)
            if t is str:
                out.append(v.translate(esc))
            elif v is None:
                out.append(null)
            elif t is int:
                out.append(str(v))
            elif t is DT:
                if v is not last_dt:
                    last_dt, last_dt_text = v, v.isoformat()
                out.append(last_dt_text)
            else:
                out.append(copy_value(v))
        lines.append("\t".join(out))
    lines.append("")
    return "\n".join(lines)


HOT_TABLES = ("core_record", "core_recordproperty", "core_groupmember", "core_export")


def analyze_hot_tables(batch_number: int) -> None:
    """Refresh the planner's statistics while a run grows the tables.

    A first sync fills empty tables inside one run, long before autovacuum notices; with
    statistics that still say "empty" the planner picks sequential scans for the per-batch
    statements and every batch gets slower. ANALYZE after batches 1, 4, 16, 64, ... keeps the
    plans right at a logarithmic cost.
    """
    # Batches 1, 4, 16, 64, ...: powers of four.
    if batch_number & (batch_number - 1) or (batch_number.bit_length() - 1) % 2:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        if is_postgres():
            # Rough statistics are all these plans need; a small sample keeps ANALYZE cheap
            # (the default target samples 30,000 rows of each table).
            cursor.execute("SET LOCAL default_statistics_target = 10")
        else:
            # SQLite: sampled statistics (sqlite_stat1) are cheap and keep the planner on the
            # (record, property, position) index for the rules' EXISTS subqueries.
            cursor.execute("PRAGMA analysis_limit = 1000")
        for table in HOT_TABLES:
            cursor.execute(f"ANALYZE {table}")
