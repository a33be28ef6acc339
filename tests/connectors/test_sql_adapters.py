"""Dialect.value_passthrough promises that adapt_value returns a value of those classes unchanged
for that column type; SqlDestination binds such values without calling the adapter. Checked here
for every dialect, over the column types and payload values destinations see."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from connectors.csv_file import CsvDialect
from connectors.duckdb import DuckdbDialect
from connectors.mysql import MysqlDialect
from connectors.postgres import PostgresDialect
from connectors.sqlite import SqliteDialect

COLUMN_TYPES = [
    None, "text", "character varying(255)", "varchar(20)", "citext", "bigint", "integer",
    "double precision", "numeric(10,2)", "boolean", "date", "timestamp with time zone",
    "timestamp without time zone", "datetime", "json", "jsonb", "text[]", "bigint[]",
]
VALUES = [
    None, "", "ada@example.com", "2026-11-28T00:00:00+00:00", "42", 0, 42, -(2**40), 1.5, 3.0,
    True, False, Decimal("2.50"), dt.datetime(2026, 11, 28, tzinfo=dt.UTC), dt.date(2026, 11, 28),
    ["vip", "new"], {"a": 1}, uuid.UUID(int=7),
]
DIALECTS = [PostgresDialect, MysqlDialect, SqliteDialect, DuckdbDialect, CsvDialect]


@pytest.mark.parametrize("dialect_cls", DIALECTS, ids=lambda c: c.__name__)
def test_passthrough_values_are_what_adapt_value_returns(dialect_cls):
    dialect = dialect_cls()
    checked = 0
    for column_type in COLUMN_TYPES:
        plain = dialect.value_passthrough(column_type)
        for value in VALUES:
            if value.__class__ in plain:
                assert dialect.adapt_value(value, column_type) is value, (column_type, value)
                checked += 1
    if dialect_cls is PostgresDialect:
        assert checked > 0


def test_postgres_binds_numbers_unchanged_except_into_text():
    d = PostgresDialect()
    assert {int, float, str, type(None)} <= d.value_passthrough("bigint")
    assert int not in d.value_passthrough("text")  # a number bound into text needs str()
    assert d.value_passthrough("jsonb") == frozenset()
