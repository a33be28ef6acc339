"""The source contract (connectors/base.py, DESIGN.md section 5): the same tests against every
built-in source type, over the same shop data. A new source connector adds a case in
tests/connectors/contract.py; `test_every_builtin_source_has_a_case` keeps the list complete."""
from __future__ import annotations

import json

import pytest

from connectors import registry
from connectors.base import Batch, Column, ConnectorError
from tests.connectors.contract import (
    OUTSIDE_CONTRACT_SOURCE_TYPES,
    PLUGIN_SOURCE_TYPES,
    SOURCE_TYPES,
    SourceCase,
    make_source_case,
)

ALL_IDS = [1, 2, 3, 4, 5, 6, 7, 8]


@pytest.fixture(params=SOURCE_TYPES + PLUGIN_SOURCE_TYPES)
def case(request, tmp_path):
    c = make_source_case(request.param, request, tmp_path)
    yield c
    c.close()


def read_all(source, *, limit, **kw):
    """Follow cursors until an empty page; every row read, in order."""
    rows, after = [], None
    for option, default in (("columns", None), ("watermark_column", None), ("since", None), ("filters", [])):
        kw.setdefault(option, default)
    for _ in range(50):
        batch = source.read_batch(after=after, limit=limit, **kw)
        assert isinstance(batch, Batch)
        if not batch.rows:
            assert batch.cursor is None
            return rows
        assert json.loads(json.dumps(batch.cursor)) == batch.cursor  # stored as JSON
        rows += batch.rows
        after = batch.cursor
    raise AssertionError("read_batch never ran out of rows")


def ids(rows, column="id"):
    return [int(r[column]) for r in rows]


def num(value):
    return None if value is None else round(float(value), 4)


def test_every_builtin_source_has_a_case():
    builtin = {key for key, cls in registry._sources.items() if cls.__module__.startswith("connectors.")}
    assert builtin == set(SOURCE_TYPES) | set(OUTSIDE_CONTRACT_SOURCE_TYPES)


def test_declares_itself(case: SourceCase):
    cls = registry.get_source(case.type)
    assert cls.key == case.type and cls.label
    assert registry.get_app(cls.app_key)
    assert cls.validate_options({}) != {}  # something is required
    assert all(o.key for o in cls.options + cls.property_options)


def test_preview_rows_have_the_listed_columns(case: SourceCase):
    columns = case.users.list_columns()
    assert all(isinstance(c, Column) and c.filter_ops for c in columns)
    names = [c.name for c in columns]
    assert names == list(("id", "email", "first_name", "ltv", "vip", "updated_at", "version"))
    rows = case.users.preview(3)
    assert len(rows) == 3 and all(list(r) == names for r in rows)
    assert case.users.preview(100) and len(case.users.preview(100)) == 8


def test_columns_are_typed_for_filters(case: SourceCase):
    types = {c.name: c.type for c in case.users.list_columns()}
    assert types["id"] == "integer"
    assert types["email"] == "string"
    assert types["ltv"] == "float"
    assert types["updated_at"] == "date"
    # SQLite reports no types for query results: 0/1 values read as integers there.
    assert types["vip"] == ("integer" if case.type == "sqlite-query" else "boolean")


def test_full_read_in_pages_loses_and_repeats_nothing(case: SourceCase):
    for limit in (1, 3, 100):
        assert ids(read_all(case.users, key_column="id", limit=limit)) == ALL_IDS
    rows = read_all(case.users, key_column="id", columns=["email"], limit=3)
    assert set(rows[0]) == {"id", "email"}
    assert rows[0]["email"] == "alice@example.com"


def test_reading_twice_reads_the_same(case: SourceCase):
    first = case.users.read_batch(key_column="id", columns=None, watermark_column=None, since=None,
                                  after=None, limit=4, filters=[])
    again = case.users.read_batch(key_column="id", columns=None, watermark_column=None, since=None,
                                  after=None, limit=4, filters=[])
    assert first.rows == again.rows and first.cursor == again.cursor


def test_high_watermark_round_trips(case: SourceCase):
    top = case.users.max_watermark(watermark_column="updated_at", filters=[{"key": "id", "op": "lt", "match": "8"}])
    assert json.loads(json.dumps(top)) == top
    assert top == case.ts("2024-01-04 10:00:00")
    since = case.ts("2024-01-03 10:00:00")
    rows = read_all(case.users, key_column="id", watermark_column="updated_at", since=since, limit=2)
    assert ids(rows) == [3, 4, 5, 6, 7, 8]  # >= keeps the rows sharing the edge value
    assert case.users.count(watermark_column="updated_at", since=since, filters=[]) == 6
    assert case.users.count(watermark_column=None, since=None, filters=[]) == 8


