"""Grouparoo's demo, end to end, on PostgreSQL, MariaDB and SQLite sources.

The fixture tests/config/fixtures/grouparoo_demo/ is a config directory in the demo plugin's
layout and Grouparoo's exact file format, using every construct the demo's configs use (three
models of two types, a table source per table, a query source per database with `{{{ key }}}`
variables and schema-qualified SQL, a calculated property, sum / count / most recent / least
recent aggregations with filters, array properties, relative-date rules with a string number,
a phone number read in the default country a setting gives,
the logger destination, a team and member, settings, an API key), plus rules the demo does not
use but Grouparoo defined (`ne` on text and on arrays, `notExists`, `any`). It is assembled for
each database as `grouparoo demo --config` assembles its own (tests/grouparoo_demo/assemble.py),
the source tables are generated with the demo's schema and the demo's way of writing them
(tests/grouparoo_demo/data.py), and the expected records, groups and destination rows come from
a plain-Python reading of Grouparoo's semantics over the tables as stored
(tests/grouparoo_demo/expected.py).

The tests validate and apply the files unchanged, sync every schedule and compare the records,
the groups and the logger's rows; two of them then change the source (a fixed email and a
deleted admin; a refund and a first purchase), sync again and compare everything again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from core import models as m
from core.choices import RecordState
from core.config.apply import config_apply
from core.config.validate import config_validate
from core.settings_registry import setting_value
from tests.config.conftest import FIXTURES
from tests.connectors.servers import scratch_mysql  # noqa: F401 - a fixture
from tests.engine.helpers import run_and_send, sync
from tests.grouparoo_demo import data, expected
from tests.grouparoo_demo.assemble import app_options, assemble, read_directory
from tests.grouparoo_demo.databases import DemoDatabase, sqlite_database

pytestmark = pytest.mark.django_db

SCHEDULES = ("users_schedule", "accounts_schedule", "payments_schedule", "admins_schedule")
DATABASES = ("postgres", "mysql", "sqlite")


@pytest.fixture
def app_dir(tmp_path, monkeypatch) -> Path:
    """The Grouparoo application's directory, the working directory as Grouparoo ran in it:
    the demo writes its config into `config/` here, its SQLite database and the logger's file
    land here."""
    app = tmp_path / "app"
    app.mkdir()
    monkeypatch.chdir(app)
    return app


@pytest.fixture(params=DATABASES)
def demo_db(request, app_dir) -> DemoDatabase:
    """The demo's source database on one of the local servers."""
    if request.param == "postgres":
        pg = request.getfixturevalue("scratch_pg")
        return DemoDatabase(
            "postgres",
            {
                "host": pg["host"],
                "port": pg["port"],
                "database": pg["database"],
                "schema": data.SCHEMA,
                "user": pg["user"],
                "password": "",
            },
        )
    if request.param == "mysql":
        my = request.getfixturevalue("scratch_mysql")
        return DemoDatabase(
            "mysql", {k: my[k] for k in ("host", "port", "database", "user", "password")}
        )
    return sqlite_database(app_dir)


def demo_config(db: DemoDatabase, target: Path) -> Path:
    """The fixture, assembled for `db` as the demo assembles its config."""
    files = read_directory(FIXTURES / "grouparoo_demo")
    return assemble(files, target, db=db.kind, options=app_options(db.kind, db.connection))


# ------------------------------------------------------------------------- what the engine has


def _key(value: Any) -> str:
    return expected.js_string(int(value)) if isinstance(value, float) else expected.js_string(value)


def _normal(prop: m.Property, values: list[Any]) -> Any:
    if prop.type == "integer":  # kept as a number (a float column)
        values = [v if v is None else int(v) for v in values]
    if prop.is_array:
        return [v for v in values if v is not None]
    return values[0] if values else None


def actual_records(model_id: str, key_property: str) -> dict[str, dict[str, Any]]:
    """{key: {property config id: value}} for the model's records, as the engine stores them."""
    props = {p.pk: p for p in m.Property.objects.filter(model__config_id=model_id)}
    by_record: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    rows = (
        m.RecordProperty.objects.filter(record__model__config_id=model_id)
        .exclude(record__state=RecordState.DELETED)
        .order_by("record_id", "position")
    )
    for rp in rows:
        by_record[rp.record_id][props[rp.property_id].config_id].append(rp.value)
    out = {}
    for values in by_record.values():
        key = _key(values[key_property][0])
        out[key] = {p.config_id: _normal(p, values.get(p.config_id, [])) for p in props.values()}
    return out


def record_keys(model_id: str, key_property: str) -> dict[int, str]:
    rows = m.RecordProperty.objects.filter(
        record__model__config_id=model_id, property__config_id=key_property
    )
    return {rp.record_id: _key(rp.value) for rp in rows}


def _expected_normal(model_props: dict[str, m.Property], values: dict[str, Any]) -> dict[str, Any]:
    return {
        pid: ([x for x in v if x is not None] if model_props[pid].is_array else v)
        for pid, v in values.items()
    }


