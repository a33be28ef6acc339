"""SQL table and query sources, against real SQLite and DuckDB files and real PostgreSQL and
MariaDB databases."""
from __future__ import annotations

import json
import time

import pytest

from connectors import registry
from connectors.base import ConnectorError, PropertySpec
from connectors.sql import normalize_aggregation

EXAMPLE_USERS = [1, 2, 4, 5, 7]


def read_all(source, *, limit, **kw):
    """Follow cursors until an empty page; return every row read, in order."""
    rows, after, pages = [], None, 0
    kw.setdefault("columns", None)
    kw.setdefault("watermark_column", None)
    kw.setdefault("since", None)
    kw.setdefault("filters", [])
    while True:
        batch = source.read_batch(after=after, limit=limit, **kw)
        if not batch.rows:
            assert batch.cursor is None
            return rows
        json.dumps(batch.cursor)  # cursors are stored as JSON
        rows += batch.rows
        after = batch.cursor
        pages += 1
        assert pages < 50


def ids(rows, column="id"):
    return [r[column] for r in rows]


def filtered(world, *filters):
    source = world.source("table", table="users")
    rows = source.read_batch(
        key_column="id", columns=["id"], watermark_column=None, since=None, after=None, limit=100,
        filters=[dict(f) for f in filters],
    ).rows
    return ids(rows)


def num(value):
    return None if value is None else round(float(value), 4)


# --- registry and app -------------------------------------------------------------------


@pytest.mark.parametrize(
    "alias, key",
    [
        ("postgres-import-table", "postgres-table"),
        ("postgres-table-import", "postgres-table"),
        ("postgres-import-query", "postgres-query"),
        ("postgres-query-import", "postgres-query"),
        ("sqlite-import-table", "sqlite-table"),
        ("sqlite-table-import", "sqlite-table"),
        ("sqlite-import-query", "sqlite-query"),
        ("sqlite-query-import", "sqlite-query"),
        ("mysql-import-table", "mysql-table"),
        ("mysql-import-query", "mysql-query"),
        ("duckdb-import-table", "duckdb-table"),
        ("duckdb-query-import", "duckdb-query"),
    ],
)
def test_grouparoo_source_names_are_aliases(alias, key):
    assert registry.get_source(alias).key == key
    assert registry.get_source(alias).app_key == key.split("-")[0]


def test_destination_aliases_and_apps_are_registered():
    assert registry.get_destination("postgres-export-records").key == "postgres-export"
    assert registry.get_destination("sqlite-export-records").key == "sqlite-export"
    assert registry.get_app("postgres").secret_option_keys() == ("password",)
    assert registry.get_app("sqlite").validate_options({"path": "/tmp/x.db"}) == {}


def test_test_connection_describes_the_database(world):
    message = world.app().test_connection()
    if world.kind == "sqlite":
        assert message.startswith("Connected to SQLite 3.")
        assert "shop.db" in message
    elif world.kind == "duckdb":
        assert message.startswith("Connected to DuckDB v")
        assert message.endswith("shop.duckdb (2 tables)")
    elif world.kind == "mysql":
        assert message.startswith(("Connected to MariaDB ", "Connected to MySQL "))
        assert f"database {world.app_options['database']}." in message
        assert "may write server files" in message  # the tests connect as root
    else:
        assert message.startswith("Connected to PostgreSQL ")
        assert f"database {world.app_options['database']}." in message
        assert "is a superuser" in message  # the tests connect as postgres


def test_sqlite_missing_file_is_a_permanent_error(tmp_path):
    app = registry.get_app("sqlite")({"path": str(tmp_path / "nope.db")})
    with pytest.raises(ConnectorError) as info:
        app.test_connection()
    assert info.value.permanent
    assert "nope.db" in info.value.message and "does not exist" in info.value.message
    assert not (tmp_path / "nope.db").exists()  # never created by a test


