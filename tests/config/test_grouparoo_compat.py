"""Grouparoo's config files apply unchanged: numbers written as strings, `event` models, literal
API keys and passwords, Grouparoo's setting names, and relative file paths, each in the shapes
Grouparoo 0.9's own configs use (its demo configs, plugins/@grouparoo/demo/config)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from core import models as m
from core.config.apply import config_apply
from core.config.problems import ConfigError
from core.config.validate import config_validate
from core.services.sources import source_preview
from tests.config.conftest import write_config

pytestmark = pytest.mark.django_db


def _shop(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, ltv REAL, "
            "last_purchase_at TEXT, updated_at TEXT)"
        )
        conn.executemany(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
            [
                (1, "ada@example.com", 900.0, "2026-01-05T00:00:00", "2026-01-05T00:00:00"),
                (2, "bob@example.com", 50.0, "2025-01-05T00:00:00", "2026-01-06T00:00:00"),
            ],
        )
    return path


def _files(shop_path: str, **extra: Any) -> dict[str, Any]:
    """A small Grouparoo project: a model, a sqlite app, a table source with its schedule,
    three properties and a group."""
    files: dict[str, Any] = {
        "models/users.json": {"id": "users", "class": "Model", "name": "Users", "type": "profile"},
        "apps/shop.json": {
            "id": "shop", "class": "App", "name": "Shop", "type": "sqlite",
            "options": {"file": shop_path},
        },
        "sources/users.json": [
            {
                "id": "users_table", "class": "Source", "name": "Users table",
                "type": "sqlite-import-table", "appId": "shop", "modelId": "users",
                "options": {"table": "users"}, "mapping": {"id": "user_id"},
            },
            {
                "id": "users_schedule", "class": "Schedule", "name": "Users",
                "sourceId": "users_table", "recurring": True,
                "recurringFrequency": 900000, "options": {"maxColumn": "updated_at"},
            },
        ],
        "properties/users.json": [
            {
                "id": "user_id", "class": "Property", "key": "userId", "type": "integer",
                "sourceId": "users_table", "unique": True, "options": {"column": "id"},
            },
            {
                "id": "ltv", "class": "Property", "key": "ltv", "type": "float",
                "sourceId": "users_table", "options": {"column": "ltv"},
            },
            {
                "id": "last_purchase_date", "class": "Property", "key": "lastPurchaseDate",
                "type": "date", "sourceId": "users_table", "options": {"column": "last_purchase_at"},
            },
        ],
        "groups/high_value.json": {
            "id": "high_value", "class": "Group", "modelId": "users", "name": "High Value",
            "rules": [{"propertyId": "ltv", "op": "gt", "match": "100"}],
        },
    }  # fmt: skip
    files.update(extra)
    return files


def _warnings(config) -> dict[tuple[str | None, str | None], str]:
    return {(p.object_id, p.key): p.message for p in config.problems.warnings}


def _errors(config) -> dict[tuple[str | None, str | None], str]:
    return {(p.object_id, p.key): p.message for p in config.problems.errors}


# --- numbers given as strings ------------------------------------------------------------------


def test_numbers_given_as_strings_are_read_as_numbers(tmp_path):
    shop = _shop(tmp_path / "shop.sqlite3")
    files = _files(str(shop))
    files["sources/users.json"][1]["recurringFrequency"] = "900000"
    files["apps/shop.json"]["refresh"] = {
        "query": "SELECT MAX(updated_at) FROM users",
        "recurringFrequency": "120000",
    }
    files["apps/shop.json"]["options"]["statementTimeout"] = "30"
    # As Grouparoo's demo group high_value_automotive.json, with its number as a string.
    files["groups/recent.json"] = {
        "id": "recent", "class": "Group", "modelId": "users", "name": "Recent High Value",
        "rules": [
            {"propertyId": "ltv", "op": "gt", "match": 100},
            {"propertyId": "user_id", "op": "gte", "match": "1e0"},
            {"propertyId": "last_purchase_date", "op": "relative_gt",
             "relativeMatchNumber": "60", "relativeMatchUnit": "days"},
        ],
    }  # fmt: skip
    files["apps/warehouse.json"] = {
        "id": "warehouse", "class": "App", "name": "Warehouse", "type": "postgres",
        "options": {"host": "db.example.com", "port": "5432", "database": "w", "user": "u"},
    }  # fmt: skip
    files["apps/hooks.json"] = {
        "id": "hooks", "class": "App", "name": "Hooks", "type": "webhook",
        "options": {"url": "https://hooks.example.com/in", "timeout": "2.5", "batchSize": "100"},
    }  # fmt: skip
    directory = write_config(tmp_path / "config", files)

    config = config_validate(directory=directory)
    assert config.problems.errors == []
    config_apply(directory=directory)

    rules = m.GroupRule.objects.filter(group__config_id="recent").order_by("position")
    assert [(r.op, r.match, r.relative_match_number) for r in rules] == [
        ("gt", "100", None),
        ("gte", "1e0", None),
        ("inLast", "", 60),
    ]
    assert m.Schedule.objects.get(config_id="users_schedule").recurring_frequency == 900
    app = m.App.objects.get(config_id="shop")
    assert app.refresh_query.recurring_frequency == 120
    assert app.options["statementTimeout"] == 30
    assert m.App.objects.get(config_id="warehouse").options["port"] == 5432
    assert {
        k: v for k, v in m.App.objects.get(config_id="hooks").options.items() if k != "url"
    } == {
        "timeout": 2.5,
        "batchSize": 100,
    }
    # Stored as numbers, so applying again (or exporting and applying) changes nothing.
    assert not config_apply(directory=directory).changed


@pytest.mark.parametrize(
    ("edit", "object_id", "key"),
    [
        (lambda f: f.update({"apps/warehouse.json": {
            "id": "warehouse", "class": "App", "name": "Warehouse", "type": "postgres",
            "options": {"host": "db.example.com", "port": "fifty", "database": "w", "user": "u"}}}),
         "warehouse", "options.port"),
        (lambda f: f["sources/users.json"][1].update(recurringFrequency="15 minutes"), "users_schedule", "recurringFrequency"),
        (lambda f: f["groups/high_value.json"]["rules"].append(
            {"propertyId": "last_purchase_date", "op": "relative_gt", "relativeMatchNumber": "6.5",
             "relativeMatchUnit": "days"}), "high_value", "rules[1].relativeMatchNumber"),
    ],
)  # fmt: skip
def test_a_string_that_is_no_number_is_an_error_naming_it(tmp_path, edit, object_id, key):
    files = _files("/tmp/shop.sqlite3")
    edit(files)
    config = config_validate(directory=write_config(tmp_path / "config", files))
    assert (object_id, key) in _errors(config)


# --- models, API keys, passwords ----------------------------------------------------------------


def test_an_event_model_applies(tmp_path):
    files = {
        "models/events.json": {"id": "events", "class": "Model", "name": "Events", "type": "event"}
    }
    config_apply(directory=write_config(tmp_path / "config", files))
    assert m.RecordModel.objects.get(config_id="events").type == "event"


GROUPAROO_KEY = "5d2d3d5e7f1c4b0e9a8d6c4b2a0f1e3d"  # the form Grouparoo generated: 32 hex digits


def test_a_literal_grouparoo_api_key_is_stored_hashed_and_works(tmp_path):
    files = {
        "setup/api_key.json": {
            "id": "website_key", "class": "apiKey", "name": "Website Key", "apiKey": GROUPAROO_KEY,
            "options": {"permissionAllRead": True, "permissionAllWrite": False},
        }
    }  # fmt: skip
    directory = write_config(tmp_path / "config", files)
    config = config_validate(directory=directory)
    assert config.problems.errors == []
    assert "rotate it" in _warnings(config)[("website_key", "apiKey")]

    result = config_apply(directory=directory)
    assert result.api_keys == {}  # nothing minted: the file's key is used
    key = m.ApiKey.objects.get(config_id="website_key")
    assert GROUPAROO_KEY not in (key.prefix + key.hashed_key)
    assert key.prefix.startswith("gr-")
    client = Client()
    assert client.get("/api/v1/models/", HTTP_X_API_KEY=GROUPAROO_KEY).status_code == 200
    bearer = f"Bearer {GROUPAROO_KEY}"
    assert client.get("/api/v1/models/", HTTP_AUTHORIZATION=bearer).status_code == 200
    assert client.get("/api/v1/models/", HTTP_X_API_KEY=GROUPAROO_KEY[:-1] + "0").status_code == 401
    assert not config_apply(directory=directory).changed


def test_a_literal_team_member_password_is_hashed_with_a_warning(tmp_path):
    # As Grouparoo's demo config setup/team.json.
    files = {
        "setup/team.json": [
            {"id": "admin_team", "name": "Admin Team", "class": "team",
             "options": {"permissionAllRead": True, "permissionAllWrite": True}},
            {"id": "demo", "email": "demo@example.com", "teamId": "admin_team", "class": "teamMember",
             "options": {"firstName": "Example", "lastName": "Person", "password": "password"}},
        ]
    }  # fmt: skip
    directory = write_config(tmp_path / "config", files)
    config = config_validate(directory=directory)
    assert "env:NAME" in _warnings(config)[("demo", "options.password")]
    config_apply(directory=directory)
    user = User.objects.get(username="demo@example.com")
    assert user.check_password("password")
    assert "password" not in user.password
    assert not config_apply(directory=directory).changed


# --- Grouparoo's settings -----------------------------------------------------------------------

# Every setting Grouparoo 0.9 registered (core/src/modules/ops/setting.ts): plugin, key, a value.
GROUPAROO_SETTINGS = [
    ("core", "cluster-name", "My Grouparoo Cluster"),
    ("core", "groups-calculation-delay-minutes", 1440),
    ("core", "runs-recurring-internal-run-frequency-hours", 0),
    ("core", "imports-retry-delay-seconds", 1800),
    ("core", "runs-previous-can-include-errors", "false"),
    ("core", "exports-retry-delay-seconds", 1800),
    ("core", "exports-max-retries-count", 7),
    ("core", "export-processors-retry-delay-seconds", 1800),
    ("core", "export-processors-max-retries-count", 10),
    ("core", "records-default-country-code", "GB"),
    ("core", "confirm-records-days", 7),
    ("core", "sweeper-delete-old-runs-days", 31),
    ("core", "sweeper-delete-old-imports-days", 31),
    ("core", "sweeper-delete-old-logs-days", 7),
    ("interface", "status-calculation-frequency-seconds", 10),
    ("telemetry", "customer-id", "tcs_0000"),
]


def _setting_files(settings: list[tuple[str, str, Any]]) -> dict[str, Any]:
    return {
        "settings.json": [
            {"id": f"s_{key}", "class": "Setting", "pluginName": plugin, "key": key, "value": value}
            for plugin, key, value in settings
        ]
    }


def test_grouparoo_settings_map_onto_ours_or_are_skipped_by_name(tmp_path):
    directory = write_config(tmp_path / "config", _setting_files(GROUPAROO_SETTINGS))
    config = config_validate(directory=directory)
    assert config.problems.errors == []
    warnings = _warnings(config)
    for plugin, key, _ in GROUPAROO_SETTINGS:
        if key == "records-default-country-code":
            continue  # the same name here
        message = warnings[(f"s_{key}", "key")]
        assert f"Grouparoo's setting {plugin}.{key}" in message
        assert "unknown setting" not in message
    config_apply(directory=directory)
    stored = {
        (s.plugin, s.key): s.value for s in m.Setting.objects.filter(config_id__startswith="s_")
    }
    assert stored == {
        ("core", "groups-relative-recompute-minutes"): "1440",
        ("core", "runs-lease-seconds"): "1800",
        ("core", "exports-max-attempts"): "7",
        ("core", "records-default-country-code"): "GB",
    }
    assert not config_apply(directory=directory).changed


def test_a_mapped_grouparoo_setting_keeps_our_bounds(tmp_path):
    settings = [("core", "exports-max-retries-count", 50)]
    config = config_validate(directory=write_config(tmp_path / "config", _setting_files(settings)))
    assert "whole number from 1 to 20" in _errors(config)[("s_exports-max-retries-count", "value")]


def test_the_default_country_code_is_two_capital_letters(tmp_path):
    settings = [("core", "records-default-country-code", "United Kingdom")]
    config = config_validate(directory=write_config(tmp_path / "config", _setting_files(settings)))
    assert "two-letter country code" in _errors(config)[("s_records-default-country-code", "value")]


def test_two_grouparoo_settings_for_one_of_ours_must_agree(tmp_path):
    settings = [
        ("core", "imports-retry-delay-seconds", 1800),
        ("core", "exports-retry-delay-seconds", 600),
    ]
    directory = write_config(tmp_path / "config", _setting_files(settings))
    with pytest.raises(ConfigError) as raised:
        config_apply(directory=directory)
    [problem] = raised.value.problems
    assert (problem.object_id, problem.key) == ("s_exports-retry-delay-seconds", "key")
    assert "runs-lease-seconds" in problem.message


# --- relative file paths ------------------------------------------------------------------------


def test_a_relative_sqlite_file_is_read_from_the_project_directory(tmp_path, monkeypatch):
    project = tmp_path / "project"
    shop = _shop(project / "data" / "shop.sqlite3")
    directory = write_config(project / "config", _files("data/shop.sqlite3"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the server's working directory plays no part

    config_apply(directory=directory)
    source = m.Source.objects.get(config_id="users_table")
    assert source.app.options["path"] == str(shop)
    assert [r["email"] for r in source_preview(source=source)] == [
        "ada@example.com",
        "bob@example.com",
    ]
    assert not config_apply(directory=directory).changed


def test_grouparoo_parent_path_says_where_the_project_is(tmp_path, monkeypatch):
    project = tmp_path / "project"
    shop = _shop(project / "shop.sqlite3")
    directory = write_config(tmp_path / "configs" / "production", _files("./shop.sqlite3"))
    monkeypatch.setenv("GROUPAROO_PARENT_PATH", str(project))
    config = config_validate(directory=directory)
    assert config.get("app", "shop").data["options"]["path"] == str(shop)


def test_csv_paths_are_relative_to_the_project_unless_the_app_has_a_base_directory(tmp_path):
    project = tmp_path / "project"
    files = {
        "models/users.json": {"id": "users", "class": "Model", "name": "Users"},
        "apps/csv.json": [
            {"id": "files", "class": "App", "name": "Files", "type": "csv"},
            {"id": "based", "class": "App", "name": "Based", "type": "csv",
             "options": {"baseDirectory": "exports"}},
        ],
        "sources/people.json": {
            "id": "people", "class": "Source", "name": "People", "type": "csv-file", "appId": "files",
            "modelId": "users", "options": {"path": "data/people.csv"}, "mapping": {"id": "person_id"},
        },
        "properties/person_id.json": {
            "id": "person_id", "class": "Property", "key": "personId", "type": "integer",
            "sourceId": "people", "unique": True, "options": {"column": "id"},
        },
        "destinations/out.json": {
            "id": "out", "class": "Destination", "name": "Out", "type": "csv-export", "appId": "based",
            "modelId": "users", "collection": "model",
            "options": {"path": "people.csv", "primaryKey": "id"}, "mapping": {"id": "person_id"},
        },
    }  # fmt: skip
    config = config_validate(directory=write_config(project / "config", files))
    assert config.problems.errors == []
    assert config.get("source", "people").data["options"]["path"] == os.path.join(
        project, "data/people.csv"
    )
    assert config.get("app", "based").data["options"]["baseDirectory"] == os.path.join(
        project, "exports"
    )
    assert config.get("destination", "out").data["options"]["path"] == "people.csv"
