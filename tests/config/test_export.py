"""`config_export`: the database's configuration as files. Export, apply on an empty database,
export again: the two exports are identical. Secrets never reach the files."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from core import models as m
from core.config.apply import config_apply
from core.config.export import config_export
from core.config.validate import config_validate
from core.demo import demo_load
from tests.config.conftest import FIXTURES

pytestmark = pytest.mark.django_db

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


def wipe_configuration() -> None:
    """Empty the application database of every configuration object (as a fresh install)."""
    from core.settings_registry import DEFAULTS

    for model in (m.Run, m.Export, m.Import, m.Record, m.Destination, m.Group, m.Schedule):
        model.objects.all().delete()
    m.SourceMapping.objects.all().delete()
    m.Property.objects.all().delete()
    m.Source.objects.all().delete()
    m.App.objects.all().delete()
    m.RecordModel.objects.all().delete()
    m.ApiKey.objects.all().delete()
    m.Setting.objects.filter(plugin__startswith="config:").delete()
    m.Setting.objects.exclude(plugin="core", key__in=[d.key for d in DEFAULTS]).delete()
    for default in DEFAULTS:
        m.Setting.objects.filter(plugin="core", key=default.key).update(
            value=default.default, config_id="", locked_by=""
        )
    AuthGroup.objects.all().delete()
    User.objects.all().delete()


def _files(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): p.read_text()
        for p in sorted(directory.rglob("*.json"))
    }


def _round_trip(tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    first = config_export(directory=tmp_path / "first")
    assert config_validate(directory=tmp_path / "first").ok
    wipe_configuration()
    config_apply(directory=tmp_path / "first")
    second = config_export(directory=tmp_path / "second")
    assert first.files == second.files
    return _files(tmp_path / "first"), _files(tmp_path / "second")


@needs_node
def test_round_trip_of_the_postgres_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "pw")
    monkeypatch.setenv("GROUPAROO_OPTION__APP__MARKETING_PASSWORD", "pw2")
    monkeypatch.setenv("SYNC_BOT_KEY", "grp_abcd1234.bot-secret")
    config_apply(directory=FIXTURES / "postgres_warehouse", allow_js=True)
    first, second = _round_trip(tmp_path)
    assert first == second
    assert not filecmp.dircmp(tmp_path / "first", tmp_path / "second").diff_files
    source = json.loads(first["sources/users_table.json"])
    assert [o["class"] for o in source] == ["Source", "Schedule"]
    assert source[0]["mapping"] == {"id": "user_id"}
    assert source[1]["recurringFrequency"] == 900000
    prop = json.loads(first["properties/event_count.json"])
    assert prop["options"]["query"] == "SELECT COUNT(*) FROM events WHERE user_id = {{{ user_id }}}"
    group = json.loads(first["groups/new_users.json"])
    assert group["rules"][0] == {
        "propertyId": "signed_up_at", "op": "relative_gt", "relativeMatchNumber": 30,
        "relativeMatchUnit": "days", "relativeMatchDirection": "subtract",
    }  # fmt: skip
    team = json.loads(first["teams/admin_team.json"])
    assert [o["class"] for o in team] == ["Team", "TeamMember"]
    assert "apiKey" not in json.loads(first["apiKeys/sync_bot.json"])


def test_round_trip_of_the_sqlite_fixture(tmp_path, shop_files):
    config_apply(directory=FIXTURES / "sqlite_shop")
    first, second = _round_trip(tmp_path)
    assert first == second
    prop = json.loads(first["properties/last_purchase_at.json"])
    assert prop["options"]["aggregationMethod"] == "most recent value"
    assert json.loads(first["apps/shop_db.json"])["options"] == {"path": str(shop_files.shop)}


def test_round_trip_of_a_configuration_made_without_files(tmp_path):
    demo_load(directory=tmp_path / "demo")
    first, second = _round_trip(tmp_path)
    assert first == second
    assert "models/customers.json" in first
    assert "sources/users.json" in first
    prop = json.loads(first["properties/first_purchase_at.json"])
    assert "{{{ user_id }}}" in prop["options"]["query"]


def test_secrets_are_written_as_env_references(tmp_path, capsys):
    m.App.objects.create(
        name="Warehouse",
        type="postgres",
        options={"host": "db", "database": "w", "user": "u"},
        secret_options={"password": "hunter2-literal"},
    )
    call_command("config_export", str(tmp_path / "out"))
    out = capsys.readouterr().out
    text = (tmp_path / "out/apps/warehouse.json").read_text()
    assert "hunter2-literal" not in text
    assert json.loads(text)["options"]["password"] == "env:APP_WAREHOUSE_PASSWORD"
    assert "set APP_WAREHOUSE_PASSWORD where the server runs" in out


def test_export_refuses_a_directory_with_config_files(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(CommandError, match="already holds config files"):
        call_command("config_export", str(tmp_path))
    call_command("config_export", str(tmp_path), "--force")


def test_only_changed_or_managed_settings_are_exported(tmp_path):
    m.Setting.objects.filter(key="runs-lease-seconds").update(value="600")
    result = config_export(directory=tmp_path)
    assert result.files == ["settings/core_runs-lease-seconds.json"]
    assert json.loads((tmp_path / result.files[0]).read_text()) == {
        "class": "Setting", "id": "core_runs-lease-seconds", "pluginName": "core",
        "key": "runs-lease-seconds", "value": "600",
    }  # fmt: skip