def test_sqlite_file_that_is_not_a_database_fails_clearly(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("hello, this is not SQLite" * 100)
    with pytest.raises(ConnectorError) as info:
        registry.get_app("sqlite")({"path": str(path)}).test_connection()
    assert "not a database" in info.value.message


def test_postgres_missing_database_is_permanent_and_secret_free(scratch_pg):
    app = registry.get_app("postgres")(
        {"host": scratch_pg["host"], "port": scratch_pg["port"], "user": scratch_pg["user"],
         "database": "no_such_db_here", "password": "hunter2-very-secret"}
    )
    with pytest.raises(ConnectorError) as info:
        app.test_connection()
    assert info.value.permanent
    assert 'database "no_such_db_here" does not exist' in info.value.message
    assert "hunter2" not in info.value.message and "hunter2" not in repr(info.value.args)
    assert info.value.__cause__ is None  # the driver's exception is not chained along


def test_postgres_unreachable_port_is_retryable(scratch_pg):
    app = registry.get_app("postgres")(
        {"host": "127.0.0.1", "port": 1, "user": "postgres", "database": "x", "password": "hunter2-very-secret"}
    )
    with pytest.raises(ConnectorError) as info:
        app.test_connection()
    assert not info.value.permanent
    assert "127.0.0.1:1" in info.value.message and "refused" in info.value.message.lower()
    assert "hunter2" not in info.value.message


# --- preview, columns -------------------------------------------------------------------


def test_preview_returns_rows_as_dicts(world):
    rows = world.source("table", table="users").preview(3)
    assert len(rows) == 3
    assert set(rows[0]) == {"id", "email", "first_name", "ltv", "vip", "updated_at", "version"}


def test_list_columns_types_and_filter_ops(world):
    columns = {c.name: c for c in world.source("table", table="users").list_columns()}
    assert [columns[n].type for n in ("id", "email", "ltv", "vip", "updated_at")] == [
        "integer", "string", "float", "boolean", "date",
    ]
    assert set(columns["email"].filter_ops) == {
        "eq", "ne", "exists", "notExists", "substring", "notSubstring", "in", "gt", "gte", "lt", "lte",
    }
    assert set(columns["ltv"].filter_ops) == {"eq", "ne", "exists", "notExists", "gt", "gte", "lt", "lte", "in"}
    assert columns["updated_at"].filter_ops == columns["ltv"].filter_ops
    assert set(columns["vip"].filter_ops) == {"eq", "ne", "exists", "notExists"}


def test_query_source_columns_come_from_the_query(world):
    source = world.source("query", query="SELECT id, email, ltv * 2 AS double_ltv, updated_at FROM users;")
    columns = {c.name: c.type for c in source.list_columns()}
    assert columns == {"id": "integer", "email": "string", "double_ltv": "float", "updated_at": "date"}


def test_missing_table_is_a_clear_permanent_error(world):
    source = world.source("table", table="nope")
    for call in (
        lambda: source.preview(1),
        lambda: source.read_batch(key_column="id", columns=None, watermark_column=None, since=None,
                                  after=None, limit=5, filters=[]),
    ):
        with pytest.raises(ConnectorError) as info:
            call()
        assert info.value.permanent
        assert info.value.message == 'table "nope" does not exist'
    with pytest.raises(ConnectorError) as info:
        world.source("query", query="SELECT * FROM nope").preview(1)
    assert info.value.permanent and 'table "nope" does not exist' in info.value.message


# --- read_batch -------------------------------------------------------------------------


def test_pages_split_inside_a_shared_watermark_lose_and_repeat_nothing(world):
    source = world.source("table", table="users")
    since = world.ts("2024-01-03 10:00:00")  # users 3-6 share this value
    rows = read_all(source, key_column="id", watermark_column="updated_at", since=since, limit=2)
    assert ids(rows) == [3, 4, 5, 6, 7, 8]


def test_after_continues_from_the_cursor(world):
    source = world.source("table", table="users")
    first = source.read_batch(key_column="id", columns=["email"], watermark_column=None, since=None,
                              after=None, limit=3, filters=[])
    assert ids(first.rows) == [1, 2, 3] and first.cursor == 3
    assert set(first.rows[0]) == {"id", "email"}
    second = source.read_batch(key_column="id", columns=["email"], watermark_column=None, since=None,
                               after=first.cursor, limit=3, filters=[])
    assert ids(second.rows) == [4, 5, 6]


def test_max_watermark_round_trips_as_since(world):
    source = world.source("table", table="users")
    filters = [{"key": "updated_at", "op": "lt", "match": "2050-01-01"}]
    top = source.max_watermark(watermark_column="updated_at", filters=filters)
    assert json.loads(json.dumps(top)) == top
    assert top == world.ts("2024-01-04 10:00:00")
    rows = read_all(source, key_column="id", watermark_column="updated_at", since=top, limit=10, filters=filters)
    assert ids(rows) == [7]
    assert source.count(watermark_column="updated_at", since=top, filters=filters) == 1


def test_numeric_watermark_column(world):
    source = world.source("table", table="users")
    assert source.max_watermark(watermark_column="version", filters=[]) == 5
    rows = read_all(source, key_column="id", watermark_column="version", since=3, limit=4)
    assert ids(rows) == [3, 4, 5, 6, 7, 8]
    assert source.count(watermark_column="version", since=4, filters=[]) == 2


def test_page_never_ends_inside_one_key(world):
    source = world.source("table", table="purchases")
    first = source.read_batch(key_column="user_id", columns=["amount"], watermark_column=None, since=None,
                              after=None, limit=2, filters=[])
    assert ids(first.rows, "user_id") == [1, 1, 1]  # the third row of user 1 joins the page
    rows = read_all(source, key_column="user_id", columns=["id"], limit=2)
    assert sorted(ids(rows)) == [1, 2, 3, 4, 5, 6]  # row 7 has no key


def test_distinct_keys_reads_keys_once(world):
    source = world.source("table", table="purchases")
    rows = read_all(source, key_column="user_id", limit=2, distinct_keys=True)
    assert rows == [{"user_id": 1}, {"user_id": 2}, {"user_id": 3}]
    recent = read_all(source, key_column="user_id", limit=2, distinct_keys=True,
                      watermark_column="purchased_at", since=world.ts("2024-01-10 00:00:00"))
    assert ids(recent, "user_id") == [1, 2]


def test_query_source_pages_and_filters(world):
    source = world.source("query", query="SELECT id, email, updated_at FROM users WHERE email LIKE '%example.com'")
    rows = read_all(source, key_column="id", limit=2)
    assert ids(rows) == EXAMPLE_USERS
    rows = read_all(source, key_column="id", limit=2, watermark_column="updated_at",
                    since=world.ts("2024-01-03 10:00:00"),
                    filters=[{"key": "email", "op": "ne", "match": "eve@example.com"}])
    assert ids(rows) == [4, 7]
    assert source.count(watermark_column=None, since=None, filters=[]) == 5
    assert source.max_watermark(watermark_column="updated_at", filters=[]) == world.ts("2024-01-04 10:00:00")


# --- filters ----------------------------------------------------------------------------


def test_every_filter_operation(world):
    f = lambda key, op, match="": {"key": key, "op": op, "match": match}  # noqa: E731
    assert filtered(world, f("email", "eq", "bob@example.com")) == [2]
    # NULL is not "not equal" (Grouparoo's `col != x`): notExists selects it
    assert filtered(world, f("first_name", "ne", "Bob")) == [1, 3, 5, 6, 7, 8]
    assert filtered(world, f("first_name", "exists")) == [1, 2, 3, 5, 6, 7, 8]
    assert filtered(world, f("first_name", "notExists")) == [4]
    assert filtered(world, f("ltv", "gt", "55.25")) == [1, 6, 8]
    assert filtered(world, f("ltv", "gte", "55.25")) == [1, 5, 6, 8]
    assert filtered(world, f("ltv", "lt", "20")) == [4, 7]
    assert filtered(world, f("ltv", "lte", "20")) == [2, 4, 7]
    assert filtered(world, f("email", "substring", "SHOP")) == [3, 6]  # case-insensitive
    assert filtered(world, f("email", "substring", "_50%")) == [8]  # wildcards are literal
    assert filtered(world, f("email", "substring", "o_")) == []
    assert filtered(world, f("email", "notSubstring", "example")) == [3, 6, 8]
    assert filtered(world, f("id", "in", "1, 3,5")) == [1, 3, 5]
    assert filtered(world, f("email", "in", "bob@example.com,carol@shop.test")) == [2, 3]
    assert filtered(world, f("first_name", "gt", "F")) == [6, 7, 8]
    assert filtered(world, f("vip", "eq", "true")) == [1, 3, 6, 8]
    assert filtered(world, f("vip", "ne", "true")) == [2, 4, 7]
    assert filtered(world, f("first_name", "notSubstring", "o")) == [1, 5, 6, 7, 8]
    assert filtered(world, f("updated_at", "lt", "2024-01-03")) == [1, 2]
    assert filtered(world, f("updated_at", "gte", "2024-01-04")) == [7, 8]
    assert filtered(world, f("updated_at", "eq", "2024-01-02 10:00:00")) == [2]
    # several filters are ANDed
    assert filtered(world, f("vip", "eq", "true"), f("ltv", "gt", "65")) == [1, 6]


def test_relative_date_filters(world):
    ago = {"number": 2, "unit": "years", "direction": "subtract"}
    ahead = {"number": 3, "unit": "months", "direction": "add"}
    assert filtered(world, {"key": "updated_at", "op": "gt", "match": "", "relative_match": ahead}) == [8]
    assert filtered(world, {"key": "updated_at", "op": "lt", "match": "", "relative_match": ago}) == [1, 2, 3, 4, 5, 6, 7]
    week = {"number": 1, "unit": "weeks", "direction": "subtract"}
    assert filtered(world, {"key": "updated_at", "op": "gte", "match": "", "relative_match": week}) == [8]


def test_unknown_filter_column_and_disallowed_op_are_permanent(world):
    with pytest.raises(ConnectorError) as info:
        filtered(world, {"key": 'nope"; DROP TABLE users; --', "op": "eq", "match": "1"})
    assert info.value.permanent and "nope" in info.value.message
    with pytest.raises(ConnectorError) as info:
        filtered(world, {"key": "ltv", "op": "substring", "match": "1"})
    assert info.value.permanent and '"ltv"' in info.value.message
    with pytest.raises(ConnectorError) as info:
        world.source("table", table="users").read_batch(
            key_column="nope", columns=None, watermark_column=None, since=None, after=None, limit=5, filters=[]
        )
    assert info.value.permanent and '"nope"' in info.value.message
    assert world.run("SELECT COUNT(*) FROM users") == [(8,)]


def test_filter_values_are_bound_not_interpolated(world):
    assert filtered(world, {"key": "email", "op": "eq", "match": "x' OR '1'='1"}) == []
    assert filtered(world, {"key": "email", "op": "in", "match": "x'); DROP TABLE users; --"}) == []
    assert world.run("SELECT COUNT(*) FROM users") == [(8,)]


# --- aggregation ------------------------------------------------------------------------


def spec(key, method, column="amount", *, sort="purchased_at", filters=(), is_array=False):
    options = {"column": column, "aggregationMethod": method}
    if sort:
        options["sortColumn"] = sort
    return PropertySpec(key, options, tuple(filters), is_array)


BOOKS = {"key": "category", "op": "eq", "match": "books"}
GAMES = {"key": "category", "op": "eq", "match": "games"}


def test_all_eight_aggregation_methods_in_one_call(world):
    source = world.source("table", table="purchases")
    props = [
        spec("exact", "exact", "category", sort=None),
        spec("avg", "average"),
        spec("count", "count", "id"),
        spec("sum", "sum"),
        spec("min", "min"),
        spec("max", "max"),
        spec("recent", "most_recent"),
        spec("first", "least_recent"),
    ]
    out = source.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1, 2, 3, 4])
    table = {k: {p: (num(v) if p not in ("exact", "count") else v) for p, v in values.items()} for k, values in out.items()}
    assert table[1] == {"exact": "books", "avg": 13.3333, "count": 3, "sum": 40.0, "min": 4.5, "max": 25.5,
                        "recent": 4.5, "first": 10.0}
    # user 2's second purchase has no date: most recent is the dated one
    assert table[2] == {"exact": "books", "avg": 53.5, "count": 2, "sum": 107.0, "min": 7.0, "max": 100.0,
                        "recent": 100.0, "first": 100.0}
    assert table[3]["count"] == 1 and table[3]["recent"] == 1.0
    assert out[4] == {"count": 0, "sum": 0}  # no rows: count and sum are 0, the rest stay missing (NULL)
    assert set(out) == {1, 2, 3, 4}


