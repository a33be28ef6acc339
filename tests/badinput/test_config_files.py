"""Config files with unknown keys (also inside nested objects), missing ids, references to ids that
do not exist, and dependency cycles: `validate` names the file, the object and the key, and
`apply` refuses the directory before writing anything. Complements tests/config/test_validate.py
(top-level cases) with the nested and cross-file ones."""

from __future__ import annotations

import copy

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core import models as m
from core.config.validate import config_validate
from tests.config.conftest import write_config
from tests.config.test_validate import BASE

pytestmark = pytest.mark.django_db


def _rule_extra(files):
    files["groups/rich.json"]["rules"][0]["operator"] = "gt"


def _permission_extra(files):
    files["access.json"][0]["permissions"][0]["reed"] = True


def _schedule_filter_extra(files):
    files["sources/users.json"][1]["filters"] = [{"key": "ltv", "op": "gt", "match": "1", "mtch": "2"}]


def _rule_missing_property(files):
    files["groups/rich.json"]["rules"][0]["propertyId"] = "lifetime_value"


def _destination_mapping_missing(files):
    files["destinations/crm.json"]["mapping"]["email"] = "no_such_property"


def _destination_group_missing(files):
    files["destinations/crm.json"]["groupId"] = "ghosts"
    files["destinations/crm.json"]["collection"] = "group"


def _model_missing(files):
    files["sources/queries.json"]["modelId"] = "people"


def _schedule_without_id(files):
    del files["sources/users.json"][1]["id"]


CASES = [
    (_rule_extra, "groups/rich.json", "rich", "rules[0].operator", "is not a key of a group rule"),
    (_permission_extra, "access.json", "key", "permissions[0].reed", "is not a key of a permission"),
    (_schedule_filter_extra, "sources/users.json", "users_schedule", "filters[0].mtch", "is not a key of a filter"),
    (_rule_missing_property, "groups/rich.json", "rich", "rules[0].propertyId",
     'references Property "lifetime_value", which no config file defines'),
    (_destination_mapping_missing, "destinations/crm.json", "crm", "mapping.email",
     'references Property "no_such_property"'),
    (_destination_group_missing, "destinations/crm.json", "crm", "groupId", 'references Group "ghosts"'),
    (_model_missing, "sources/queries.json", "queries", "modelId", 'references Model "people"'),
    (_schedule_without_id, "sources/users.json", None, "id", "is required"),
]
# Dependency cycles, unknown top-level keys and classes: tests/config/test_validate.py.


@pytest.mark.parametrize(("change", "file", "object_id", "key", "text"), CASES,
                         ids=[c[0].__name__[1:] for c in CASES])
def test_each_bad_file_is_named_with_its_object_and_key_and_apply_writes_nothing(tmp_path, change, file,
                                                                                  object_id, key, text):
    files = copy.deepcopy(BASE)
    change(files)
    directory = write_config(tmp_path / "config", files)
    config = config_validate(directory=directory)
    assert not config.ok
    found = [p for p in config.problems.errors if (p.file, p.key) == (file, key)]
    assert found, [str(p) for p in config.problems.errors]
    if object_id is not None:
        assert any(p.object_id == object_id for p in found), [str(p) for p in found]
    assert any(text in p.message for p in found), [str(p) for p in found]
    assert file in str(found[0]) and key in str(found[0])

    before = [model.objects.count() for model in (m.RecordModel, m.App, m.Source, m.Property, m.Group,
                                                  m.Destination, m.ApiKey)]
    with pytest.raises(CommandError):
        call_command("apply", str(directory))
    assert [model.objects.count() for model in (m.RecordModel, m.App, m.Source, m.Property, m.Group,
                                                m.Destination, m.ApiKey)] == before

