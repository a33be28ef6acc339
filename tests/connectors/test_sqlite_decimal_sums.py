"""SQLite sums and averages added as decimals: a text cell that is no number, or a number past
Decimal's range, is read as SQLite's own SUM reads it, never failing the whole statement."""

from __future__ import annotations

import math
import sqlite3
from decimal import Decimal

import pytest

from connectors.base import PropertySpec
from connectors.sqlite import SqliteTableSource


@pytest.fixture
def shop(tmp_path):
    path = tmp_path / "shop.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount REAL)")
    rows = [
        (1, 1, 0.1),
        (2, 1, "sNaN"),  # text in a REAL column: SQLite's SUM reads it as 0
        (3, 1, 0.2),
        (4, 2, "NaN"),
        (5, 2, 1.5),
        (6, 3, "Infinity"),
        (7, 3, "-Infinity"),
        (8, 4, "12abc"),  # SQLite reads the numeric prefix: 12
        (9, 4, 0.5),
        (10, 5, "1e9999999"),  # past Decimal's range: Infinity, that record's value only
    ]
    conn.executemany("INSERT INTO purchases VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return str(path)


@pytest.mark.parametrize("method", ["sum", "average"])
def test_text_that_is_no_number_does_not_fail_the_batch(shop, method):
    source = SqliteTableSource({"path": shop}, {"table": "purchases"})
    try:
        values = source.aggregate(
            properties=[PropertySpec("total", {"column": "amount", "aggregationMethod": method})],
            key_column="user_id",
            key_property="user_id",
            keys=[1, 2, 3, 4, 5],
        )
    finally:
        source.close()
    got = {key: Decimal(str(row["total"])) for key, row in values.items()}
    if method == "sum":
        assert got[1] == Decimal("0.3")
        assert got[2] == Decimal("1.5")
        assert got[3] == 0
        assert got[4] == Decimal("12.5")
    else:
        assert got[1] == Decimal("0.1")
        assert got[2] == Decimal("0.75")
        assert got[3] == 0
        assert got[4] == Decimal("6.25")
    assert math.isinf(got[5])