def test_sum_of_no_rows_is_zero_as_count(world):
    """Grouparoo's sources answer COALESCE(SUM(x), 0), and its core defaults sum and count to
    0 for records without rows: a sum over nothing is 0, never empty."""
    world.run("INSERT INTO purchases VALUES (8, 5, NULL, 'books', NULL)")  # user 5: one NULL amount
    source = world.source("table", table="purchases")
    props = [spec("total", "sum"), spec("games_total", "sum", filters=[GAMES]), spec("n", "count", "id")]
    out = source.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1, 3, 4, 5])
    assert num(out[1]["total"]) == 40.0 and num(out[1]["games_total"]) == 25.5
    assert out[3]["games_total"] == 0  # rows, none passing the filter
    assert out[4] == {"total": 0, "games_total": 0, "n": 0}  # no rows at all
    assert out[5]["total"] == 0 and out[5]["n"] == 1  # only a NULL amount


@pytest.mark.parametrize("method", ["most_recent", "most recent value", "least_recent", "exact"])
def test_array_most_and_least_recent_hold_every_value_by_sort_column(world, method):
    """Grouparoo ranks rows (ROW_NUMBER ... = 1) only for non-array properties: an array with
    most/least recent value holds all values, newest first / oldest first (exact: oldest
    first, as its ORDER BY sortColumn ASC). Undated rows come last."""
    source = world.source("table", table="purchases")
    props = [spec("amounts", method, is_array=True), spec("books", method, filters=[BOOKS], is_array=True)]
    out = source.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1, 2, 4])
    newest_first = normalize_aggregation(method) == "most_recent"
    by_date = [10.0, 25.5, 4.5]  # user 1's purchases on Jan 1, Feb 1, Mar 1
    assert [num(v) for v in out[1]["amounts"]] == (by_date[::-1] if newest_first else by_date)
    assert [num(v) for v in out[1]["books"]] == ([4.5, 10.0] if newest_first else [10.0, 4.5])
    assert [num(v) for v in out[2]["amounts"]] == [100.0, 7.0]  # the undated 7.00 last either way
    assert out[4] == {"amounts": [], "books": []}


