"""Grouparoo's calculated-property source (plugin @grouparoo/calculated-property): a property's
`customFunction` (JavaScript with `{{{ key }}}` placeholders) run with Node.js for batches of
records, in a sandbox; the demo-shaped config (plugins/@grouparoo/demo/config: full_name.json)
applied and synced end to end; and a clear error where Node.js is absent."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors import calculated
from connectors.base import ConnectorError, PropertySpec
from core import models as m
from core.config.apply import config_apply
from core.config.validate import config_validate
from core.engine.single import record_import_now
from tests.config.conftest import write_config
from tests.engine.helpers import run_and_send, sync

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
NOW = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def record(**properties: Any) -> dict[str, Any]:
    return {
        "createdAt": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "updatedAt": None,
        "properties": {k: v if isinstance(v, list) else [v] for k, v in properties.items()},
    }


# --- templates ------------------------------------------------------------------------------


def test_placeholders_are_filled_as_grouparoo_rendered_them():
    ada = record(
        firstName="Ada", lastName="O'Hara & <Co>", ltv=900.0, score=1.5, vip=True,
        signedUpAt=datetime(2025, 12, 31, 23, 0, tzinfo=UTC), tags=["a", "b"],
    )  # fmt: skip
    assert calculated.render('() => "{{{ firstName }}} {{{lastName}}}"', ada, NOW) == (
        '() => "Ada O\'Hara & <Co>"'
    )
    assert calculated.render("{{ lastName }}|{{& lastName }}", ada, NOW) == (
        "O&#39;Hara &amp; &lt;Co&gt;|O'Hara & <Co>"
    )
    assert (
        calculated.render("{{{ ltv }}} {{{ score }}} {{{ vip }}} {{{ tags }}}", ada, NOW)
        == "900 1.5 true a, b"
    )
    assert calculated.render(
        "{{{ signedUpAt }}} {{{ signedUpAt.date }}} {{{ signedUpAt.sql }}}", ada, NOW
    ) == ("2025-12-31T23:00:00.000Z 2025-12-31 2025-12-31 23:00:00")
    assert calculated.render(
        "{{{ now.iso }}} {{{ createdAt.time }}} [{{{ updatedAt }}}] [{{{ nope }}}]", ada, NOW
    ) == ("2026-03-04T05:06:07.890Z 03:04:05 [] []")
    assert calculated.template_names('() => "{{{ firstName }}}" + {{ ltv }} + "{{{ now.date }}}"') == [
        "firstName", "ltv", "now.date",
    ]  # fmt: skip


# --- running functions in Node.js --------------------------------------------------------------


@needs_node
def test_functions_run_in_node_and_failures_are_per_call():
    results = calculated.run_functions([
        '() => "Ada" + " " + "Lovelace"',
        "() => 40 + 2",
        "() => undefined",
        "() => [1, 2]",
        "() => { throw new Error('no email') }",
        "() => ",
    ])  # fmt: skip
    assert results[:4] == [(True, "Ada Lovelace"), (True, 42), (True, None), (True, [1, 2])]
    assert results[4] == (False, "no email")
    assert results[5][0] is False


@needs_node
@pytest.mark.parametrize(
    "code",
    [
        "() => typeof require === 'undefined' ? null : require('fs').readFileSync('/etc/hostname', 'utf8')",
        "() => this.constructor.constructor('return process')().env",
        "() => eval('1 + 1')",
        "() => { while (true) {} }",
    ],
)
def test_functions_are_sandboxed(code):
    [(ok, value)] = calculated.run_functions([code])
    assert (ok and value is None) or not ok, value


def test_grouparoos_forbidden_words_are_refused_before_anything_runs():
    source = calculated.CalculatedSource({}, {})
    source.bind_records(_Reader({"1": record(firstName="Ada")}))
    spec = PropertySpec("bad", {"customFunction": "() => process.env.SECRET"})
    with pytest.raises(ConnectorError, match="cannot use process.env"):
        source.aggregate(properties=[spec], key_column="userId", key_property="userId", keys=["1"])


def test_without_node_the_error_says_so(monkeypatch):
    monkeypatch.setattr(calculated.shutil, "which", lambda name: None)
    with pytest.raises(ConnectorError) as raised:
        calculated.run_functions(["() => 1"])
    assert raised.value.permanent
    assert "Node.js" in raised.value.message and "no `node` program" in raised.value.message


class _Reader:
    def __init__(self, records: dict[str, dict[str, Any]]):
        self.records = records

    def keys(self, *, after, limit, equal_to=None):
        return [(i, k) for i, k in enumerate(self.records, 1) if equal_to in (None, k)]

    def count(self):
        return len(self.records)

    def values(self, keys, property_keys):
        return {k: self.records[k] for k in keys if k in self.records}


@needs_node
def test_a_batch_where_every_call_fails_fails_and_a_partial_failure_leaves_no_value(caplog):
    source = calculated.CalculatedSource({}, {})
    source.bind_records(_Reader({"1": record(email="ada@example.com"), "2": record()}))
    domain = PropertySpec(
        "domain", {"customFunction": '() => "{{{ email }}}".split("@")[1].toUpperCase()'}
    )
    out = source.aggregate(
        properties=[domain], key_column="userId", key_property="userId", keys=["1", "2"]
    )
    assert out == {"1": {"domain": "EXAMPLE.COM"}}
    assert "no value for 1 of 2 records" in caplog.text
    broken = PropertySpec("broken", {"customFunction": "() => {{{ email }}}.length"})
    with pytest.raises(ConnectorError, match="'broken' failed for every record of the batch"):
        source.aggregate(
            properties=[broken], key_column="userId", key_property="userId", keys=["1", "2"]
        )


# --- the demo-shaped config, end to end ------------------------------------------------------


def _project(tmp_path, **functions: str) -> tuple[Any, Any]:
    shop = tmp_path / "shop.sqlite3"
    with sqlite3.connect(shop) as conn:
        conn.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT)"
        )
        conn.executemany(
            "INSERT INTO users VALUES (?, ?, ?, ?)",
            [(1, "ada@example.com", "Ada", "Lovelace"), (2, "bob@example.com", "Bob", None)],
        )
    calculated_properties = [
        {"class": "Property", "id": pid, "type": "string", "key": pid.replace("_n", "N"),
         "sourceId": "demo_calculated_property_source", "unique": False, "isArray": False,
         "options": {"customFunction": function}, "filters": []}
        for pid, function in functions.items()
    ]  # fmt: skip
    files = {
        "models/users.json": {"id": "users", "class": "Model", "name": "Users", "type": "profile"},
        "apps/shop.json": {"id": "shop", "class": "App", "name": "Shop", "type": "sqlite",
                           "options": {"file": str(shop)}},
        "shared/apps/demo_calculated_property_app.json": {
            "class": "App", "id": "demo_calculated_property_app", "name": "Demo Calculated Property App",
            "type": "calculated-property", "options": {},
        },
        "users/sources/demo_calculated_property_source.json": {
            "class": "Source", "id": "demo_calculated_property_source", "modelId": "users",
            "name": "Calculated Properties", "type": "calculated-property-import",
            "appId": "demo_calculated_property_app", "options": {},
        },
        "sources/users.json": [
            {"id": "users_table", "class": "Source", "name": "Users", "type": "sqlite-import-table",
             "appId": "shop", "modelId": "users", "options": {"table": "users"}, "mapping": {"id": "user_id"}},
            {"id": "users_schedule", "class": "Schedule", "name": "Users", "sourceId": "users_table",
             "recurring": False, "incremental": False},
        ],
        "properties/users.json": [
            {"id": "user_id", "class": "Property", "key": "userId", "type": "integer", "sourceId": "users_table",
             "unique": True, "options": {"column": "id"}},
            {"id": "email", "class": "Property", "key": "email", "type": "email", "sourceId": "users_table",
             "unique": True, "options": {"column": "email"}},
            {"id": "first_name", "class": "Property", "key": "firstName", "type": "string",
             "sourceId": "users_table", "options": {"column": "first_name"}},
            {"id": "last_name", "class": "Property", "key": "lastName", "type": "string",
             "sourceId": "users_table", "options": {"column": "last_name"}},
        ],
        "users/properties/calculated.json": calculated_properties,
    }  # fmt: skip
    return write_config(tmp_path / "config", files), shop


def _values(key: str) -> dict[str, Any]:
    rows = m.RecordProperty.objects.filter(property__key=key).select_related("record")
    emails = dict(
        m.RecordProperty.objects.filter(property__key="email").values_list("record_id", "raw_value")
    )
    return {emails[row.record_id]: row.value for row in rows}


def _calculate() -> m.Run:
    run = m.Run.objects.get(source__config_id="demo_calculated_property_source", state="pending")
    return run_and_send(run.pk)


@pytest.mark.django_db
@needs_node
def test_grouparoo_demo_calculated_property_applies_and_computes(tmp_path):
    directory, shop = _project(
        tmp_path,
        # As the demo's full_name.json: keys in the placeholders; an id works too.
        full_name='() => "{{{ firstName }}} {{{ lastName }}}"',
        initials='() => "{{& first_name }}".slice(0, 1) + "{{{last_name}}}".slice(0, 1)',
    )
    config = config_validate(directory=directory)
    assert config.problems.errors == []
    config_apply(directory=directory)
    source = m.Source.objects.get(config_id="demo_calculated_property_source")
    assert [(row.remote_key, row.property.key) for row in source.mappings.all()] == [
        ("userId", "userId")
    ]
    stored = m.Property.objects.get(config_id="initials").options["customFunction"]
    assert stored == '() => "{{& firstName }}".slice(0, 1) + "{{{lastName}}}".slice(0, 1)'

    assert sync(m.Schedule.objects.get(config_id="users_schedule")).state == "complete"
    run = _calculate()  # started by the import that changed records
    assert run.state == "complete", run.error
    assert _values("fullName") == {"ada@example.com": "Ada Lovelace", "bob@example.com": "Bob "}
    assert _values("initials") == {"ada@example.com": "AL", "bob@example.com": "B"}

    with sqlite3.connect(shop) as conn:
        conn.execute("UPDATE users SET last_name = 'Builder' WHERE id = 2")
    assert sync(m.Schedule.objects.get(config_id="users_schedule")).state == "complete"
    assert _calculate().state == "complete"
    assert _values("fullName")["bob@example.com"] == "Bob Builder"
    assert not config_apply(directory=directory).changed


@pytest.mark.django_db
@needs_node
def test_importing_one_record_computes_its_calculated_properties(tmp_path):
    directory, _ = _project(tmp_path, full_name='() => "{{{ firstName }}} {{{ lastName }}}"')
    config_apply(directory=directory)
    record_import_now(
        model=m.RecordModel.objects.get(config_id="users"), property_key="userId", value="1"
    )
    assert _values("fullName") == {"ada@example.com": "Ada Lovelace"}


@pytest.mark.django_db
def test_a_calculated_run_without_node_fails_clearly(tmp_path, monkeypatch):
    directory, _ = _project(tmp_path, full_name='() => "{{{ firstName }}}"')
    monkeypatch.setattr(calculated.shutil, "which", lambda name: None)
    config = config_validate(directory=directory)
    assert (
        "no `node` program"
        in {(p.object_id, p.key): p.message for p in config.problems.warnings}[
            ("demo_calculated_property_source", "type")
        ]
    )
    config_apply(directory=directory)
    assert sync(m.Schedule.objects.get(config_id="users_schedule")).state == "complete"
    run = _calculate()
    assert run.state == "failed"
    assert "no `node` program was found on PATH" in run.error


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ('() => "{{{ middleName }}}"', "{{{ middleName }}} names no property of this model"),
        ('() => "{{{ full_name }}}"', "is this property itself"),
        ("async () => 1", "cannot use async in a calculated property"),
    ],
)
def test_a_function_naming_no_property_or_using_what_grouparoo_refused_is_an_error(
    tmp_path, function, message
):
    directory, _ = _project(tmp_path, full_name=function)
    errors = config_validate(directory=directory).problems.errors
    assert any(p.key == "options.customFunction" and message in p.message for p in errors), errors


def test_a_calculated_source_takes_a_schedule_but_no_watermark_column(tmp_path):
    directory, _ = _project(tmp_path, full_name='() => "{{{ firstName }}}"')
    schedule = {"id": "recalculate", "class": "Schedule", "name": "Recalculate", "recurring": True,
                "recurringFrequency": 3600000, "sourceId": "demo_calculated_property_source"}  # fmt: skip
    write_config(directory, {"users/sources/recalculate.json": schedule})
    assert config_validate(directory=directory).problems.errors == []
    schedule["options"] = {"column": "updated_at"}
    write_config(directory, {"users/sources/recalculate.json": schedule})
    [error] = config_validate(directory=directory).problems.errors
    assert (error.object_id, error.key) == ("recalculate", "options.column")
    schedule["options"] = {}
    schedule["filters"] = [{"key": "email", "op": "exists"}]
    write_config(directory, {"users/sources/recalculate.json": schedule})
    [error] = config_validate(directory=directory).problems.errors
    assert (error.object_id, error.key) == ("recalculate", "filters")


@pytest.mark.django_db
def test_an_exported_calculated_source_applies_again_unchanged(tmp_path):
    from tests.config.test_export import _round_trip

    (tmp_path / "project").mkdir()
    directory, _ = _project(
        tmp_path / "project", full_name='() => "{{{ first_name }}} {{{ lastName }}}"'
    )
    config_apply(directory=directory)
    first, second = _round_trip(tmp_path)
    assert first == second
    [source_file] = [
        text for name, text in first.items() if "Calculated" in text and name.startswith("sources/")
    ]
    assert '"mapping"' in source_file
