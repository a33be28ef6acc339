"""Objects managed by config files are read-only in the admin, with a note naming the file;
rows edited inline with them (rules, mappings, filters, permissions) are read-only too."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core import models as m
from core.config.apply import config_apply
from core.config.locks import locked_by_of
from tests.config.conftest import FIXTURES

pytestmark = pytest.mark.django_db


def _url(obj, name: str = "change") -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{name}", args=[obj.pk])


@pytest.fixture
def applied(shop_files):
    config_apply(directory=FIXTURES / "sqlite_shop")


def test_a_managed_object_is_shown_read_only_with_its_file(admin_client, applied):
    source = m.Source.objects.get(config_id="users_table")
    response = admin_client.get(_url(source))
    html = response.content.decode()
    assert response.status_code == 200
    assert "managed by the config file sources/users.json" in html
    assert 'name="_save"' not in html
    assert "Users" in html


def test_writes_to_a_managed_object_are_refused(admin_client, applied):
    group = m.Group.objects.get(config_id="high_value")
    assert admin_client.post(_url(group), {"name": "Changed"}).status_code == 403
    assert admin_client.post(_url(group, "delete"), {"post": "yes"}).status_code == 403
    group.refresh_from_db()
    assert group.name == "High value"


def test_bulk_delete_including_a_managed_object_is_refused(admin_client, applied):
    managed = m.Group.objects.get(config_id="high_value")
    free = m.Group.objects.create(model=managed.model, name="Free")
    url = reverse("admin:core_group_changelist")
    data = {"action": "delete_selected", "_selected_action": [managed.pk, free.pk]}
    confirm = admin_client.post(url, data).content.decode()
    assert "requires deleting" in confirm or "permission to delete" in confirm
    assert admin_client.post(url, {**data, "post": "yes"}).status_code == 403
    assert m.Group.objects.filter(pk__in=[managed.pk, free.pk]).count() == 2


def test_rows_of_a_managed_parent_are_locked_too(admin_client, applied):
    rule = m.GroupRule.objects.filter(group__config_id="high_value").first()
    assert locked_by_of(rule) == "groups/high_value.json"
    html = admin_client.get(_url(rule)).content.decode()
    assert "managed by the config file groups/high_value.json" in html
    assert 'name="_save"' not in html
    mapping = m.DestinationMapping.objects.filter(destination__config_id="crm_contacts").first()
    assert admin_client.post(_url(mapping), {}).status_code == 403


def test_inlines_of_a_managed_object_are_read_only(admin_client, applied):
    destination = m.Destination.objects.get(config_id="crm_contacts")
    html = admin_client.get(_url(destination)).content.decode()
    assert "crm_groups" in html or "group_name" in html  # the page shows the destination
    assert 'name="mappings-0-remote_key"' not in html
    destination.locked_by = ""
    destination.save(update_fields=["locked_by"])
    html = admin_client.get(_url(destination)).content.decode()
    assert 'name="mappings-0-remote_key"' in html  # the same inline, editable when unlocked


def test_unmanaged_objects_stay_editable(admin_client, applied):
    free = m.Group.objects.create(
        model=m.RecordModel.objects.get(config_id="customers"), name="Free"
    )
    html = admin_client.get(_url(free)).content.decode()
    assert 'name="_save"' in html
    assert "managed by the config file" not in html
