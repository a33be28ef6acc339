"""Dates a source database holds and Python cannot: PostgreSQL's and DuckDB's `infinity` and
`-infinity`, years past 9999 (PostgreSQL allows 294276) or before year 1, and the same as text in
SQLite. Through real runs of a table source, a query source, a query property and the max and
most recent of a secondary source's column: each such value is flagged on its record with a clear
reason, the run completes, and the other rows and the record's other values are synced."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core import models as m
from core.choices import AggregationMethod, PropertyType, RunState
from core.services.sources import source_preview
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db

P = PropertyType
KINDS = ("postgres", "duckdb", "sqlite")
DDL = {
    "postgres": [
        "CREATE TABLE people (id integer PRIMARY KEY, name text, signed_up timestamptz, seen timestamp, born date)",
        "CREATE TABLE visits (id integer PRIMARY KEY, person_id integer, visited_at timestamptz)",
    ],
    "duckdb": [
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR, signed_up TIMESTAMPTZ, seen TIMESTAMP,"
        " born DATE)",
        "CREATE TABLE visits (id INTEGER PRIMARY KEY, person_id INTEGER, visited_at TIMESTAMPTZ)",
    ],
    "sqlite": [
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, signed_up TEXT, seen TEXT, born TEXT)",
        "CREATE TABLE visits (id INTEGER PRIMARY KEY, person_id INTEGER, visited_at TEXT)",
    ],
}
GOOD = ("2024-05-01 10:00:00+00", "2024-05-02 11:00:00", "1990-07-08")
# person 2 and 3: (signed_up, seen, born) -> each a value outside Python's dates
BAD = {
    "postgres": {
        2: ("infinity", "-infinity", "10000-01-01"),
        3: ("294276-12-31 23:59:59+00", "0044-03-15 00:00:00 BC", "-infinity"),
    },
    "duckdb": {
        2: ("infinity", "-infinity", "10000-01-01"),
        3: ("10000-01-01 00:00:00+00", "infinity", "-infinity"),
    },
    "sqlite": {
        2: ("infinity", "-infinity", "10000-01-01"),
        3: ("10000-01-01T00:00:00Z", "9999-12-31T23:00:00-05:00", "infinity"),
    },
}
REASONS = {  # a part of the reason, by how the raw value reads
    "infinity": "is an infinite date",
    "-infinity": "is an infinite date",
    "10000": "is after year 9999",
    "294276": "is after year 9999",
    " BC": "is before year 1",
    "-05:00": "outside years 1 to 9999 in UTC",
}
VISIT_BAD = {"postgres": "infinity", "duckdb": "infinity", "sqlite": "infinity"}


def expected_reason(raw: str) -> str:
    for part, reason in REASONS.items():
        if raw == part or (part not in ("infinity", "-infinity") and part in raw):
            return reason
    raise AssertionError(raw)


@dataclass
class World:
    kind: str
    options: dict[str, Any]
    people: m.Schedule
    visits: m.Schedule
    notes: m.Schedule
    queried: m.Schedule
    crm: Path

    def value(self, key: str, person: int, *, model: str = "people") -> m.RecordProperty:
        id_key = "person_id" if model == "people" else "q_person_id"
        record = m.RecordProperty.objects.get(property__key=id_key, unique_value=str(person)).record
        return record.properties.get(property__key=key)

    def crm_rows(self) -> dict[str, tuple]:
        with sqlite3.connect(self.crm) as conn:
            return {r[0]: r[1:] for r in conn.execute("SELECT id, name, signed_up_at FROM crm")}


def load(kind: str, request, tmp_path: Path) -> dict[str, Any]:
    """The source database with its rows; the app options to read it."""
    people = [(1, "Ann", *GOOD)] + [(i, name, *BAD[kind][i]) for i, name in ((2, "Ben"), (3, "Cy"))]
    visits = [
        (1, 1, "2024-06-01 00:00:00+00"),
        (2, 2, "2024-06-02 00:00:00+00"),
        (3, 2, VISIT_BAD[kind]),
        (4, 3, "2024-06-03 00:00:00+00"),
    ]
    if kind == "postgres":
        import psycopg

        pg = request.getfixturevalue("scratch_pg")
        with psycopg.connect(pg["url"], autocommit=True) as conn:
            for sql in DDL[kind]:
                conn.execute(sql)
            conn.cursor().executemany("INSERT INTO people VALUES (%s, %s, %s, %s, %s)", people)
            conn.cursor().executemany("INSERT INTO visits VALUES (%s, %s, %s)", visits)
        return {k: pg[k] for k in ("host", "port", "user", "database")}
    if kind == "duckdb":
        import duckdb

        path = tmp_path / "people.duckdb"
        with duckdb.connect(str(path)) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            for sql in DDL[kind]:
                conn.execute(sql)
            conn.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?)", people)
            conn.executemany("INSERT INTO visits VALUES (?, ?, ?)", visits)
        return {"path": str(path)}
    path = tmp_path / "people.sqlite3"
    with sqlite3.connect(path) as conn:
        for sql in DDL[kind]:
            conn.execute(sql)
        conn.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?)", people)
        conn.executemany("INSERT INTO visits VALUES (?, ?, ?)", visits)
    return {"path": str(path)}


def make_world(kind: str, request, tmp_path: Path) -> World:
    options = load(kind, request, tmp_path)
    app = m.App.objects.create(name="people", type=kind, options=options)
    model = m.RecordModel.objects.create(name="people")

    def source(name, flavour, source_options, **kw):
        return m.Source.objects.create(
            name=name,
            app=app,
            model=kw.pop("model", model),
            type=f"{kind}-{flavour}",
            options=source_options,
            **kw,
        )

    def prop(key, src, type_, prop_options, **kw):
        return m.Property.objects.create(
            model=src.model, source=src, key=key, type=type_, options=prop_options, **kw
        )

    people = source("people", "table", {"table": "people"}, is_primary=True)
    person_id = prop(
        "person_id", people, P.INTEGER, {"column": "id"}, unique=True, is_primary_key=True
    )
    name = prop("name", people, P.STRING, {"column": "name"})
    signed_up = prop("signed_up_at", people, P.DATE, {"column": "signed_up"})
    prop("seen_at", people, P.DATE, {"column": "seen"})
    prop("born_on", people, P.DATE, {"column": "born"})
    m.SourceMapping.objects.create(source=people, remote_key="id", property=person_id)

    visits = source("visits", "table", {"table": "visits"})
    prop(
        "last_visit_at",
        visits,
        P.DATE,
        {"column": "visited_at", "aggregationMethod": AggregationMethod.MAX},
    )
    prop(
        "latest_visit_at",
        visits,
        P.DATE,
        {
            "column": "visited_at",
            "sortColumn": "id",
            "aggregationMethod": AggregationMethod.MOST_RECENT,
        },
    )
    prop(
        "visits", visits, P.INTEGER, {"column": "id", "aggregationMethod": AggregationMethod.COUNT}
    )
    m.SourceMapping.objects.create(source=visits, remote_key="person_id", property=person_id)

    notes = source("notes", "query", {"query": "SELECT id FROM people"})
    prop(
        "queried_signed_up_at",
        notes,
        P.DATE,
        {"query": "SELECT signed_up FROM people WHERE id = {{{ person_id }}}"},
    )
    m.SourceMapping.objects.create(source=notes, remote_key="id", property=person_id)

    q_model = m.RecordModel.objects.create(name="people by query")
    queried = source(
        "people by query",
        "query",
        {"query": "SELECT id, name, signed_up, born FROM people"},
        model=q_model,
        is_primary=True,
    )
    q_id = prop(
        "q_person_id", queried, P.INTEGER, {"column": "id"}, unique=True, is_primary_key=True
    )
    prop(
        "q_name",
        queried,
        P.STRING,
        {"query": "SELECT name FROM people WHERE id = {{{ q_person_id }}}"},
    )
    prop(
        "q_signed_up_at",
        queried,
        P.DATE,
        {"query": "SELECT signed_up FROM people WHERE id = {{{ q_person_id }}}"},
    )
    prop(
        "q_born_on",
        queried,
        P.DATE,
        {"query": "SELECT born FROM people WHERE id = {{{ q_person_id }}}"},
    )
    m.SourceMapping.objects.create(source=queried, remote_key="id", property=q_id)

    crm = tmp_path / "crm.sqlite3"
    with sqlite3.connect(crm) as conn:
        conn.execute("CREATE TABLE crm (id TEXT PRIMARY KEY, name TEXT, signed_up_at TEXT)")
    crm_app = m.App.objects.create(name="crm", type="sqlite", options={"path": str(crm)})
    destination = m.Destination.objects.create(
        name="crm",
        app=crm_app,
        model=model,
        type="sqlite-export",
        collection="model",
        options={"table": "crm", "primaryKey": "id"},
    )
    for remote, p in (("id", person_id), ("name", name), ("signed_up_at", signed_up)):
        m.DestinationMapping.objects.create(destination=destination, remote_key=remote, property=p)

    def schedule(src):
        return m.Schedule.objects.create(source=src, options={})

    return World(
        kind, options, schedule(people), schedule(visits), schedule(notes), schedule(queried), crm
    )


@pytest.fixture(params=KINDS)
def world(request, tmp_path, db) -> World:
    return make_world(request.param, request, tmp_path)


def assert_flagged(rp: m.RecordProperty, raw: str) -> None:
    assert rp.invalid_reason and expected_reason(raw) in rp.invalid_reason, (
        rp.property.key,
        raw,
        rp.invalid_reason,
    )
    assert (
        rp.raw_value and rp.raw_value.lstrip("+").split()[0][:5] == raw.lstrip("+").split()[0][:5]
    ), rp.raw_value
    assert (rp.value_text, rp.value_number, rp.value_datetime, rp.value_boolean) == (None,) * 4


def test_dates_outside_pythons_calendar_are_flagged_and_the_runs_complete(world):
    run = sync(world.people)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_invalid == 2 and m.Record.objects.filter(model__name="people").count() == 3
    ann_signed_up = world.value("signed_up_at", 1)
    assert ann_signed_up.invalid_reason is None and ann_signed_up.value_datetime is not None
    assert world.value("born_on", 1).invalid_reason is None
    for person in (2, 3):
        for key, raw in zip(
            ("signed_up_at", "seen_at", "born_on"), BAD[world.kind][person], strict=True
        ):
            assert_flagged(world.value(key, person), raw)
    assert world.value("name", 2).value_text == "Ben" and world.value("name", 3).value_text == "Cy"
    crm = world.crm_rows()
    assert set(crm) == {"1", "2", "3"} and crm["2"] == ("Ben", None) and crm["3"] == ("Cy", None)
    assert crm["1"][1].startswith("2024-05-01")

    # The max and the most recent of a secondary source's column.
    run = sync(world.visits)
    assert run.state == RunState.COMPLETE, run.error
    for key in ("last_visit_at", "latest_visit_at"):
        assert_flagged(world.value(key, 2), VISIT_BAD[world.kind])
        assert (
            world.value(key, 1).invalid_reason is None
            and world.value(key, 1).value_datetime is not None
        )
    assert world.value("visits", 2).value_number == 2

    # A query property.
    run = sync(world.notes)
    assert run.state == RunState.COMPLETE, run.error
    assert_flagged(world.value("queried_signed_up_at", 2), BAD[world.kind][2][0])
    assert world.value("queried_signed_up_at", 1).invalid_reason is None

    # A query source: its preview shows the text, its run flags the values.
    rows = {row["id"]: row for row in source_preview(source=world.queried.source, limit=10)}
    assert rows[2]["signed_up"] == "infinity" and rows[1]["name"] == "Ann"
    run = sync(world.queried)
    assert run.state == RunState.COMPLETE, run.error
    assert m.Record.objects.filter(model__name="people by query").count() == 3
    assert world.value("q_name", 3, model="q").value_text == "Cy"
    assert_flagged(world.value("q_signed_up_at", 2, model="q"), BAD[world.kind][2][0])
    assert_flagged(world.value("q_born_on", 3, model="q"), BAD[world.kind][3][2])
    assert world.value("q_born_on", 1, model="q").invalid_reason is None


def test_an_infinite_date_in_a_csv_file_is_flagged_not_read_as_9999(tmp_path, db):
    """DuckDB reads a CSV column of dates holding `infinity` as DATE, and hands it to Python as
    9999-12-31: the connector asks DuckDB which values are infinite, so it is flagged instead."""
    path = tmp_path / "people.csv"
    path.write_text("id,name,born\n1,Ann,1990-07-08\n2,Ben,infinity\n3,Cy,9999-12-31\n")
    app = m.App.objects.create(name="files", type="csv", options={})
    model = m.RecordModel.objects.create(name="people")
    source = m.Source.objects.create(
        name="people",
        app=app,
        model=model,
        type="csv-file",
        options={"path": str(path)},
        is_primary=True,
    )
    person_id = m.Property.objects.create(
        model=model,
        source=source,
        key="person_id",
        type=P.INTEGER,
        options={"column": "id"},
        unique=True,
        is_primary_key=True,
    )
    m.Property.objects.create(
        model=model, source=source, key="born_on", type=P.DATE, options={"column": "born"}
    )
    m.SourceMapping.objects.create(source=source, remote_key="id", property=person_id)
    run = sync(m.Schedule.objects.create(source=source, options={}))
    assert run.state == RunState.COMPLETE, run.error
    values = {
        rp.record.properties.get(property=person_id).unique_value: rp
        for rp in m.RecordProperty.objects.filter(property__key="born_on").select_related("record")
    }
    assert_flagged(values["2"], "infinity")
    assert (
        values["3"].invalid_reason is None and values["3"].value_datetime.year == 9999
    )  # a real date
    assert values["1"].invalid_reason is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("infinity", "'infinity' is an infinite date; date properties hold years 1 to 9999"),
        ("-Infinity", "'-Infinity' is an infinite date"),
        ("10000-01-01", "'10000-01-01' is after year 9999"),
        ("294276-12-31 23:59:59+00", "is after year 9999"),
        ("0044-03-15 00:00:00+00 BC", "is before year 1"),
        ("0044-03-15 (BC)", "is before year 1"),
        ("9999-12-31T23:00:00-05:00", "is outside years 1 to 9999 in UTC"),
        ("0001-01-01T00:30:00+01:00", "is outside years 1 to 9999 in UTC"),
        ("last tuesday", "'last tuesday' is not a date (ISO 8601 or epoch expected)"),
    ],
)
def test_dates_outside_the_calendar_have_a_reason_that_says_so(raw, reason):
    from core import values

    with pytest.raises(ValueError) as info:
        values.coerce(P.DATE, raw)
    assert reason in str(info.value)


def test_a_postgres_date_in_range_locally_but_past_9999_in_utc_is_flagged(scratch_pg, db):
    """With a session time zone west of UTC, PostgreSQL shows 10000-01-01 01:00 UTC as
    9999-12-31 20:00-05, which Python loads and cannot convert to UTC."""
    import psycopg

    with psycopg.connect(scratch_pg["url"], autocommit=True) as conn:
        conn.execute(
            f"ALTER DATABASE \"{scratch_pg['database']}\" SET timezone TO 'America/New_York'"
        )
        conn.execute(
            "CREATE TABLE people (id integer PRIMARY KEY, name text, signed_up timestamptz)"
        )
        conn.execute(
            "INSERT INTO people VALUES (1, 'Ann', '2024-05-01 10:00:00+00'),"
            " (2, 'Ben', '10000-01-01 01:00:00+00')"
        )
    app = m.App.objects.create(
        name="pg",
        type="postgres",
        options={k: scratch_pg[k] for k in ("host", "port", "user", "database")},
    )
    model = m.RecordModel.objects.create(name="people")
    source = m.Source.objects.create(
        name="people",
        app=app,
        model=model,
        type="postgres-table",
        options={"table": "people"},
        is_primary=True,
    )
    person_id = m.Property.objects.create(
        model=model,
        source=source,
        key="person_id",
        type=P.INTEGER,
        options={"column": "id"},
        unique=True,
        is_primary_key=True,
    )
    m.Property.objects.create(
        model=model, source=source, key="signed_up_at", type=P.DATE, options={"column": "signed_up"}
    )
    m.SourceMapping.objects.create(source=source, remote_key="id", property=person_id)
    run = sync(m.Schedule.objects.create(source=source, options={}))
    assert run.state == RunState.COMPLETE, run.error
    by_id = {
        rp.record.properties.get(property=person_id).unique_value: rp
        for rp in m.RecordProperty.objects.filter(property__key="signed_up_at").select_related(
            "record"
        )
    }
    assert "outside years 1 to 9999 in UTC" in (by_id["2"].invalid_reason or ""), by_id[
        "2"
    ].invalid_reason
    assert by_id["2"].raw_value.startswith("9999-12-31T20:00:00-05:00")
    assert by_id["1"].invalid_reason is None and by_id["1"].value_datetime is not None
