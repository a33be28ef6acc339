"""A source whose key column is not unique, or empty in some rows (a table without a primary
key, a query joining to many rows): every key becomes one record, nothing is read twice or
lost at a batch edge, and the rows that share a key or have none are counted on the run."""

from __future__ import annotations

import sqlite3

import pytest

from core import models as m
from core.choices import DestinationCollection, PropertyType, RunState, SyncMode
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db


def _world(tmp_path, rows):
    src, crm = tmp_path / "src.sqlite3", tmp_path / "crm.sqlite3"
    with sqlite3.connect(src) as conn:
        conn.execute("CREATE TABLE people (id INTEGER, email TEXT, updated_at TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?)", rows)
    with sqlite3.connect(crm) as conn:
        conn.execute("CREATE TABLE crm (id TEXT PRIMARY KEY, email TEXT)")
    model = m.RecordModel.objects.create(name="customers")
    app = m.App.objects.create(name="src", type="sqlite", options={"path": str(src)})
    source = m.Source.objects.create(name="people", app=app, model=model, type="sqlite-table",
                                     options={"table": "people"}, is_primary=True)
    pk = m.Property.objects.create(model=model, source=source, key="person_id", type=PropertyType.INTEGER,
                                   unique=True, is_primary_key=True, options={"column": "id"})
    email = m.Property.objects.create(model=model, source=source, key="email", type=PropertyType.STRING,
                                      options={"column": "email"})
    m.SourceMapping.objects.create(source=source, remote_key="id", property=pk)
    out = m.App.objects.create(name="crm", type="sqlite", options={"path": str(crm)})
    dest = m.Destination.objects.create(name="crm", app=out, model=model, type="sqlite-export",
                                        sync_mode=SyncMode.SYNC, collection=DestinationCollection.MODEL,
                                        options={"table": "crm", "primaryKey": "id"})
    m.DestinationMapping.objects.create(destination=dest, remote_key="id", property=pk)
    m.DestinationMapping.objects.create(destination=dest, remote_key="email", property=email)
    schedule = m.Schedule.objects.create(source=source, options={"column": "updated_at"})
    return schedule, crm


def test_rows_sharing_a_key_make_one_record_and_rows_without_one_are_counted(tmp_path):
    # Batches of 50 (tests.settings): key 49 has two rows, the second one past the page edge;
    # key 7 has two rows in one page; two rows have no key.
    rows = [(i, f"p{i}@example.com", "2026-01-01") for i in range(1, 121)]
    rows += [(7, "p7-again@example.com", "2026-01-02"), (49, "p49-again@example.com", "2026-01-02"),
             (None, "nobody@example.com", "2026-01-02"), (None, "nobody2@example.com", "2026-01-02")]
    schedule, crm = _world(tmp_path, rows)
    run = sync(schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert (run.rows_total, run.rows_read, run.records_created) == (122, 122, 120)
    assert run.errors == {
        "id: no value; row skipped": 2,
        "id: more than one row has this key; the last row read is kept": 2,
    }
    with sqlite3.connect(crm) as conn:
        got = dict(conn.execute("SELECT id, email FROM crm"))
    assert set(got) == {str(i) for i in range(1, 121)}
    assert got["7"] == "p7-again@example.com" and got["49"] == "p49-again@example.com"
    assert got["48"] == "p48@example.com" and got["50"] == "p50@example.com"
    # A second run of the same rows changes nothing and counts the same.
    again = sync(schedule)
    assert again.exports_created == 0 and again.records_updated == 0