def test_filters_are_applied(case: SourceCase):
    def read(*filters):
        return ids(read_all(case.users, key_column="id", limit=100, filters=list(filters)))

    assert read({"key": "email", "op": "eq", "match": "bob@example.com"}) == [2]
    assert read({"key": "first_name", "op": "ne", "match": "Bob"}) == [1, 3, 5, 6, 7, 8]  # not NULL
    assert read({"key": "first_name", "op": "notSubstring", "match": "o"}) == [1, 5, 6, 7, 8]
    assert read({"key": "ltv", "op": "gt", "match": "55.25"}) == [1, 6, 8]
    assert read({"key": "email", "op": "substring", "match": "SHOP"}) == [3, 6]
    assert read({"key": "id", "op": "in", "match": "1,3, 5"}) == [1, 3, 5]
    assert read({"key": "first_name", "op": "notExists"}) == [4]
    assert read({"key": "updated_at", "op": "lt", "match": "2024-01-03"}) == [1, 2]
    assert read({"key": "vip", "op": "eq", "match": "1"}, {"key": "ltv", "op": "gt", "match": "65"}) == [1, 6]
    assert case.users.count(watermark_column=None, since=None,
                            filters=[{"key": "email", "op": "substring", "match": "example"}]) == 5


def test_distinct_keys_of_a_secondary_source(case: SourceCase):
    rows = read_all(case.purchases, key_column="user_id", limit=2, distinct_keys=True)
    assert [set(r) for r in rows] == [{"user_id"}] * 3
    assert ids(rows, "user_id") == [1, 2, 3]


def test_aggregate_computes_properties_per_key(case: SourceCase):
    props = [
        case.prop("purchases", "count", "id"),
        case.prop("spend", "sum", "amount"),
        case.prop("last_amount", "most_recent", "amount", sort="purchased_at"),
    ]
    out = case.purchases.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1, 2, 3, 4])
    assert {k: out[k]["purchases"] for k in (1, 2, 3, 4)} == {1: 3, 2: 2, 3: 1, 4: 0}
    assert [num(out[k]["spend"]) for k in (1, 2, 3)] == [40.0, 107.0, 1.0]
    assert [num(out[k]["last_amount"]) for k in (1, 2, 3)] == [4.5, 100.0, 1.0]
    assert out[4].get("spend") in (0, None) and out[4].get("last_amount") is None  # the pipeline reads None as 0
    again = case.purchases.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1, 2, 3, 4])
    assert again == out


def test_aggregate_keys_come_back_as_given(case: SourceCase):
    prop = case.prop("purchases", "count", "id")
    out = case.purchases.aggregate(properties=[prop], key_column="user_id", key_property="userId", keys=["1", "2", "9"])
    assert {k: v["purchases"] for k, v in out.items() if v.get("purchases") is not None} in (
        {"1": 3, "2": 2, "9": 0},
    )


def test_property_filters_restrict_the_rows_aggregated(case: SourceCase):
    if case.query:
        pytest.skip("query properties take their filters in the query")
    books = {"key": "category", "op": "eq", "match": "books"}
    props = [case.prop("books", "count", "id", filters=(books,)), case.prop("book_spend", "sum", "amount", filters=(books,))]
    out = case.purchases.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1, 2])
    assert out[1]["books"] == 2 and num(out[1]["book_spend"]) == 14.5
    assert out[2]["books"] == 1 and num(out[2]["book_spend"]) == 7.0


def test_missing_relation_is_a_clear_permanent_error(case: SourceCase):
    missing = case.make(case.missing)
    for call in (lambda: missing.preview(1), missing.list_columns,
                 lambda: missing.read_batch(key_column="id", columns=None, watermark_column=None, since=None,
                                            after=None, limit=5, filters=[])):
        with pytest.raises(ConnectorError) as info:
            call()
        assert info.value.permanent
        assert "nope" in info.value.message and "does not exist" in info.value.message
        assert "Traceback" not in info.value.message and "\n" not in info.value.message
    missing.close()


def test_unknown_column_is_a_permanent_error_naming_it(case: SourceCase):
    with pytest.raises(ConnectorError) as info:
        case.users.read_batch(key_column="nope_column", columns=None, watermark_column=None, since=None,
                              after=None, limit=5, filters=[])
    assert info.value.permanent and "nope_column" in info.value.message
    with pytest.raises(ConnectorError) as info:
        case.users.count(watermark_column=None, since=None, filters=[{"key": "x'; --", "op": "eq", "match": "1"}])
    assert info.value.permanent


def test_close_is_idempotent(case: SourceCase):
    case.users.preview(1)
    case.users.close()
    case.users.close()
    assert len(case.users.preview(2)) == 2  # reopens on demand
