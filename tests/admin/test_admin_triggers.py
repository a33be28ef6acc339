"""Saving configuration in the admin starts the work it implies (DESIGN.md section 6)."""
from __future__ import annotations

from django.urls import reverse

from core import models as m
from core.choices import RunCreator
from tests.admin.forms import add_inline_row, form_data, page_errors


def _post_change(client, obj, edit):
    url = reverse(f"admin:core_{obj._meta.model_name}_change", args=[obj.pk])
    data = form_data(client.get(url), f"{obj._meta.model_name}_form")
    edit(data)
    return client.post(url, data)


def test_editing_a_group_rule_starts_a_recompute(admin_client, world):
    group = world["group"]
    response = _post_change(
        admin_client, group,
        lambda d: add_inline_row(d, "rules", property=world["email"].pk, op="endsWith", match="@x.com", position=1),
    )
    assert response.status_code == 302, page_errors(response)
    run = m.Run.objects.get(group=group, creator_type=RunCreator.GROUP)
    assert run.source is None


def test_saving_a_group_unchanged_starts_nothing(admin_client, world):
    response = _post_change(admin_client, world["group"], lambda d: None)
    assert response.status_code == 302, page_errors(response)
    assert not m.Run.objects.filter(group=world["group"]).exists()


def test_changing_a_property_starts_a_full_run_of_its_source(admin_client, world):
    vip = world["vip"]
    response = _post_change(admin_client, vip, lambda d: d.update(type="string"))
    assert response.status_code == 302, page_errors(response)
    run = m.Run.objects.get(property=vip)
    assert run.source == world["source"] and run.full and run.creator_type == RunCreator.PROPERTY


def test_changing_a_destination_mapping_starts_a_re_export(admin_client, world):
    destination = world["destination"]
    response = _post_change(
        admin_client, destination,
        lambda d: add_inline_row(d, "mappings", property=world["vip"].pk, remote_key="vip"),
    )
    assert response.status_code == 302, page_errors(response)
    assert m.Run.objects.filter(destination=destination, creator_type=RunCreator.DESTINATION).count() == 1
