"""MySQL/MariaDB specifics against the local MariaDB server (skipped locally when it is down,
failing under CI=true): connection errors, the read-only guard for user SQL, query properties
run per key, types and values MySQL treats its own way."""
from __future__ import annotations

import socket

import pytest

from connectors import registry
from connectors.base import ConnectorError, ExportPayload, PropertySpec, SyncOperations
from connectors.mysql import MYSQL
from tests.connectors.conftest import make_world


@pytest.fixture
def world(request, tmp_path):
    return make_world("mysql", request, tmp_path)


def options(world, **overrides):
    return {**world.app_options, **overrides}


def test_wrong_password_is_permanent_and_secret_free(world):
    world.run("CREATE USER IF NOT EXISTS 'gt_reader'@'%' IDENTIFIED BY 'right-password-1'")
    try:
        app = registry.get_app("mysql")(options(world, user="gt_reader", password="hunter2-very-secret"))
        with pytest.raises(ConnectorError) as info:
            app.test_connection()
    finally:
        world.run("DROP USER IF EXISTS 'gt_reader'@'%'")
    assert info.value.permanent
    assert "Access denied" in info.value.message and "gt_reader" in info.value.message
    assert "hunter2" not in info.value.message and "hunter2" not in repr(info.value.args)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # the driver's error is not shown


def test_missing_database_is_permanent(world):
    with pytest.raises(ConnectorError) as info:
        registry.get_app("mysql")(options(world, database="no_such_db_here")).test_connection()
    assert info.value.permanent and "Unknown database 'no_such_db_here'" in info.value.message


def test_unreachable_server_is_retryable(world):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectorError) as info:
        registry.get_app("mysql")(options(world, port=port, password="hunter2-secret")).test_connection()
    assert not info.value.permanent
    assert f"127.0.0.1:{port}" in info.value.message and "refused" in info.value.message.lower()
    assert "hunter2" not in info.value.message


def test_missing_table_is_permanent(world):
    with pytest.raises(ConnectorError) as info:
        world.source("table", table="nope").list_columns()
    assert info.value.permanent and info.value.message == 'table "nope" does not exist'


@pytest.mark.parametrize("sql", [
    "DROP TABLE users",
    "CREATE TABLE evil (id INT)",
    "  -- a comment\n TRUNCATE users",
    "/*!50000 DROP TABLE users */ SELECT 1",
    "SELECT * FROM users INTO OUTFILE '/tmp/gt_users.txt'",
])
def test_user_sql_that_could_escape_the_read_only_transaction_is_refused(world, sql):
    """MySQL commits before DDL even in a READ ONLY transaction: such statements never run."""
    with pytest.raises(ConnectorError) as info:
        world.app().refresh_query(sql)
    assert info.value.permanent
    prop = PropertySpec("x", {"query": sql + " WHERE id = {{{ id }}}" if "SELECT" not in sql else sql})
    with pytest.raises(ConnectorError):
        world.source("query", query="SELECT id FROM users").aggregate(
            properties=[prop], key_column="id", key_property="id", keys=[1])
    with pytest.raises(ConnectorError):
        world.source("query", query=sql).preview(1)
    assert world.run("SELECT COUNT(*) FROM users") == [(8,)]
    assert world.run("SHOW TABLES LIKE 'evil'") == []


def test_check_user_sql_accepts_reads():
    # The words inside a string literal are data: the check reads the query outside its
    # literals and comments (connectors/sql_text.py).
    for sql in ("SELECT 1", "  (SELECT 1)", "WITH a AS (SELECT 1) SELECT * FROM a", "/* why */ select 2",
                "-- note\nSELECT 'INTO OUTFILE is text here' AS t"):
        MYSQL.check_user_sql(sql)


def test_query_properties_honour_their_order_by(world):
    """MariaDB ignores ORDER BY inside derived tables, so each query runs as written, per key."""
    source = world.source("query", query="SELECT id FROM users")
    props = [
        PropertySpec("latest", {"query": "SELECT category FROM purchases WHERE user_id = {{{ id }}} ORDER BY id DESC"}),
        PropertySpec("all", {"query": "SELECT amount FROM purchases WHERE user_id = {{{ id }}} ORDER BY amount DESC"}, (), True),
    ]
    out = source.aggregate(properties=props, key_column="id", key_property="id", keys=[1, 2, 4])
    assert out[1]["latest"] == "books" and out[2]["latest"] == "books"
    assert [float(v) for v in out[1]["all"]] == [25.5, 10.0, 4.5]
    assert out[4] == {"latest": None, "all": []}


def test_booleans_and_ordered_arrays_in_table_properties(world):
    columns = {c.name: c.type for c in world.source("query", query="SELECT vip, ltv, updated_at FROM users").list_columns()}
    assert columns == {"vip": "boolean", "ltv": "float", "updated_at": "date"}
    source = world.source("table", table="purchases")
    prop = PropertySpec("cats", {"column": "category", "aggregationMethod": "exact", "sortColumn": "purchased_at"}, (), True)
    out = source.aggregate(properties=[prop], key_column="user_id", key_property="userId", keys=[1, 2])
    assert out[1]["cats"] == ["books", "games", "books"] and out[2]["cats"] == ["games", "books"]


