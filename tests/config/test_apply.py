"""`apply`: the files become database objects (locked, with their config ids), re-applying is a
no-op, `--plan` changes nothing, removed objects are deleted, and a failure leaves the database
as it was."""

from __future__ import annotations

import json
import shutil

import pytest
from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from core import models as m
from core.choices import RunCreator
from core.config.apply import config_apply
from core.config.problems import ConfigError
from core.services.api_keys import api_key_hash
from tests.config.conftest import FIXTURES, write_config

pytestmark = pytest.mark.django_db

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
SYNC_BOT_KEY = "grp_abcd1234.the-sync-bot-secret"


@pytest.fixture
def warehouse_env(monkeypatch):
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "warehouse-pw")
    monkeypatch.setenv("GROUPAROO_OPTION__APP__MARKETING_PASSWORD", "marketing-pw")
    monkeypatch.setenv("SYNC_BOT_KEY", SYNC_BOT_KEY)


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            m.RecordModel, m.App, m.Source, m.Property, m.Schedule, m.Group, m.GroupRule,
            m.Destination, m.DestinationMapping, m.ApiKey, m.SourceMapping, AuthGroup, User, m.Run,
        )
    }  # fmt: skip


@needs_node
def test_the_postgres_fixture_applies(warehouse_env):
    result = config_apply(directory=FIXTURES / "postgres_warehouse", allow_js=True)
    assert result.applied

    users = m.RecordModel.objects.get(config_id="users")
    assert users.locked_by == "models/users.json"
    accounts = m.RecordModel.objects.get(config_id="accounts")  # from a .js file
    assert (accounts.name, accounts.type, accounts.locked_by) == (
        "Accounts",
        "account",
        "models/accounts.js",
    )

    warehouse = m.App.objects.get(config_id="data_warehouse")
    assert warehouse.type == "postgres"
    assert warehouse.options == {
        "host": "127.0.0.1", "port": 5432, "database": "warehouse", "schema": "public", "user": "grouparoo",
    }  # fmt: skip
    assert warehouse.secret_options == {"password": "env:WAREHOUSE_PASSWORD"}
    assert warehouse.refresh_query.recurring_frequency == 90
    marketing = m.App.objects.get(config_id="marketing_db")
    # GROUPAROO_OPTION__APP__MARKETING_PASSWORD is read at connect time, never stored.
    assert marketing.secret_options == {"password": "env:GROUPAROO_OPTION__APP__MARKETING_PASSWORD"}
    assert marketing.connector_options()["password"] == "marketing-pw"

    users_table = m.Source.objects.get(config_id="users_table")
    assert (users_table.type, users_table.is_primary) == ("postgres-table", True)
    assert m.Source.objects.get(config_id="events_query").is_primary is False
    user_id = m.Property.objects.get(config_id="user_id")
    assert (user_id.key, user_id.is_primary_key, user_id.unique) == ("userId", True, True)
    assert users_table.mappings.get().property == user_id
    events = m.Property.objects.get(config_id="event_count")
    assert events.options["query"] == "SELECT COUNT(*) FROM events WHERE user_id = {{{ userId }}}"

    schedule = m.Schedule.objects.get(config_id="users_table_schedule")
    assert (schedule.recurring_frequency, schedule.confirm_records, schedule.options) == (
        900, True, {"column": "updated_at"},
    )  # fmt: skip
    assert [(f.key, f.op, f.relative_match_number, f.relative_match_direction) for f in schedule.filters.all()] == [
        ("created_at", "gt", 2, "subtract"), ("deleted_at", "notExists", None, ""),
    ]  # fmt: skip

    renewing = m.Group.objects.get(config_id="renewing_soon")
    assert [(r.op, r.match, r.relative_match_number, r.relative_match_unit) for r in renewing.rules.all()] == [
        ("inNext", "", 2, "weeks"), ("endsWith", "@example.com", None, ""),
    ]  # fmt: skip
    assert m.Group.objects.get(config_id="new_users").rules.get().op == "inLast"

    contacts = m.Destination.objects.get(config_id="marketing_contacts")
    assert (contacts.collection, contacts.group.config_id, contacts.sync_mode) == (
        "group",
        "big_spenders",
        "additive",
    )
    assert {d.remote_key: d.property.config_id for d in contacts.mappings.all()} == {
        "id": "user_id", "email": "email", "first_name": "first_name", "last_name": "last_name", "events": "event_count",
    }  # fmt: skip
    assert {d.remote_key: d.group.config_id for d in contacts.group_memberships.all()} == {
        "New": "new_users", "Renewing": "renewing_soon", "Big spender": "big_spenders",
    }  # fmt: skip

    # API keys: one minted (shown once), one from the environment.
    assert set(result.api_keys) == {"ci_key"}
    ci = m.ApiKey.objects.get(config_id="ci_key")
    assert ci.hashed_key == api_key_hash(result.api_keys["ci_key"])
    assert (ci.permission_all_read, ci.permission_all_write) == (True, False)
    bot = m.ApiKey.objects.get(config_id="sync_bot")
    assert (bot.prefix, bot.hashed_key) == ("abcd1234", api_key_hash(SYNC_BOT_KEY))
    assert {p.topic: (p.read, p.write) for p in bot.permissions.all()} == {
        "sources": (True, True), "schedules": (True, True), "records": (True, True), "runs": (True, False),
    }  # fmt: skip

    # Teams are Django groups with model permissions; members are staff users.
    admins = AuthGroup.objects.get(name="Admin Team")
    assert admins.permissions.filter(codename="delete_destination").exists()
    analysts = AuthGroup.objects.get(name="Analysts")
    assert analysts.permissions.filter(codename="view_destination").exists()
    assert analysts.permissions.filter(codename="change_group").exists()
    assert not analysts.permissions.filter(codename="change_destination").exists()
    ana = User.objects.get(username="ana@example.com")
    assert ana.is_staff and ana.check_password("password")  # in clear: hashed, with a warning
    assert list(ana.groups.all()) == [analysts]

    assert m.Setting.objects.get(plugin="core", key="exports-retry-base-seconds").value == "60"
    # Grouparoo's cluster-name means nothing here: skipped with a warning, not stored.
    assert not m.Setting.objects.filter(key="cluster-name").exists()