def _equal(got: Any, want: Any) -> bool:
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_equal, got, want))
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return got == want  # exactly: 0.10 + 0.20 + 0.05 is 0.35
    return type(got) is type(want) and got == want if want is not None else got is None


def assert_records(exp: expected.Expected) -> None:
    """Every record of every model, every property value, and which records are invalid."""
    problems = []
    for model_id, records in exp.records.items():
        props = {p.config_id: p for p in m.Property.objects.filter(model__config_id=model_id)}
        key_property = props_key(model_id)
        got = actual_records(model_id, key_property)
        assert sorted(got) == sorted(records), f"{model_id}: record keys"
        for key, values in records.items():
            want = _expected_normal(props, values)
            problems += [
                (model_id, key, pid, got[key].get(pid), v)
                for pid, v in want.items()
                if not _equal(got[key].get(pid), v)
            ]
        invalid = {
            record_keys(model_id, key_property)[r.pk]
            for r in m.Record.objects.filter(model__config_id=model_id, invalid=True).exclude(
                state=RecordState.DELETED
            )
        }
        if invalid != exp.invalid[model_id]:
            problems.append(
                (model_id, "invalid records", sorted(invalid), sorted(exp.invalid[model_id]))
            )
    assert not problems, "\n".join(map(repr, problems))


def props_key(model_id: str) -> str:
    return m.Property.objects.get(model__config_id=model_id, is_primary_key=True).config_id


def assert_groups(exp: expected.Expected) -> None:
    problems = []
    for group in m.Group.objects.all():
        keys = record_keys(group.model.config_id, props_key(group.model.config_id))
        current = m.GroupMember.objects.filter(group=group, left_at__isnull=True)
        members = {keys[gm.record_id] for gm in current}
        want = exp.groups[group.config_id]
        if members != want:
            problems.append(
                (
                    group.config_id,
                    "extra",
                    sorted(members - want),
                    "missing",
                    sorted(want - members),
                )
            )
    assert not problems, "\n".join(map(repr, problems))


def logger_rows(path: Path, keys: dict[int, str]) -> dict[str, dict[str, Any]]:
    """The logger destination's file: the last line for each record (not a delete)."""
    last: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            last[keys[int(entry["id"])]] = entry
    return {key: e for key, e in last.items() if not e.get("toDelete")}


def _exported(value: Any) -> Any:
    if isinstance(value, dict) and "rawValue" in value:
        value = value["rawValue"]
    return value


def assert_logger(exp: expected.Expected, path: Path) -> None:
    for destination_id, rows in exp.exports.items():
        destination = m.Destination.objects.get(config_id=destination_id)
        keys = record_keys(destination.model.config_id, props_key(destination.model.config_id))
        got = logger_rows(path, keys)
        assert sorted(got) == sorted(rows), destination_id
        for key, row in rows.items():
            sent = got[key]
            props = {k: _exported(v) for k, v in sent["newRecordProperties"].items()}
            for field, value in row["properties"].items():
                assert _same(props.get(field), value), (
                    destination_id,
                    key,
                    field,
                    props.get(field),
                    value,
                )
            assert set(sent["newGroups"]) == row["groups"], (destination_id, key)


def _same(sent: Any, want: Any) -> bool:
    """A sent value equals the expected one: numbers by value, dates as instants, arrays by item,
    no value as null or absent."""
    if isinstance(want, list):
        sent = sent if isinstance(sent, list) else ([] if sent is None else [sent])
        want = [w for w in want if w is not None]
        return len(sent) == len(want) and all(_same(s, w) for s, w in zip(sent, want, strict=True))
    if isinstance(sent, list) and len(sent) <= 1:
        sent = sent[0] if sent else None
    if want is None or sent is None:
        return want is None and sent in (None, "")
    if isinstance(want, dt.datetime):
        return expected.to_datetime(sent) == want
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        return float(sent) == want
    return expected.js_string(sent) == expected.js_string(want)


# ------------------------------------------------------------------------------------ the test


def run_pending() -> None:
    """Process the runs the syncs started (the calculated properties' runs, which follow a run
    that changed records), as a worker would."""
    for _ in range(10):
        pending = list(m.Run.objects.filter(state="pending").order_by("pk"))
        if not pending:
            return
        for run in pending:
            done = run_and_send(run.pk)
            assert done.state == "complete", (done.source, done.error)
    raise AssertionError("runs keep starting runs")


def _sync_all(*, full: bool = False) -> None:
    for config_id in SCHEDULES:
        run = sync(m.Schedule.objects.get(config_id=config_id), full=full)
        assert run.state == "complete", (config_id, run.error)
        run_pending()


def find_log(config_dir: Path, name: str) -> Path:
    """The logger's file `name`, relative to the application's directory in the config (as
    Grouparoo read it)."""
    path = config_dir.parent / name
    assert path.exists(), f"the logger destination wrote no {path}"
    return path


