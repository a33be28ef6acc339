"""DuckDB specifics: the file opened read only, for one call at a time, with external access
disabled; errors for missing, foreign and locked files."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from connectors import registry
from connectors.base import ConnectorError
from tests.connectors.conftest import make_world


@pytest.fixture
def world(request, tmp_path):
    return make_world("duckdb", request, tmp_path)


def test_missing_and_foreign_files_are_permanent_errors(tmp_path):
    with pytest.raises(ConnectorError) as info:
        registry.get_app("duckdb")({"path": str(tmp_path / "nope.duckdb")}).test_connection()
    assert info.value.permanent and "does not exist" in info.value.message
    assert not (tmp_path / "nope.duckdb").exists()  # never created
    notes = tmp_path / "notes.duckdb"
    notes.write_text("not a database" * 100)
    with pytest.raises(ConnectorError) as info:
        registry.get_app("duckdb")({"path": str(notes)}).test_connection()
    assert info.value.permanent and "not a valid DuckDB database file" in info.value.message


def test_no_connection_is_kept_between_calls(world):
    source = world.source("table", table="users")
    assert len(source.preview(3)) == 3
    # A writer in this process can open the file read-write at once: the source holds nothing.
    world.run("UPDATE users SET version = 9 WHERE id = 1")
    assert source.max_watermark(watermark_column="version", filters=[]) == 9


def test_a_writer_holding_the_file_is_a_retryable_error(world):
    script = textwrap.dedent(f"""
        import duckdb, sys, time
        conn = duckdb.connect({world.app_options["path"]!r})
        print("locked", flush=True)
        sys.stdin.readline()
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(ConnectorError) as info:
            world.source("table", table="users").preview(1)
        assert not info.value.permanent and "locked by another process" in info.value.message
    finally:
        writer.communicate("\n", timeout=10)
    assert len(world.source("table", table="users").preview(1)) == 1


@pytest.mark.parametrize("query", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
])
def test_queries_cannot_reach_other_files(world, query):
    with pytest.raises(ConnectorError) as info:
        world.source("query", query=query).preview(1)
    assert info.value.permanent and "refused" in info.value.message
    with pytest.raises(ConnectorError):
        world.app().refresh_query("COPY users TO '/tmp/gt_users_copy.csv'")


def test_schema_option_and_timestamptz_watermarks(world):
    world.run("CREATE SCHEMA crm")
    world.run("CREATE TABLE crm.events (id INTEGER, happened TIMESTAMPTZ)")
    world.run("INSERT INTO crm.events VALUES (1, '2024-01-01 10:00:00+00'), (2, '2024-01-02 12:00:00+02')")
    source = world.source("table", app={"schema": "crm"}, table="events")
    top = source.max_watermark(watermark_column="happened", filters=[])
    assert top == "2024-01-02T10:00:00+00:00"
    rows = source.read_batch(key_column="id", columns=None, watermark_column="happened", since=top, after=None,
                             limit=10, filters=[]).rows
    assert [r["id"] for r in rows] == [2]
    with pytest.raises(ConnectorError) as info:
        world.source("table", table="events").preview(1)  # not in main
    assert info.value.message == 'table "events" does not exist'


def test_nested_types_are_strings_for_filters(world):
    world.run("CREATE TABLE nested (id INTEGER, tags VARCHAR[], info STRUCT(a INTEGER), starts TIME)")
    columns = {c.name: c.type for c in world.source("table", table="nested").list_columns()}
    assert columns == {"id": "integer", "tags": "string", "info": "string", "starts": "string"}