EXACT_DDL = {
    "sqlite": "CREATE TABLE amounts (user_id INTEGER, n NUMERIC(10, 2), f REAL)",
    "postgres": "CREATE TABLE amounts (user_id INTEGER, n NUMERIC(10, 2), f DOUBLE PRECISION)",
    "mysql": "CREATE TABLE amounts (user_id INT, n DECIMAL(10, 2), f DOUBLE)",
    "duckdb": "CREATE TABLE amounts (user_id INTEGER, n DECIMAL(10, 2), f DOUBLE)",
}


def test_sums_and_averages_of_decimals_are_exact(world):
    """0.1 + 0.2 is 0.3 and 273.78 + 55.41 + 179.98 is 509.17 (binary floats give
    0.30000000000000004 and 509.16999999999996), for decimal and for float columns (added as
    decimals; DuckDB's DOUBLE rounded to the 15 digits a double holds)."""
    world.run(EXACT_DDL[world.kind])
    rows = [(1, 0.1, 0.1), (1, 0.2, 0.2), (2, 273.78, 273.78), (2, 55.41, 55.41), (2, 179.98, 179.98)]
    world.runmany("INSERT INTO amounts VALUES (?, ?, ?)", rows)
    source = world.source("table", table="amounts")
    columns = ["n", "f"]
    props = [spec(f"{c}_{m}", m, c, sort=None) for c in columns for m in ("sum", "average")]
    out = source.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1, 2])
    for c in columns:
        assert (str(out[1][f"{c}_sum"]), str(out[1][f"{c}_average"])) == ("0.3", "0.15"), (c, out[1])
        assert str(out[2][f"{c}_sum"]) == "509.17", (c, out[2])
        assert abs(float(out[2][f"{c}_average"]) - 509.17 / 3) < 1e-9


