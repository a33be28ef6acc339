"""`generate`: every template writes files that validate as written; batch generation writes a
table source with its schedule and one property per column, from a list or the live table."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core import models as m
from core.config.apply import config_apply
from core.config.generate import config_generate
from core.config.templates import TemplateError, templates
from core.config.validate import config_validate
from tests.engine.helpers import sync


def _base(directory: Path) -> Path:
    """A directory with a model, an app, a primary table source and a team."""
    config_generate(directory=directory, template="model", object_id="customers", params={})
    config_generate(
        directory=directory,
        template="sqlite:app",
        object_id="shop",
        params={"path": "/tmp/shop.db"},
    )
    config_generate(
        directory=directory,
        template="sqlite:table:source",
        object_id="users",
        params={"parent": "shop", "mapping": "id=user_id", "with-columns": "id,email,first_name"},
    )
    config_generate(
        directory=directory, template="team", object_id="admins", params={"all-read": "true"}
    )
    return directory


def _params(name: str, directory: Path) -> tuple[str, dict[str, str]]:
    """Inputs for one template, creating the app it needs first."""
    if name == "model":
        return "accounts", {"type": "account"}
    if name.endswith(":app"):
        return "new_app", {}
    connector = name.split(":")[0]
    if name.endswith(":source") or name.endswith(":destination"):
        app = f"{connector}_app"
        config_generate(directory=directory, template=f"{connector}:app", object_id=app, params={})
        if name.endswith(":table:source"):
            # A primary source of its own model (customers already has one).
            config_generate(
                directory=directory, template="model", object_id=f"{connector}_things", params={}
            )
            return "new_table", {
                "parent": app, "model": f"{connector}_things", "mapping": "id=new_table_id",
                "with-columns": "id,name", "high-water-mark": "updated_at",
            }  # fmt: skip
        if name.endswith(":query:source"):
            return "new_query", {"parent": app}
        return "new_destination", {"parent": app}
    if name == "property":
        return "nickname", {
            "parent": "users",
            "aggregation-method": "most recent value",
            "sort-column": "updated_at",
        }
    if name == "schedule":
        config_generate(
            directory=directory,
            template="sqlite:table:source",
            object_id="logins",
            params={"parent": "shop", "mapping": "user_id=user_id", "no-schedule": "true"},
        )
        return "logins_schedule", {"parent": "logins", "high-water-mark": "logged_in_at"}
    if name == "group":
        return "gmail", {
            "property": "email",
            "op": "endsWith",
            "match": "@gmail.com",
            "match-type": "any",
        }
    if name == "apikey":
        return "reporting", {"read": "records,groups", "write": "runs"}
    if name == "team":
        return "support", {}
    if name == "teammember":
        return "ann", {"parent": "admins", "email": "ann@example.com", "first-name": "Ann"}
    raise AssertionError(f"no inputs for template {name}")


TEMPLATES = sorted(templates())


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_writes_files_that_validate(tmp_path, name):
    directory = _base(tmp_path / "config")
    assert config_validate(directory=directory).ok
    object_id, params = _params(name, directory)
    result = config_generate(directory=directory, template=name, object_id=object_id, params=params)
    assert result.files
    config = config_validate(directory=directory)
    assert config.problems.errors == [], [str(p) for p in config.problems.errors]
    assert config.get(result.template.cls, object_id) is not None


def test_the_templates_cover_the_issue():
    names = set(TEMPLATES)
    assert {"model", "property", "schedule", "group", "apikey", "team", "teammember"} <= names
    for connector in ("sqlite", "postgres"):
        assert {
            f"{connector}:app",
            f"{connector}:table:source",
            f"{connector}:query:source",
            f"{connector}:destination",
        } <= names


def test_batch_generation_from_a_listed_set_of_columns(tmp_path):
    directory = _base(tmp_path / "config")
    result = config_generate(
        directory=directory,
        template="sqlite:table:source",
        object_id="purchases",
        params={
            "parent": "shop",
            "mapping": "user_id=user_id",
            "with-columns": "user_id,amount,purchased_at",
        },
    )
    # The mapping names user_id, which the users source owns: no second user_id property.
    assert result.files == [
        "sources/purchases.json",
        "properties/amount.json",
        "properties/purchased_at.json",
    ]
    config = config_validate(directory=directory)
    assert config.ok
    assert config.get("source", "purchases").data["is_primary"] is False
    assert config.get("source", "users").data["is_primary"] is True


def test_batch_generation_reads_every_column_of_the_live_table(tmp_path, shop_files, db):
    directory = tmp_path / "config"
    config_generate(directory=directory, template="model", object_id="customers", params={})
    config_generate(
        directory=directory,
        template="sqlite:app",
        object_id="shop",
        params={"path": str(shop_files.shop)},
    )
    config_generate(
        directory=directory,
        template="sqlite:app",
        object_id="crm",
        params={"path": str(shop_files.crm)},
    )
    result = config_generate(
        directory=directory,
        template="sqlite:table:source",
        object_id="users",
        params={
            "parent": "shop",
            "with-columns": "*",
            "mapping": "id=user_id",
            "high-water-mark": "updated_at",
        },
    )
    assert result.files == [
        "sources/users.json",
        "properties/user_id.json",
        "properties/email.json",
        "properties/first_name.json",
        "properties/ltv.json",
        "properties/country.json",
        "properties/updated_at.json",
    ]
    config = config_validate(directory=directory)
    assert config.ok, [str(p) for p in config.problems.errors]
    types = {s.id: s.data["type"] for s in config.of_class("property")}
    assert types == {
        "user_id": "integer", "email": "email", "first_name": "string", "ltv": "float",
        "country": "string", "updated_at": "string",  # SQLite TEXT
    }  # fmt: skip
    config_generate(
        directory=directory,
        template="sqlite:destination",
        object_id="crm_contacts",
        params={"parent": "crm", "table": "crm"},
    )
    assert config_validate(directory=directory).ok

    # The generated files apply and sync as they are.
    config_apply(directory=directory)
    run = sync(m.Schedule.objects.get(config_id="users_schedule"))
    assert run.state == "complete", run.error
    assert [r["id"] for r in shop_files.crm_rows()] == ["1", "2", "3", "4"]


def test_the_command_lists_templates_and_writes_files(tmp_path, capsys):
    call_command("generate", "--list")
    out = capsys.readouterr().out
    assert "sqlite:table:source  (batch)" in out
    assert "--with-columns" in out
    directory = tmp_path / "config"
    call_command("generate", "model", "customers", "--name", "Customers", "--dir", str(directory))
    call_command("generate", "sqlite:app", "shop", "--path=/tmp/x.db", "--dir", str(directory))
    call_command(
        "generate", "sqlite:table:source", "users", "--parent", "shop", "--mapping", "id=user_id",
        "--with-columns", "id,email", "--dir", str(directory),
    )  # fmt: skip
    out = capsys.readouterr().out
    assert f"wrote {directory / 'properties/email.json'}" in out
    assert out.rstrip().endswith("validates.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nothing", "x"], "unknown template 'nothing'"),
        (["model", "Bad Id"], "ids are lowercase letters"),
        (["model", "customers"], 'Model "customers" already exists in models/customers.json'),
        (["model", "m2", "--colour", "red"], "model takes no --colour"),
        (["sqlite:table:source", "t", "--parent", "nope"], "--parent: no app 'nope'"),
        (["sqlite:table:source", "t", "--parent", "shop"], "--mapping is required"),
        (["teammember", "bob", "--parent", "admins"], "--email is required"),
        (["schedule", "again", "--parent", "users"], "already has a schedule"),
    ],
)
def test_the_command_refuses_bad_input(tmp_path, args, message):
    directory = _base(tmp_path / "config")
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("generate", *args, "--dir", str(directory))


def test_an_existing_file_is_not_overwritten_without_force(tmp_path):
    directory = _base(tmp_path / "config")
    (directory / "models/accounts.json").write_text("{}")
    with pytest.raises(TemplateError, match="already exists"):
        config_generate(directory=directory, template="model", object_id="accounts", params={})
    config_generate(
        directory=directory, template="model", object_id="accounts", params={}, force=True
    )
    assert config_validate(directory=directory).get("model", "accounts") is not None