def test_destination_keeps_text_keys_text_and_converts_iso_dates(world):
    world.run("CREATE TABLE contacts (code VARCHAR(20) PRIMARY KEY, seen DATETIME, born DATE, tags TEXT)")
    dest = world.destination(table="contacts", primaryKey="code")
    ops = SyncOperations.for_mode("sync")
    results = dest.export_batch([
        ExportPayload(1, 1, {}, {"code": "05", "seen": "2026-01-07T10:00:00+02:00", "born": "1990-05-04T00:00:00+00:00",
                                 "tags": ["a", "b"]}, [], [], False),
        ExportPayload(2, 2, {}, {"code": 5, "seen": None}, [], [], False),
    ], operations=ops)
    assert all(r.success for r in results), results
    rows = world.run("SELECT code, seen, born, tags FROM contacts ORDER BY code")
    assert [r[0] for r in rows] == ["05", "5"]  # 5 did not overwrite '05'
    assert str(rows[0][1]) == "2026-01-07 08:00:00" and str(rows[0][2]) == "1990-05-04"
    assert rows[0][3] == '["a", "b"]'


def test_a_value_the_column_rejects_fails_only_that_record(world):
    dest = world.destination(table="people", primaryKey="id")
    results = dest.export_batch([
        ExportPayload(1, 1, {}, {"id": 1, "score": 5}, [], [], False),
        ExportPayload(2, 2, {}, {"id": 2, "score": "many"}, [], [], False),
        ExportPayload(3, 3, {}, {"id": 3, "name": "x" * 300}, [], [], False),
    ], operations=SyncOperations.for_mode("sync"))
    assert [r.success for r in results] == [True, False, False]
    assert "Incorrect integer value" in results[1].error and "too long" in results[2].error
    assert world.run("SELECT id FROM people") == [(1,)]


def test_group_names_compare_byte_for_byte_under_a_case_insensitive_collation(world):
    """MariaDB's default collation holds 'vip' = 'VIP' = 'vip ': a person's 'VIP' row under a
    unique index makes our 'vip' present (not a failed record), and removing 'vip' leaves the
    person's 'Vip ' and 'VIP' rows alone."""
    world.run("CREATE UNIQUE INDEX people_groups_unique ON people_groups (person_id, group_name)")
    world.run("INSERT INTO people_groups (person_id, group_name) VALUES (1, 'VIP'), (2, 'Vip ')")
    dest = world.destination(table="people", primaryKey="id", groupsTable="people_groups",
                             groupForeignKey="person_id", groupColumnName="group_name")
    ops = SyncOperations.for_mode("sync")
    results = dest.export_batch([
        ExportPayload(1, 1, {}, {"id": 1}, [], ["vip"], False),
        ExportPayload(2, 2, {}, {"id": 2}, [], ["vip"], False),
    ], operations=ops)
    assert all(r.success for r in results), results
    rows = "SELECT person_id, group_name FROM people_groups ORDER BY person_id, group_name"
    # Person 2's 'Vip ' is also a duplicate of 'vip' for the index: both people keep their rows.
    assert world.run(rows) == [(1, "VIP"), (2, "Vip ")]
    world.run("DROP INDEX people_groups_unique ON people_groups")
    world.run("INSERT INTO people_groups (person_id, group_name) VALUES (2, 'vip')")
    results = dest.export_batch([
        ExportPayload(3, 1, {"id": 1}, {"id": 1}, ["vip"], [], False),
        ExportPayload(4, 2, {"id": 2}, {"id": 2}, ["vip"], [], False),
    ], operations=ops)
    assert all(r.success for r in results), results
    assert world.run(rows) == [(1, "VIP"), (2, "Vip ")]


def test_double_sums_outside_decimal_65_30_are_added_as_doubles(world):
    """DOUBLE sums and averages go through DECIMAL(65, 30) only where the values fit it: 1e40
    and 1.5 are not 99999...99.99, 1e-31 is not lost, and 0.1 + 0.2 is still 0.3."""
    world.run("CREATE TABLE amounts (user_id INT, f DOUBLE)")
    rows = [(1, 1e40), (1, 1.5), (2, -1e300), (2, 2e300), (3, 1e-31), (3, 3e-31),
            (4, 0.1), (4, 0.2), (5, 0.0), (6, 2.5e-20), (6, 1.0)]
    world.runmany("INSERT INTO amounts VALUES (?, ?)", rows)
    source = world.source("table", table="amounts")
    props = [PropertySpec(m, {"column": "f", "aggregationMethod": m}) for m in ("sum", "average")]
    out = source.aggregate(properties=props, key_column="user_id", key_property="userId", keys=[1, 2, 3, 4, 5, 6])
    assert {k: (float(v["sum"]), float(v["average"])) for k, v in out.items()} == {
        1: (1e40, 5e39), 2: (1e300, 5e299), 3: (4e-31, 2e-31), 4: (0.3, 0.15), 5: (0.0, 0.0),
        6: (1.0, 0.5),
    }
    assert (str(out[4]["sum"]), str(out[4]["average"])) == ("0.3", "0.15")
