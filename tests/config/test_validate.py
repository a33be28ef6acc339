"""`validate`: the fixtures pass (with the warnings Grouparoo 0.9 gave too), and every kind of
error names its file, object id and key."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core import models as m
from core.config.validate import config_validate
from tests.config.conftest import FIXTURES, write_config


@pytest.fixture
def fixture_env(monkeypatch):
    monkeypatch.setenv("SHOP_DB_PATH", "/tmp/shop.sqlite3")
    monkeypatch.setenv("GROUPAROO_OPTION__APP__CRM_DB_PATH", "/tmp/crm.sqlite3")
    monkeypatch.setenv("DEMO_PASSWORD", "x")
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "x")
    monkeypatch.setenv("SYNC_BOT_KEY", "grp_abcd1234.secret-secret")


def _keys(config, level: str = "warning") -> set[tuple[str, str | None, str]]:
    items = config.problems.warnings if level == "warning" else config.problems.errors
    return {(p.file, p.object_id, p.key) for p in items}


def test_the_sqlite_fixture_is_valid_with_grouparoo_warnings(fixture_env):
    config = config_validate(directory=FIXTURES / "sqlite_shop")
    assert config.problems.errors == []
    assert _keys(config) >= {
        ("properties/email.json", "email", "identifying"),  # tolerated with a warning
        ("groups/high_value.json", "high_value", "type"),  # tolerated with a warning
        ("properties/purchases.json", "large_purchases", "filters[0].op"),  # "greater than"
        ("sources/users.json", "users_schedule", "filters[0].op"),  # "does not equal"
        ("apps/shop.json", "shop_db", "options.file"),  # Grouparoo's sqlite option name
        ("sources/user_queries.json", "user_queries", "mapping"),  # inferred from {{{ }}}
    }


def test_the_postgres_fixture_is_valid(fixture_env):
    config = config_validate(directory=FIXTURES / "postgres_warehouse", allow_js=True)
    assert config.problems.errors == []
    assert _keys(config) >= {
        ("sources/users.json", "users_table_schedule", "confirmProfiles"),
        ("groups/groups.json", "renewing_soon", "rules[1].op"),  # iLike '%@example.com'
        ("groups/groups.json", "big_spenders", "rules[1].op"),  # "greater than"
        ("team/team.json", "ana", "options.password"),  # a clear password: use env:
        ("team/team.json", "analysts", "permissions[1].topic"),  # "notification"
        ("settings.json", "setting_cluster_name", "key"),  # Grouparoo's, meaning nothing here
    }
    specs = {(s.cls, s.id): s for s in config.specs}
    assert specs[("source", "users_table")].data["is_primary"] is True
    assert specs[("property", "user_id")].data["is_primary_key"] is True
    assert specs[("source", "events_query")].data["is_primary"] is False
    assert specs[("schedule", "users_table_schedule")].data["recurring_frequency"] == 900
    assert specs[("schedule", "users_table_schedule")].data["confirm_records"] is True
    # {{{ userId }}} (a key, as Grouparoo wrote it) and {{ user_id }} (an id) both become the key.
    assert "{{{ userId }}}" in specs[("property", "event_count")].data["options"]["query"]
    assert "{{ userId }}" in specs[("property", "pages_viewed")].data["options"]["query"]
    rules = specs[("group", "renewing_soon")].data["rules"]
    assert [r["op"] for r in rules] == ["inNext", "endsWith"]
    assert specs[("group", "new_users")].data["rules"][0]["op"] == "inLast"
    app = specs[("app", "data_warehouse")].data
    assert app["secret_options"] == {"password": "env:WAREHOUSE_PASSWORD"}
    assert "ssl" not in app["options"]


@pytest.mark.django_db
def test_validate_changes_nothing(fixture_env):
    before = (m.RecordModel.objects.count(), m.App.objects.count(), m.Setting.objects.count())
    call_command("validate", str(FIXTURES / "postgres_warehouse"), "--allow-js")
    assert (
        m.RecordModel.objects.count(),
        m.App.objects.count(),
        m.Setting.objects.count(),
    ) == before


# --- every kind of error -------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "models/users.json": {"id": "users", "class": "Model", "name": "Users", "type": "profile"},
    "apps/db.json": {"id": "db", "class": "App", "name": "DB", "type": "sqlite", "options": {"path": "/tmp/x.db"}},
    "sources/users.json": [
        {
            "id": "users_table",
            "class": "Source",
            "name": "Users",
            "type": "sqlite-import-table",
            "appId": "db",
            "modelId": "users",
            "options": {"table": "users"},
            "mapping": {"id": "user_id"},
        },
        {
            "id": "users_schedule",
            "class": "Schedule",
            "name": "Users",
            "sourceId": "users_table",
            "recurring": True,
            "recurringFrequency": 900000,
            "options": {"column": "updated_at"},
        },
    ],
    "sources/queries.json": {
        "id": "queries",
        "class": "Source",
        "name": "Queries",
        "type": "sqlite-import-query",
        "appId": "db",
        "modelId": "users",
        "options": {"query": "SELECT id FROM users"},
        "mapping": {"id": "user_id"},
    },
    "properties/user_id.json": {
        "id": "user_id", "class": "Property", "key": "userId", "type": "integer",
        "sourceId": "users_table", "unique": True, "options": {"column": "id"},
    },
    "properties/email.json": {
        "id": "email", "class": "Property", "key": "email", "type": "email",
        "sourceId": "users_table", "unique": True, "options": {"column": "email"},
    },
    "properties/ltv.json": {
        "id": "ltv", "class": "Property", "key": "ltv", "type": "float",
        "sourceId": "users_table", "options": {"column": "ltv"},
    },
    "properties/visits.json": {
        "id": "visits", "class": "Property", "key": "visits", "type": "integer", "sourceId": "queries",
        "options": {"query": "SELECT COUNT(*) FROM visits WHERE user_id = {{{ user_id }}}"},
    },
    "groups/rich.json": {
        "id": "rich", "class": "Group", "name": "Rich", "modelId": "users",
        "rules": [{"propertyId": "ltv", "op": "gt", "match": "100"}],
    },
    "destinations/crm.json": {
        "id": "crm", "class": "Destination", "name": "CRM", "type": "sqlite-export-records",
        "appId": "db", "modelId": "users", "collection": "model", "syncMode": "sync",
        "options": {"table": "crm", "primaryKey": "id"},
        "mapping": {"id": "user_id"}, "destinationGroupMemberships": {"rich": "rich"},
    },
    "access.json": [
        {"id": "key", "class": "ApiKey", "name": "Key", "permissions": [{"topic": "record", "read": True}]},
        {"id": "team", "class": "Team", "name": "Team"},
        {"id": "member", "class": "TeamMember", "teamId": "team", "email": "a@example.com"},
    ],
}  # fmt: skip


def _edit(files: dict[str, Any], path: str, index: int | None = None) -> dict[str, Any]:
    content = files[path]
    return content[index] if index is not None else content


def _case(change, file, object_id, key, text):
    return pytest.param(change, file, object_id, key, text, id=f"{object_id}:{key}:{text[:30]}")


def _set(path, index, **values):
    def change(files):
        _edit(files, path, index).update(values)

    return change


def _pop(path, index, key):
    def change(files):
        _edit(files, path, index).pop(key)

    return change


def _add(path, obj):
    def change(files):
        files[path] = obj

    return change


def _rule(**values):
    def change(files):
        files["groups/rich.json"]["rules"][0] = {"propertyId": "ltv", **values}

    return change


def _two(*changes):
    def change(files):
        for c in changes:
            c(files)

    return change


ERRORS = [
    _case(
        _add("x.json", {"id": "w", "class": "Widget"}),
        "x.json",
        "w",
        "class",
        "unknown class 'Widget'",
    ),
    _case(_add("x.json", {"id": "w"}), "x.json", "w", "class", "is required"),
    _case(
        _set("apps/db.json", None, colour="red"),
        "apps/db.json",
        "db",
        "colour",
        "is not a key of a App",
    ),
    _case(
        _pop("properties/ltv.json", None, "id"), "properties/ltv.json", None, "id", "is required"
    ),
    _case(
        _add("models/zz_again.json", {"id": "users", "class": "model", "name": "Again"}),
        "models/zz_again.json",
        "users",
        "id",
        'duplicate Model id "users" (also in models/users.json)',
    ),
    _case(
        _set("properties/ltv.json", None, sourceId="nope"),
        "properties/ltv.json",
        "ltv",
        "sourceId",
        'references Source "nope", which no config file defines',
    ),
    _case(
        _set("sources/users.json", 0, mapping={"id": "missing"}),
        "sources/users.json",
        "users_table",
        "mapping.id",
        'references Property "missing"',
    ),
    _case(
        _set("destinations/crm.json", None, destinationGroupMemberships={"VIP": "vips"}),
        "destinations/crm.json",
        "crm",
        "destinationGroupMemberships.VIP",
        'references Group "vips"',
    ),
    _case(
        _rule(op="gt", match="1", propertyId="nope"),
        "groups/rich.json",
        "rich",
        "rules[0].propertyId",
        'references Property "nope"',
    ),
    _case(
        _two(
            _add(
                "sources/a.json",
                {
                    "id": "a",
                    "class": "Source",
                    "name": "A",
                    "type": "sqlite-table",
                    "appId": "db",
                    "modelId": "users",
                    "options": {"table": "a"},
                    "mapping": {"b_key": "b_key"},
                },
            ),
            _add(
                "sources/b.json",
                {
                    "id": "b",
                    "class": "Source",
                    "name": "B",
                    "type": "sqlite-table",
                    "appId": "db",
                    "modelId": "users",
                    "options": {"table": "b"},
                    "mapping": {"a_key": "a_key"},
                },
            ),
            _add(
                "properties/ab.json",
                [
                    {
                        "id": "a_key",
                        "class": "Property",
                        "key": "aKey",
                        "type": "string",
                        "sourceId": "a",
                        "unique": True,
                        "options": {"column": "k"},
                    },
                    {
                        "id": "b_key",
                        "class": "Property",
                        "key": "bKey",
                        "type": "string",
                        "sourceId": "b",
                        "unique": True,
                        "options": {"column": "k"},
                    },
                ],
            ),
        ),
        "properties/ab.json",
        "a_key",
        "sourceId",
        'dependency cycle: Property "a_key" (sourceId) → Source "a" (mapping.b_key) → Property "b_key"',
    ),
    _case(
        _set("sources/users.json", 0, options={}),
        "sources/users.json",
        "users_table",
        "options.table",
        "Table is required",
    ),
    _case(
        _set("sources/users.json", 0, options={"table": "u", "bogus": 1}),
        "sources/users.json",
        "users_table",
        "options.bogus",
        "Unknown option 'bogus'",
    ),
    _case(
        _set("apps/db.json", None, options={}),
        "apps/db.json",
        "db",
        "options.path",
        "Database file is required",
    ),
    _case(
        _set("apps/db.json", None, type="oracle"),
        "apps/db.json",
        "db",
        "type",
        "Unknown app type 'oracle'",
    ),
    _case(
        _set("sources/users.json", 0, type="postgres-import-table"),
        "sources/users.json",
        "users_table",
        "type",
        "needs a postgres app",
    ),
    _case(
        _rule(op="isAround", match="1"),
        "groups/rich.json",
        "rich",
        "rules[0].op",
        "unknown rule operation 'isAround'",
    ),
    _case(
        _rule(op="substring", match="1"),
        "groups/rich.json",
        "rich",
        "rules[0].op",
        "'substring' does not suit property \"ltv\"",
    ),
    _case(
        _rule(op="gt", match="lots"),
        "groups/rich.json",
        "rich",
        "rules[0].match",
        "does not suit this float property",
    ),
    _case(
        _rule(
            op="relative_gt",
            relativeMatchNumber=3,
            relativeMatchUnit="days",
            relativeMatchDirection="add",
        ),
        "groups/rich.json",
        "rich",
        "rules[0].relativeMatchDirection",
        "'in the last N' is relative_gt with 'subtract'",
    ),
    _case(
        _set("sources/users.json", 1, recurringFrequency=30000),
        "sources/users.json",
        "users_schedule",
        "recurringFrequency",
        "must be at least one minute",
    ),
    _case(
        _set("sources/users.json", 1, options={"query": "SELECT 1", "propertyId": "email"}),
        "sources/users.json",
        "users_schedule",
        "options.query",
        "query schedules are not supported",
    ),
    _case(
        _set("apps/db.json", None, options={"path": "env:NOT_SET_ANYWHERE"}),
        "apps/db.json",
        "db",
        "options.path",
        "environment variable NOT_SET_ANYWHERE is not set",
    ),
    _case(
        _set("sources/queries.json", None, mapping={"id": "ltv"}),
        "sources/queries.json",
        "queries",
        "mapping.id",
        'needs to be set as "unique: true"',
    ),
    _case(
        _two(
            _add(
                "sources/other.json",
                {
                    "id": "other",
                    "class": "Source",
                    "name": "Other",
                    "type": "sqlite-table",
                    "appId": "db",
                    "modelId": "users",
                    "options": {"table": "o"},
                    "mapping": {"id": "other_id"},
                },
            ),
            _add(
                "properties/other_id.json",
                {
                    "id": "other_id",
                    "class": "Property",
                    "key": "otherId",
                    "type": "integer",
                    "sourceId": "other",
                    "unique": True,
                    "options": {"column": "id"},
                },
            ),
        ),
        "sources/users.json",
        "users_table",
        "mapping.id",
        'model "users" already has a primary source, "other" (sources/other.json)',
    ),
    _case(
        _set("sources/queries.json", None, name="Users"),
        "sources/users.json",
        "users_table",
        "name",
        "Source \"queries\" (sources/queries.json) already has name 'Users'",
    ),
    _case(
        _set(
            "properties/visits.json", None, options={"query": "SELECT 1 WHERE {{{ nobody }}} = 1"}
        ),
        "properties/visits.json",
        "visits",
        "options.query",
        "{{{ nobody }}} names no property",
    ),
    _case(
        _set("properties/visits.json", None, options={"query": "SELECT 1 WHERE {{{ email }}} = 1"}),
        "properties/visits.json",
        "visits",
        "options.query",
        "only the property the source is mapped by",
    ),
    _case(
        _set("sources/queries.json", None, options={"query": "SELECT {{{ user_id }}}"}),
        "sources/queries.json",
        "queries",
        "options.query",
        "a source query cannot use",
    ),
    _case(
        _set("groups/rich.json", None, type="manual"),
        "groups/rich.json",
        "rich",
        "type",
        "manual groups are not supported",
    ),
    _case(
        _set("destinations/crm.json", None, syncMode="mirror"),
        "destinations/crm.json",
        "crm",
        "syncMode",
        "unknown sync mode",
    ),
    _case(
        _set("destinations/crm.json", None, collection="group"),
        "destinations/crm.json",
        "crm",
        "groupId",
        "is required when the collection is 'group'",
    ),
    _case(
        _set("access.json", 0, apiKey="abc 123"),
        "access.json",
        "key",
        "apiKey",
        "must not contain spaces",
    ),
    _case(
        _set("access.json", 0, permissions=[{"topic": "everything", "read": True}]),
        "access.json",
        "key",
        "permissions[0].topic",
        "unknown topic 'everything'",
    ),
    _case(
        _set("access.json", 2, teamId="nobody"),
        "access.json",
        "member",
        "teamId",
        'references Team "nobody"',
    ),
    _case(
        _set("properties/ltv.json", None, options={"column": "ltv", "aggregationMethod": "median"}),
        "properties/ltv.json",
        "ltv",
        "options.aggregationMethod",
        "unknown aggregation method 'median'",
    ),
    _case(
        _set(
            "properties/ltv.json",
            None,
            options={"column": "ltv", "aggregationMethod": "most recent value"},
        ),
        "properties/ltv.json",
        "ltv",
        "options.sortColumn",
        "is required with the aggregation method",
    ),
    _case(
        _set("properties/visits.json", None, filters=[{"key": "x", "op": "eq", "match": "1"}]),
        "properties/visits.json",
        "visits",
        "filters",
        "query properties take no filters",
    ),
    _case(
        _set("properties/ltv.json", None, filters=[{"key": "x", "op": "roughly", "match": "1"}]),
        "properties/ltv.json",
        "ltv",
        "filters[0].op",
        "unknown filter operation 'roughly'",
    ),
    _case(
        _set("properties/ltv.json", None, type="money"),
        "properties/ltv.json",
        "ltv",
        "type",
        "unknown property type 'money'",
    ),
    _case(
        _set("properties/ltv.json", None, unique=True, isArray=True),
        "properties/ltv.json",
        "ltv",
        "isArray",
        "a unique property cannot be an array",
    ),
    _case(
        _set("models/users.json", None, type="person"),
        "models/users.json",
        "users",
        "type",
        "unknown model type 'person'",
    ),
    _case(
        _set("access.json", 2, email="not-an-email"),
        "access.json",
        "member",
        "email",
        "is not an email address",
    ),
    _case(
        _add(
            "settings.json",
            {
                "id": "s",
                "class": "Setting",
                "pluginName": "core",
                "key": "exports-max-attempts",
                "value": "many",
            },
        ),
        "settings.json",
        "s",
        "value",
        "must be a whole number from 1 to 20",
    ),
    _case(
        _set("sources/users.json", 1, cron="every tuesday"),
        "sources/users.json",
        "users_schedule",
        "cron",
        "is not a valid cron expression",
    ),
]


@pytest.mark.parametrize(("change", "file", "object_id", "key", "text"), ERRORS)
def test_each_error_names_file_id_and_key(tmp_path, change, file, object_id, key, text):
    files = copy.deepcopy(BASE)
    assert config_validate(directory=write_config(tmp_path / "base", files)).ok
    change(files)
    config = config_validate(directory=write_config(tmp_path / "changed", files))
    found = [
        p for p in config.problems.errors if (p.file, p.object_id, p.key) == (file, object_id, key)
    ]
    assert found, [str(p) for p in config.problems.errors]
    assert any(text in p.message for p in found), [str(p) for p in found]
    assert text in str(found[0]) or any(text in str(p) for p in found)


def test_the_command_prints_errors_and_exits_non_zero(tmp_path, capsys):
    files = copy.deepcopy(BASE)
    files["properties/ltv.json"]["sourceId"] = "nope"
    write_config(tmp_path, files)
    with pytest.raises(CommandError, match="invalid: 11 file"):
        call_command("validate", str(tmp_path))
    err = capsys.readouterr().err
    assert 'error: properties/ltv.json: Property "ltv": sourceId: references Source "nope"' in err


def test_the_command_succeeds_on_valid_files(tmp_path, capsys):
    write_config(tmp_path, copy.deepcopy(BASE))
    call_command("validate", str(tmp_path))
    assert "valid: 11 file(s), 14 object(s), 0 error(s)" in capsys.readouterr().out


def test_sample_records_are_skipped_with_a_warning(tmp_path):
    write_config(
        tmp_path,
        {
            "records.json": [
                {"id": "rec_1", "class": "Record", "modelId": "users", "properties": {"id": [1]}},
                {"id": "pro_1", "class": "profile", "properties": {"id": [2]}},
            ]
        },
    )
    config = config_validate(directory=tmp_path)
    assert config.ok and config.specs == []
    assert {(p.object_id, p.key) for p in config.problems.warnings} == {
        ("rec_1", "class"),
        ("pro_1", "class"),
    }


def test_an_unset_secret_variable_is_a_warning_and_a_clear_secret_too(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_PASSWORD", raising=False)
    app = {
        "class": "App",
        "name": "W",
        "type": "postgres",
        "options": {"database": "w", "user": "u"},
    }
    write_config(
        tmp_path,
        {
            "a.json": {
                **app,
                "id": "a",
                "options": {**app["options"], "password": "env:NOT_SET_PASSWORD"},
            },
            "b.json": {
                **app,
                "id": "b",
                "name": "W2",
                "options": {**app["options"], "password": "hunter2"},
            },
        },
    )
    config = config_validate(directory=tmp_path)
    assert config.ok
    warnings = {(p.object_id, p.key): p.message for p in config.problems.warnings}
    assert "NOT_SET_PASSWORD is not set here" in warnings[("a", "options.password")]
    assert "a secret written in clear" in warnings[("b", "options.password")]
    assert "not set; using the connector's default 'localhost'" in warnings[("a", "options.host")]
    assert config.get("app", "a").data["secret_options"] == {"password": "env:NOT_SET_PASSWORD"}