def test_grouparoo_method_spellings_are_accepted(world):
    source = world.source("table", table="purchases")
    props = [spec("recent", "most recent value"), spec("first", "least recent value"), spec("avg", "avg")]
    out = source.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1])
    assert {k: num(v) for k, v in out[1].items()} == {"recent": 4.5, "first": 10.0, "avg": 13.3333}


def test_property_filters_apply_to_their_property_only(world):
    source = world.source("table", table="purchases")
    props = [
        spec("books_total", "sum", filters=[BOOKS]),
        spec("games_count", "count", "id", filters=[GAMES]),
        spec("total", "sum"),
        spec("recent_book", "most_recent", filters=[BOOKS]),
        spec("first_game", "least_recent", filters=[GAMES]),
        spec("book_dates", "exact", "purchased_at", filters=[BOOKS], is_array=True),
        spec("exact_game", "exact", "amount", sort=None, filters=[GAMES]),
    ]
    out = source.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1, 2, 3, 4])
    assert num(out[1]["books_total"]) == 14.5 and num(out[2]["books_total"]) == 7.0
    assert [out[k]["games_count"] for k in (1, 2, 3, 4)] == [1, 1, 0, 0]
    assert num(out[1]["total"]) == 40.0
    assert num(out[1]["recent_book"]) == 4.5
    assert num(out[2]["recent_book"]) == 7.0  # the only book row, though undated
    assert num(out[1]["first_game"]) == 25.5 and out[3].get("first_game") is None
    assert len(out[1]["book_dates"]) == 2
    assert out[2]["book_dates"] == []  # its only book row has no date, and NULLs are left out
    assert num(out[1]["exact_game"]) == 25.5 and out[3].get("exact_game") is None
    assert out[4]["book_dates"] == []