@dataclass
class DemoWorld:
    """The demo applied and synced once: its source database, config directory and clock."""

    db: DemoDatabase
    config_dir: Path
    now: dt.datetime
    tables: dict[str, list[dict[str, Any]]]

    def expected(self) -> expected.Expected:
        return expected.compute(self.config_dir, self.db.read(), query=self.db.query, now=self.now)


def synced_demo(db: DemoDatabase, app_dir: Path) -> DemoWorld:
    """Generate the data, assemble and apply the config unchanged, sync every schedule."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    tables = data.generate(now=now)
    db.write(tables)
    config_dir = demo_config(db, app_dir / "config")
    config_apply(directory=config_dir)
    _sync_all()
    return DemoWorld(db, config_dir, now, tables)


def test_demo_config_validates_and_applies_unchanged(demo_db, app_dir, client):
    config_dir = demo_config(demo_db, app_dir / "config")
    checked = config_validate(directory=config_dir)
    assert checked.ok, [str(p) for p in checked.problems.errors]
    result = config_apply(directory=config_dir)
    assert result.applied
    types = dict(m.RecordModel.objects.values_list("config_id", "type"))
    assert types == {"users": "profile", "accounts": "account", "admins": "profile"}
    assert m.Group.objects.count() == 14 and m.Destination.objects.get(config_id="user_log")
    assert config_apply(directory=config_dir).plan.empty  # unchanged files: nothing to change

    # What Grouparoo made of the setup files: the member logs in with the password the file
    # gives, the API key of the file reads (and only reads), the settings are in force.
    member = User.objects.get(username="operator@demo.example")
    assert member.check_password("password") and member.groups.filter(name="Operators").exists()
    key = "Bearer 5d4b0cbf3d894c5fa1a0a4e7f0c6b2d1"
    assert client.get("/api/v1/records/", HTTP_AUTHORIZATION=key).status_code == 200
    assert client.post("/api/v1/groups/", {}, HTTP_AUTHORIZATION=key).status_code == 403
    assert setting_value("records-default-country-code") == "GB"
    assert setting_value("exports-max-attempts") == "4"
    assert setting_value("groups-relative-recompute-minutes") == "30"


def test_demo_records_groups_and_logger_rows_are_grouparoos(demo_db, app_dir):
    world = synced_demo(demo_db, app_dir)
    exp = world.expected()
    assert_records(exp)
    assert_groups(exp)
    assert_logger(exp, find_log(world.config_dir, "exports.log"))

    # The data reaches the cases it is made for (so a generator change cannot hollow the test).
    users = exp.records["users"]
    assert users["2"]["ltv"] == 0 and users["2"]["purchase_count"] == 0
    assert users["3"]["ltv"] == 0 and len(users["3"]["purchase_categories"]) == 2
    assert users["19"]["ltv"] == (
        0.35 if demo_db.kind != "mysql" else 0
    )  # MySQL rounds: DECIMAL(10,0)
    assert str(data.EDGE["user_duplicate_email"]) in exp.invalid["users"]
    assert exp.records["accounts"]["9"]["account_value"] == 0
    # Phone numbers: national ones read in the files' default country (GB), then formatted.
    assert (users["1"]["phone"], users["3"]["phone"]) == ("+44 20 7946 0001", "+1 650 253 0003")
    assert users["33"]["phone"] is None and "33" in exp.invalid["users"]
    recent = exp.groups["recent_automotive"]
    assert {"22", "23", "24"} <= recent and {"17", "18", "20"}.isdisjoint(recent)
    assert exp.groups["empty_group"] == set()
    assert {"14", "15"}.isdisjoint(exp.groups["not_english"])


def _second_sync(world: DemoWorld, **changes: bool) -> expected.Expected:
    """Change the source (data.second_phase), sync again (the admins in full, which confirms
    deletions), compare everything, and return the expected results."""
    world.db.write(data.second_phase(world.tables, now=world.now, **changes))
    _sync_all()
    run = sync(m.Schedule.objects.get(config_id="admins_schedule"), full=True)
    assert run.state == "complete", run.error
    run_pending()
    exp = world.expected()
    assert_records(exp)
    assert_groups(exp)
    assert_logger(exp, find_log(world.config_dir, "exports.log"))
    return exp


def test_demo_after_people_change_is_grouparoos(demo_db, app_dir):
    """A fixed email, a corrected language, a deleted admin."""
    exp = _second_sync(synced_demo(demo_db, app_dir), purchases=False)
    assert "10" in exp.groups["with_email"] and "13" in exp.groups["spanish"]
    assert str(data.EDGE["admin_deleted"]) not in exp.records["admins"]


def test_demo_after_a_refund_and_a_first_purchase_is_grouparoos(demo_db, app_dir):
    """User 4's large purchase is refunded, user 2 buys for the first time; both users are
    imported again (their rows changed), and their purchase properties follow."""
    exp = _second_sync(synced_demo(demo_db, app_dir), people=False)
    assert "2" in exp.groups["recent_automotive"] and "4" not in exp.groups["big_spenders"]