@needs_node
def test_applying_twice_changes_nothing_the_second_time(warehouse_env, capsys):
    call_command("apply", str(FIXTURES / "postgres_warehouse"), "--allow-js")
    first = capsys.readouterr().out
    assert "Applied: 34 created, 1 updated, 0 deleted" in first
    assert 'API key "ci_key": grp_' in first
    before = _counts()
    hashes = dict(m.ApiKey.objects.values_list("config_id", "hashed_key"))
    call_command("apply", str(FIXTURES / "postgres_warehouse"), "--allow-js")
    second = capsys.readouterr().out
    assert "Nothing to change: the database matches the 35 object(s) of the config files." in second
    assert "API key" not in second
    assert _counts() == before
    assert dict(m.ApiKey.objects.values_list("config_id", "hashed_key")) == hashes


def test_plan_prints_the_changes_and_changes_nothing(shop_files, capsys):
    before = _counts()
    call_command("apply", str(FIXTURES / "sqlite_shop"), "--plan")
    out = capsys.readouterr().out
    assert "(nothing has been changed)" in out
    assert '+ create Model "customers" (models/customers.json)' in out
    assert '+ create Destination "crm_contacts" (destinations/crm.json)' in out
    assert '~ adopt Setting "setting_attempts" (setup/access.json)' in out
    assert "value: '5' → '3'" in out
    assert "29 to create, 1 to update, 0 to delete, 0 unchanged." in out
    assert _counts() == before


def test_plan_after_a_change_shows_the_update_and_the_delete(shop_files, fixture_dir, capsys):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)
    group = json.loads((directory / "groups/high_value.json").read_text())
    group["rules"][0]["match"] = "700"
    (directory / "groups/high_value.json").write_text(json.dumps(group))
    (directory / "groups/recent_buyers.json").unlink()
    destination = directory / "destinations/crm.json"
    destination.write_text(
        destination.read_text()
        .replace('"recent": "recent_buyers"', '"other": "high_value"')
        .replace('"high-value": "high_value",', "")
    )
    call_command("apply", str(directory), "--plan")
    out = capsys.readouterr().out
    assert '- delete Group "recent_buyers" (was groups/recent_buyers.json)' in out
    assert '~ update Group "high_value" (groups/high_value.json): rules changed' in out
    assert '~ update Destination "crm_contacts" (destinations/crm.json): memberships changed' in out
    assert "0 to create, 2 to update, 1 to delete, 27 unchanged." in out
    assert m.Group.objects.filter(config_id="recent_buyers").exists()


