"""Our COPY text writer (core/engine/db.copy_text) round-trips every value type the engine
writes, including the characters COPY's text format escapes."""
from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal

import pytest
from django.db import connection

from core.engine import db

VALUES = [
    ("plain", 1, 1.5, True, dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC), {"a": [1, "x\ty"]}),
    ("tab\there\nnew\rline \\ back\\N", -2**62, -0.0, False, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), []),
    ("ünïcødé 😀 \u200f עברית 中文", 0, 1e300, None, None, None),
    ("", None, float("inf"), True, None, {"k": "\\"}),
    (None, 7, float("nan"), None, None, {}),
]


@pytest.mark.django_db
def test_copy_text_round_trips_every_type():
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE copy_rt (n serial, t text, i bigint, f double precision, b boolean, "
            "d timestamptz, j jsonb)"
        )
        rows = [(t, i, f, b, d, None if j is None else json.dumps(j)) for t, i, f, b, d, j in VALUES]
        db.bulk_insert("copy_rt", ["t", "i", "f", "b", "d", "j"], rows)
        cur.execute("SELECT t, i, f, b, d, j FROM copy_rt ORDER BY n")
        got = cur.fetchall()
    assert len(got) == len(VALUES)
    for (t, i, f, b, d, j), (gt, gi, gf, gb, gd, gj) in zip(VALUES, got, strict=True):
        assert (gt, gi, gb, gd) == (t, i, b, d)
        assert (math.isnan(gf) and math.isnan(f)) or gf == f
        assert (json.loads(gj) if isinstance(gj, str) else gj) == j


def test_copy_value_formats():
    assert db.copy_value(None) == "\\N"
    assert db.copy_value("a\tb\\") == "a\\tb\\\\"
    assert db.copy_value(Decimal("1.10")) == "1.10"
    assert db.copy_value(float("-inf")) == "-Infinity"
    assert db.copy_value(dt.date(2026, 1, 2)) == "2026-01-02"
    with pytest.raises(TypeError):
        db.copy_value(object())


@pytest.mark.django_db
def test_pg_array_literals_round_trip():
    if connection.vendor != "postgresql":
        pytest.skip("array literals are PostgreSQL's")
    texts = ['a"b', "c\\d", "", None, "{x,y}", "NULL", " sp ", "é😀"]
    when = [dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), None]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT %s::text[], %s::bigint[], %s::timestamptz[]",
            [db.pg_array(texts), db.pg_array([1, -2, 2**62]), db.pg_array(when)],
        )
        got = cur.fetchone()
    assert got == (texts, [1, -2, 2**62], when)


@pytest.mark.django_db
def test_in_list_of_texts_matches_exactly_those_texts():
    """in_list sends text keys as one array literal on PostgreSQL: every key, however spelled,
    must match itself and nothing else, on both databases."""
    keys = ['a"b', "c\\d", "NULL", "", " sp ", "{x,y}", "é😀", "x'y", "tab\there", "a,b", "5"]
    others = ["a", "null", "sp", "x,y", "05"]
    cond, params = db.in_list("v", keys)
    if connection.vendor == "postgresql":
        assert cond == "v = ANY(%s::text[])"
        source = "SELECT v FROM unnest(%s::text[]) AS t(v)"
        source_params = [db.pg_array(keys + others)]
    else:
        source = " UNION ALL ".join(["SELECT %s AS v"] * len(keys + others))
        source_params = keys + others
    with connection.cursor() as cur:
        cur.execute(f"SELECT v FROM ({source}) s WHERE {cond}", [*source_params, *params])
        assert sorted(r[0] for r in cur.fetchall()) == sorted(keys)
