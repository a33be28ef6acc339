"""`apply` of a directory that was applied before, with one file broken: nothing changes."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core import models as m
from core.config.apply import config_apply

pytestmark = pytest.mark.django_db


def test_one_broken_file_in_an_applied_directory_changes_nothing(shop_files, fixture_dir):
    """A directory already applied; then one file is edited correctly and another is broken (a
    JSON syntax error): `apply` refuses the whole directory, naming the broken file, and the
    correct edit is not applied either."""
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)
    ltv_file = directory / "properties" / "ltv.json"
    ltv = json.loads(ltv_file.read_text())
    ltv["options"]["column"] = "first_name"
    ltv_file.write_text(json.dumps(ltv))
    (directory / "groups" / "high_value.json").write_text('{"class": "Group", "id": "high_value", ')
    before = {model.__name__: list(model.objects.order_by("pk").values()) for model in (
        m.RecordModel, m.App, m.Source, m.Property, m.Group, m.GroupRule, m.Destination, m.DestinationMapping,
        m.Schedule, m.Run)}
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError):
        call_command("apply", str(directory), stdout=out, stderr=err)
    assert "groups/high_value.json" in out.getvalue() + err.getvalue()
    after = {name: list(model.objects.order_by("pk").values()) for name, model in (
        (model.__name__, model) for model in (
            m.RecordModel, m.App, m.Source, m.Property, m.Group, m.GroupRule, m.Destination,
            m.DestinationMapping, m.Schedule, m.Run))}
    assert after == before
    assert m.Property.objects.get(config_id="ltv").options["column"] == "ltv"