def test_array_exact_returns_every_value_in_order(world):
    source = world.source("table", table="purchases")
    props = [
        spec("categories", "exact", "category", is_array=True),  # ordered by purchased_at
        spec("amounts", "exact", "amount", sort=None, is_array=True),  # ordered by value
        spec("book_amounts", "exact", "amount", sort=None, filters=[BOOKS], is_array=True),
    ]
    out = source.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1, 2, 4])
    assert out[1]["categories"] == ["books", "games", "books"]
    assert out[2]["categories"] == ["games", "books"]  # the undated row last
    assert [num(v) for v in out[1]["amounts"]] == [4.5, 10.0, 25.5]
    assert [num(v) for v in out[2]["book_amounts"]] == [7.0]
    assert out[4] == {"categories": [], "amounts": [], "book_amounts": []}


def test_aggregate_keys_are_returned_as_given(world):
    source = world.source("table", table="purchases")
    out = source.aggregate(properties=[spec("count", "count", "id")], key_column="user_id",
                           key_property="userId", keys=["1", "2", "9"])
    assert out == {"1": {"count": 3}, "2": {"count": 2}, "9": {"count": 0}}


def test_most_recent_needs_a_sort_column(world):
    source = world.source("table", table="purchases")
    with pytest.raises(ConnectorError) as info:
        source.aggregate(properties=[spec("r", "most_recent", sort=None)], key_column="user_id",
                         key_property="userId", keys=[1])
    assert info.value.permanent and "sortColumn" in info.value.message
    with pytest.raises(ConnectorError):
        source.aggregate(properties=[spec("r", "median")], key_column="user_id", key_property="userId", keys=[1])


# --- query sources ----------------------------------------------------------------------


def qprop(key, query, is_array=False):
    return PropertySpec(key, {"query": query}, (), is_array)


def test_query_properties_bind_the_key(world):
    source = world.source("query", query="SELECT id, email FROM users")
    props = [
        qprop("total", "SELECT SUM(amount) AS total FROM purchases WHERE user_id = {{{ userId }}}"),
        qprop("latest", "SELECT amount, category FROM purchases WHERE user_id = {{userId}} "
                        "AND purchased_at IS NOT NULL ORDER BY purchased_at DESC;"),
        qprop("categories", "SELECT category FROM purchases WHERE user_id = {{{ userId }}} ORDER BY id", True),
        qprop("pct", "SELECT COUNT(*) FROM users WHERE email LIKE '%example%' AND id <> {{{ userId }}}"),
    ]
    out = source.aggregate(properties=props, key_column="id", key_property="userId", keys=[1, 2, 3, 4])
    assert [num(out[k]["total"]) for k in (1, 2, 3, 4)] == [40.0, 107.0, 1.0, None]
    assert num(out[1]["latest"]) == 4.5 and num(out[2]["latest"]) == 100.0
    assert out[1]["categories"] == ["books", "games", "books"] and out[4]["categories"] == []
    assert [out[k]["pct"] for k in (1, 3)] == [4, 5]


def test_query_property_keys_of_another_type_still_match(world):
    # Text keys against an integer column: PostgreSQL rejects `integer = text` in the set-based
    # statement, and the connector falls back to binding each key.
    source = world.source("query", query="SELECT id FROM users")
    out = source.aggregate(properties=[qprop("n", "SELECT COUNT(*) FROM purchases WHERE user_id = {{{ id }}}")],
                           key_column="id", key_property="id", keys=["1", "2", "4"])
    assert out == {"1": {"n": 3}, "2": {"n": 2}, "4": {"n": 0}}