def test_apply_updates_and_deletes_and_starts_the_implied_work(shop_files, fixture_dir):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)
    m.Run.objects.all().delete()
    unmanaged = m.Group.objects.create(
        model=m.RecordModel.objects.get(config_id="customers"), name="Made in the admin"
    )
    group = json.loads((directory / "groups/high_value.json").read_text())
    group["rules"][0]["match"] = "700"
    (directory / "groups/high_value.json").write_text(json.dumps(group))
    (directory / "groups/recent_buyers.json").unlink()
    destination = directory / "destinations/crm.json"
    destination.write_text(destination.read_text().replace(',\n    "recent": "recent_buyers"', ""))
    prop = directory / "properties/ltv.json"
    prop.write_text(prop.read_text().replace('"type": "float"', '"type": "integer"'))

    result = config_apply(directory=directory)

    assert m.Group.objects.get(config_id="high_value").rules.get().match == "700"
    assert not m.Group.objects.filter(config_id="recent_buyers").exists()
    assert m.Group.objects.filter(pk=unmanaged.pk).exists()  # not managed: never deleted
    assert m.Property.objects.get(config_id="ltv").type == "integer"
    creators = sorted(
        m.Run.objects.filter(pk__in=result.runs).values_list("creator_type", flat=True)
    )
    assert creators == [RunCreator.DESTINATION, RunCreator.GROUP, RunCreator.PROPERTY]
    assert m.Run.objects.get(creator_type=RunCreator.GROUP).group.config_id == "high_value"
    assert m.Run.objects.get(creator_type=RunCreator.PROPERTY).source.config_id == "users_table"


def test_a_fresh_apply_starts_runs_for_groups_sources_and_destinations(shop_files):
    result = config_apply(directory=FIXTURES / "sqlite_shop")
    runs = m.Run.objects.filter(pk__in=result.runs)
    assert sorted(r.group.config_id for r in runs if r.group_id) == ["high_value", "recent_buyers"]
    assert sorted(r.source.config_id for r in runs if r.source_id) == [
        "companies_table",
        "purchases_table",
        "users_table",
    ]  # fmt: skip  (the query source without a query has nothing to read in full)
    assert [r.destination.config_id for r in runs if r.destination_id and not r.source_id] == [
        "crm_contacts"
    ]


def test_removing_files_deletes_what_earlier_applies_created(shop_files, fixture_dir):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)
    for rel in (
        "destinations/crm.json",
        "apps/crm.json",
        "setup/access.json",
        "groups/high_value.json",
    ):
        (directory / rel).unlink()
    result = config_apply(directory=directory)
    deleted = {(c.cls, c.id) for c in result.plan.deletes}
    assert deleted == {
        ("destination", "crm_contacts"), ("app", "crm_db"), ("group", "high_value"), ("apikey", "reporting"),
        ("team", "admin_team"), ("team", "marketing"), ("teammember", "demo"), ("setting", "setting_attempts"),
    }  # fmt: skip
    assert not m.Destination.objects.exists()
    assert not m.App.objects.filter(config_id="crm_db").exists()
    assert not m.ApiKey.objects.exists()
    assert not AuthGroup.objects.filter(name__in=["Admin Team", "Marketing"]).exists()
    assert not User.objects.filter(username="demo@example.com").exists()
    setting = m.Setting.objects.get(plugin="core", key="exports-max-attempts")
    assert (setting.value, setting.config_id, setting.locked_by) == (
        "5",
        "",
        "",
    )  # back to its default
    assert not m.Setting.objects.filter(plugin__startswith="config:").exists()


def test_an_unmanaged_object_with_the_same_name_is_adopted(shop_files):
    model = m.RecordModel.objects.create(name="Customers")
    result = config_apply(directory=FIXTURES / "sqlite_shop")
    change = next(c for c in result.plan.changes if c.id == "customers")
    assert change.adopt
    model.refresh_from_db()
    assert (model.config_id, model.locked_by) == ("customers", "models/customers.json")


def test_an_adopted_user_is_not_deleted_with_its_file(shop_files, fixture_dir):
    user = User.objects.create_user("demo@example.com", "demo@example.com", "old-password")
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)
    user.refresh_from_db()
    assert user.is_staff and user.check_password("demo-password-1")  # from env:DEMO_PASSWORD
    (directory / "setup/access.json").unlink()
    config_apply(directory=directory)
    user.refresh_from_db()
    assert list(user.groups.all()) == []


def test_a_failing_write_is_rolled_back_and_named(shop_files, fixture_dir, monkeypatch):
    directory = fixture_dir("sqlite_shop")
    write_config(
        directory,
        {
            "setup/bot.json": {
                "id": "bot",
                "class": "ApiKey",
                "name": "Bot",
                "apiKey": "env:BOT_KEY",
                "permissions": [{"topic": "records", "read": True}],
            }
        },
    )
    monkeypatch.setenv("BOT_KEY", SYNC_BOT_KEY)
    m.ApiKey.objects.create(name="Made in the admin", prefix="abcd1234", hashed_key="x")
    before = _counts()
    with pytest.raises(ConfigError) as raised:
        config_apply(directory=directory)
    [problem] = raised.value.problems
    assert (problem.file, problem.object_id, problem.key) == ("setup/bot.json", "bot", "apiKey")
    assert "prefix" in problem.message.lower()
    assert _counts() == before
    assert not m.Setting.objects.filter(config_id="setting_attempts").exists()


