"""Small database helpers for the set-based pipeline statements, on PostgreSQL and SQLite.

Python moves rows in bulk (COPY on PostgreSQL, executemany on SQLite); the statements that
decide anything are set-based SQL over a whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection


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
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


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
    cols = ", ".join(columns)
    with connection.cursor() as cursor:
        if is_postgres():
            with cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)


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
    with connection.cursor() as cursor:
        if not is_postgres():
            # SQLite: sampled statistics (sqlite_stat1) are cheap and keep the planner on the
            # (record, property, position) index for the rules' EXISTS subqueries.
            cursor.execute("PRAGMA analysis_limit = 1000")
        for table in HOT_TABLES:
            cursor.execute(f"ANALYZE {table}")