def test_query_placeholder_values_are_bound_never_executed(world):
    source = world.source("query", query="SELECT email FROM users")
    prop = qprop("name", "SELECT first_name FROM users WHERE email = '{{{ email }}}'")
    evil = ["alice@example.com", "1; DROP TABLE users", "x' OR '1'='1", "'); DELETE FROM users; --"]
    out = source.aggregate(properties=[prop], key_column="email", key_property="email", keys=evil)
    assert out["alice@example.com"] == {"name": "Alice"}
    assert all(out[k] == {"name": None} for k in evil[1:])
    assert world.run("SELECT COUNT(*) FROM users") == [(8,)]


def test_query_property_with_unknown_placeholder_is_permanent(world):
    source = world.source("query", query="SELECT id FROM users")
    with pytest.raises(ConnectorError) as info:
        source.aggregate(properties=[qprop("x", "SELECT 1 WHERE {{{ other }}} = {{{ userId }}}")],
                         key_column="id", key_property="userId", keys=[1])
    assert info.value.permanent and "other" in info.value.message


@pytest.mark.parametrize("statement", [
    "INSERT INTO users (id, email) VALUES (100, 'mallory@example.com')",
    "UPDATE users SET email = 'mallory@example.com'",
    "DELETE FROM users",
])
def test_query_source_cannot_write(world, statement):
    with pytest.raises(ConnectorError) as info:
        world.source("query", query=statement).preview(5)
    assert info.value.permanent
    first = statement.split()[0]
    assert f"starts with {first}" in info.value.message or world.kind == "mysql", info.value.message
    prop = qprop("x", statement + " WHERE id = {{{ userId }}}" if "INSERT" not in statement else statement)
    with pytest.raises(ConnectorError):
        world.source("query", query="SELECT id FROM users").aggregate(
            properties=[prop], key_column="id", key_property="userId", keys=[1])
    assert world.run("SELECT COUNT(*), MIN(email) FROM users") == [(8, "alice@example.com")]


def test_query_source_transaction_is_read_only(world):
    if world.kind in ("sqlite", "duckdb"):
        # A SELECT cannot reach a write in SQLite or DuckDB; the file itself is opened read only.
        source = world.source("query", query="SELECT 1")
        conn = source._connection()
        with pytest.raises(Exception, match="readonly|read-only"):
            conn.execute("DELETE FROM users")
        source.close()
    else:
        with pytest.raises(ConnectorError) as info:
            world.source("query", query="SELECT bump() AS bumped").preview(1)
        assert info.value.permanent and "read-only" in info.value.message
    assert world.run("SELECT SUM(version) FROM users") == [(24,)]


def test_query_source_times_out(world):
    slow = {
        "postgres": "SELECT pg_sleep(10) AS slept",
        "mysql": "SELECT SLEEP(10) AS slept",
    }.get(world.kind, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT MAX(x) AS slept FROM c")
    source = world.source("query", app={"statementTimeout": 1}, query=slow)
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        source.preview(1)
    assert time.monotonic() - started < 5
    assert "timeout of 1 s" in info.value.message and not info.value.permanent
    # the same connection is still usable afterwards
    fast = qprop("n", "SELECT COUNT(*) FROM purchases WHERE user_id = {{{ id }}}")
    assert source.aggregate(properties=[fast], key_column="id", key_property="id", keys=[1]) == {1: {"n": 3}}
    source.close()
    source.close()  # closing twice is fine


def test_text_keys_with_leading_zeros_stay_distinct(world):
    world.run("CREATE TABLE visits (zip TEXT, n INTEGER)")
    world.run("INSERT INTO visits VALUES ('01234', 1), ('01234', 2), ('1234', 10)")
    source = world.source("table", table="visits")
    out = source.aggregate(properties=[spec("total", "sum", "n", sort=None)], key_column="zip",
                           key_property="zip", keys=["01234", "1234", None])
    assert {k: num(v["total"]) for k, v in out.items()} == {"01234": 3.0, "1234": 10.0}
    rows = read_all(source, key_column="zip", limit=1, distinct_keys=True)
    assert rows == [{"zip": "01234"}, {"zip": "1234"}]