def test_a_protected_delete_fails_the_whole_apply(shop_files, fixture_dir, capsys):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)
    source = m.Source.objects.get(config_id="companies_table")
    m.Property.objects.create(
        model=source.model, source=source, key="made_in_admin", options={"column": "x"}
    )
    (directory / "sources/companies.json").unlink()
    (directory / "properties/accounts.json").unlink()
    write_config(
        directory,
        {"groups/new.json": {"id": "new", "class": "Group", "name": "New", "modelId": "customers"}},
    )
    with pytest.raises(CommandError):
        call_command("apply", str(directory))
    err = capsys.readouterr().err
    assert "error: (was) " not in err
    assert (
        'sources/companies.json: Source "companies_table": cannot be deleted: still used by '
        "property “made_in_admin” (computed by this source; delete it first), not managed by "
        "config files"
    ) in err
    assert m.Source.objects.filter(config_id="companies_table").exists()
    assert m.Property.objects.filter(config_id="account_id").exists()  # its delete was rolled back
    assert not m.Group.objects.filter(config_id="new").exists()


def test_invalid_files_are_refused_before_any_write(shop_files, fixture_dir):
    directory = fixture_dir("sqlite_shop")
    prop = directory / "properties/ltv.json"
    prop.write_text(prop.read_text().replace('"users_table"', '"no_such_source"'))
    with pytest.raises(ConfigError) as raised:
        config_apply(directory=directory)
    assert [(p.file, p.object_id, p.key) for p in raised.value.problems] == [
        ("properties/ltv.json", "ltv", "sourceId")
    ]
    assert not m.RecordModel.objects.exists()


def test_env_values_are_read_at_apply_time_and_a_change_updates(
    shop_files, fixture_dir, monkeypatch, tmp_path
):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)
    assert m.App.objects.get(config_id="shop_db").options["path"] == str(shop_files.shop)
    assert m.App.objects.get(config_id="crm_db").options["path"] == str(shop_files.crm)
    moved = tmp_path / "moved.sqlite3"
    monkeypatch.setenv("SHOP_DB_PATH", str(moved))
    result = config_apply(directory=directory)
    [change] = result.plan.updates
    assert change.id == "shop_db"
    assert m.App.objects.get(config_id="shop_db").options["path"] == str(moved)


def test_skipped_js_files_keep_the_objects_they_own(warehouse_env, monkeypatch, tmp_path):
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    directory = tmp_path / "warehouse"
    shutil.copytree(FIXTURES / "postgres_warehouse", directory)
    config_apply(directory=directory, allow_js=True)
    (directory / "models/accounts.js").unlink()
    write_config(
        directory,
        {
            "models/accounts.json": {
                "id": "accounts",
                "class": "Model",
                "name": "Accounts",
                "type": "account",
            }
        },
    )
    groups = directory / "groups/groups.json"
    groups.write_text(
        groups.read_text().replace('"name": "Big accounts"', '"name": "Large accounts"')
    )
    # Without Node.js team/api_keys.js is skipped: its API keys are neither updated nor deleted.
    monkeypatch.setenv("PATH", str(tmp_path / "no-node"))
    result = config_apply(directory=directory, allow_js=True)
    assert [c.id for c in result.plan.deletes] == []
    assert sorted(c.id for c in result.plan.updates) == ["accounts", "big_accounts"]
    assert m.ApiKey.objects.filter(config_id__in=["ci_key", "sync_bot"]).count() == 2


def test_a_second_primary_source_made_in_the_admin_is_named(shop_files):
    model = m.RecordModel.objects.create(name="Customers")
    app = m.App.objects.create(name="Legacy", type="sqlite", options={"path": "/tmp/legacy.db"})
    m.Source.objects.create(
        name="Legacy users",
        app=app,
        model=model,
        type="sqlite-table",
        options={"table": "t"},
        is_primary=True,
    )
    with pytest.raises(ConfigError) as raised:
        config_apply(directory=FIXTURES / "sqlite_shop")
    [problem] = raised.value.problems
    assert (problem.file, problem.object_id, problem.key) == (
        "sources/users.json",
        "users_table",
        "mapping",
    )
    assert "already has another primary source" in problem.message
    assert m.RecordModel.objects.get().config_id == ""  # the adoption was rolled back too
