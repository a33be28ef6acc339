"""A source table that disappears, or loses a column, between runs: the run fails with an error
naming the table or column, nothing already imported or exported is lost, and the first run after
the table is back completes."""

from __future__ import annotations

import pytest

from core import models as m
from core.choices import RunState
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db


def snapshot(shop):
    values = sorted(m.RecordProperty.objects.values_list("record_id", "property__key", "raw_value"))
    return m.Record.objects.count(), values, shop.dst_rows()


def test_a_table_that_disappears_fails_the_run_by_name_and_loses_nothing(shop):
    first = sync(shop.users_schedule)
    assert first.state == RunState.COMPLETE
    before = snapshot(shop)
    watermark = m.Schedule.objects.get(pk=shop.users_schedule.pk).high_watermark if hasattr(
        m.Schedule, "high_watermark") else None
    shop.src_sql("ALTER TABLE users RENAME TO users_away")

    run = sync(shop.users_schedule)
    assert run.state == RunState.FAILED
    assert "users" in run.error and "users_away" not in run.error, run.error
    assert snapshot(shop) == before
    if watermark is not None:
        assert m.Schedule.objects.get(pk=shop.users_schedule.pk).high_watermark == watermark

    shop.src_sql("ALTER TABLE users_away RENAME TO users")
    shop.src_sql("UPDATE users SET first_name = 'Adah', updated_at = '2026-05-01' WHERE id = 1")
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert {r["id"]: r for r in shop.dst_rows()}["1"]["first_name"] == "Adah"


def test_a_column_that_disappears_fails_the_run_naming_it_and_loses_nothing(shop):
    sync(shop.users_schedule)
    before = snapshot(shop)
    shop.src_sql("ALTER TABLE users DROP COLUMN first_name")
    shop.src_sql("UPDATE users SET ltv = 1.0, updated_at = '2026-05-01' WHERE id = 2")

    run = sync(shop.users_schedule)
    assert run.state == RunState.FAILED
    assert "first_name" in run.error, run.error
    assert snapshot(shop) == before  # no half-written batch, no value cleared

    shop.src_sql("ALTER TABLE users ADD COLUMN first_name TEXT")
    shop.src_sql("UPDATE users SET first_name = 'Bobby', updated_at = '2026-05-02' WHERE id = 2")
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert (crm["2"]["first_name"], crm["2"]["ltv"]) == ("Bobby", 1.0)
    assert crm["1"]["first_name"] == "Ada"


def test_a_secondary_table_that_disappears_fails_the_runs_that_read_it_and_loses_nothing(shop):
    sync(shop.users_schedule)
    sync(shop.purchases_schedule)
    before = snapshot(shop)
    shop.src_sql("DROP TABLE purchases")
    run = sync(shop.purchases_schedule)
    assert run.state == RunState.FAILED and "purchases" in run.error, run.error
    assert snapshot(shop) == before
    # A users run recomputes the purchases of every user it reads: it fails too, by name, and
    # moves no watermark, so the next run after the table is back reads the change again.
    shop.src_sql("UPDATE users SET first_name = 'Cyrus', updated_at = '2026-05-01' WHERE id = 3")
    run = sync(shop.users_schedule)
    assert run.state == RunState.FAILED and "purchases" in run.error, run.error
    assert snapshot(shop) == before
    shop.src_sql("CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount REAL, purchased_at TEXT)")
    shop.src_sql("INSERT INTO purchases VALUES (9, 3, 12.5, '2026-05-05T00:00:00')")
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert (crm["3"]["first_name"], crm["3"]["total_spend"]) == ("Cyrus", 12.5)
    run = sync(shop.purchases_schedule)
    assert run.state == RunState.COMPLETE, run.error


@pytest.fixture
def pg_people(scratch_pg, tmp_path):
    """A PostgreSQL source table `people` synced into a SQLite destination table."""
    import sqlite3

    import psycopg

    with psycopg.connect(scratch_pg["url"], autocommit=True) as conn:
        conn.execute("CREATE TABLE people (id bigint PRIMARY KEY, nickname text, updated_at timestamptz)")
        conn.execute("INSERT INTO people VALUES (1, 'Ann', '2026-01-01'), (2, 'Ben', '2026-01-02')")
    dst = tmp_path / "out.sqlite3"
    with sqlite3.connect(dst) as conn:
        conn.execute("CREATE TABLE out (id TEXT PRIMARY KEY, nickname TEXT)")
    model = m.RecordModel.objects.create(name="people")
    app = m.App.objects.create(name="pg", type="postgres",
                               options={k: scratch_pg[k] for k in ("host", "port", "user", "database")})
    source = m.Source.objects.create(name="people", app=app, model=model, type="postgres-import-table",
                                     options={"table": "people"}, is_primary=True)
    pk = m.Property.objects.create(model=model, source=source, key="person_id", type="integer", unique=True,
                                   is_primary_key=True, options={"column": "id"})
    nick = m.Property.objects.create(model=model, source=source, key="nickname", type="string",
                                     options={"column": "nickname"})
    m.SourceMapping.objects.create(source=source, remote_key="id", property=pk)
    schedule = m.Schedule.objects.create(source=source, options={"column": "updated_at"})
    out_app = m.App.objects.create(name="out", type="sqlite", options={"path": str(dst)})
    dest = m.Destination.objects.create(name="out", app=out_app, model=model, type="sqlite-export", collection="model",
                                        options={"table": "out", "primaryKey": "id"})
    m.DestinationMapping.objects.create(destination=dest, remote_key="id", property=pk)
    m.DestinationMapping.objects.create(destination=dest, remote_key="nickname", property=nick)

    def pg(sql: str) -> None:
        with psycopg.connect(scratch_pg["url"], autocommit=True) as conn:
            conn.execute(sql)

    def out() -> dict:
        with sqlite3.connect(dst) as conn:
            return dict(conn.execute("SELECT id, nickname FROM out"))

    return schedule, pg, out


def test_a_postgresql_source_losing_its_table_or_a_column_fails_by_name_and_recovers(pg_people):
    schedule, pg, out = pg_people
    assert sync(schedule).state == RunState.COMPLETE
    assert out() == {"1": "Ann", "2": "Ben"}
    values = sorted(m.RecordProperty.objects.values_list("record_id", "property__key", "raw_value"))

    pg("ALTER TABLE people DROP COLUMN nickname")
    pg("UPDATE people SET updated_at = '2026-02-01' WHERE id = 2")
    run = sync(schedule)
    assert run.state == RunState.FAILED and "nickname" in run.error, run.error
    pg("ALTER TABLE people RENAME TO people_away")
    run = sync(schedule)
    assert run.state == RunState.FAILED and "people" in run.error, run.error
    assert "people_away" not in run.error and "password" not in run.error.lower()
    assert sorted(m.RecordProperty.objects.values_list("record_id", "property__key", "raw_value")) == values
    assert out() == {"1": "Ann", "2": "Ben"}

    pg("ALTER TABLE people_away RENAME TO people")
    pg("ALTER TABLE people ADD COLUMN nickname text")
    pg("UPDATE people SET nickname = 'Benji', updated_at = '2026-02-02' WHERE id = 2")
    run = sync(schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert out()["2"] == "Benji"
