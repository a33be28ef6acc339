"""Deleting a property, group or source that something uses is refused in the admin, on its delete
page and by the "Delete selected" action, with a page listing each user with a link to it."""

from __future__ import annotations

from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from core import models as m
from core.choices import DestinationCollection, RuleOp
from tests.factories import make_group, make_property


def _url(obj, name: str = "change") -> str:
    return reverse(f"admin:core_{obj._meta.model_name}_{name}", args=[obj.pk])


def _changelist(model) -> str:
    return reverse(f"admin:core_{model._meta.model_name}_changelist")


def _refusal(html: str) -> str:
    """The refusal part of the page."""
    assert 'class="in-use"' in html, "no refusal page"
    start = html.index('class="in-use"')
    return html[start : html.index("</div>", start)]


def test_a_property_used_by_a_rule_and_a_mapping_is_not_deleted(admin_client, world):
    vip, group, destination = world["vip"], world["group"], world["destination"]
    m.DestinationMapping.objects.create(destination=destination, property=vip, remote_key="is_vip")

    page = admin_client.get(_url(vip, "delete"))
    assert page.status_code == 200
    refusal = _refusal(page.content.decode())
    assert f'<a href="{_url(group)}">vips</a>' in refusal
    assert "vip is equal to true" in refusal
    assert f'<a href="{_url(destination)}">crm</a>' in refusal
    assert "is_vip" in refusal

    response = admin_client.post(_url(vip, "delete"), {"post": "yes"})
    assert response.status_code == 409
    assert m.Property.objects.filter(pk=vip.pk).exists()
    assert m.GroupRule.objects.filter(group=group, property=vip).count() == 1
    assert m.DestinationMapping.objects.filter(property=vip).count() == 1


def test_a_property_that_is_a_destination_key_names_it(admin_client, world):
    email, destination = world["email"], world["destination"]
    m.DestinationMapping.objects.filter(destination=destination).update(remote_key="id")
    refusal = _refusal(admin_client.get(_url(email, "delete")).content.decode())
    assert "destination key" in refusal and "its key field “id”" in refusal
    # The primary key also identifies the source's rows: its own mapping is listed.
    assert f'<a href="{_url(world["source"])}">users</a>' in refusal


def test_bulk_delete_of_properties_refuses_all_when_one_is_used(admin_client, world):
    vip = world["vip"]
    free = make_property(source=world["source"], key="nickname")
    data = {"action": "delete_selected", "_selected_action": [vip.pk, free.pk]}

    page = admin_client.post(_changelist(m.Property), data)
    assert page.status_code == 200
    refusal = _refusal(page.content.decode())
    assert f'<a href="{_url(world["group"])}">vips</a>' in refusal
    assert "nickname" not in refusal

    response = admin_client.post(_changelist(m.Property), {**data, "post": "yes"})
    assert response.status_code == 409
    assert m.Property.objects.filter(pk__in=[vip.pk, free.pk]).count() == 2


def test_an_unused_property_is_deleted(admin_client, world):
    free = make_property(source=world["source"], key="nickname")
    page = admin_client.get(_url(free, "delete"))
    assert 'class="in-use"' not in page.content.decode()
    response = admin_client.post(_url(free, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not m.Property.objects.filter(pk=free.pk).exists()


def test_the_bulk_delete_service_path_refuses_a_used_object(admin_client, world):
    # delete_queryset is what the action calls once confirmed (and what a use added between
    # the confirmation page and the POST reaches): it deletes through the usage service too.
    vip, free = world["vip"], make_property(source=world["source"], key="nickname")
    request = RequestFactory().post("/")
    request.user = world["api_key"].created_by
    request.session = {}
    from django.contrib.messages.storage.fallback import FallbackStorage

    request._messages = FallbackStorage(request)
    model_admin = admin.site._registry[m.Property]
    model_admin.delete_queryset(request, m.Property.objects.filter(pk__in=[vip.pk, free.pk]))
    assert m.Property.objects.filter(pk=vip.pk).exists()
    assert not m.Property.objects.filter(pk=free.pk).exists()
    assert any("Cannot delete property “vip”" in str(msg) for msg in request._messages)


def test_a_group_a_destination_tracks_or_maps_is_not_deleted(admin_client, world):
    group, destination = world["group"], world["destination"]
    tracking = m.Destination.objects.create(
        name="vip list", app=world["app"], model=world["model"], type=destination.type,
        options={"table": "vips"}, collection=DestinationCollection.GROUP, group=group,
    )  # fmt: skip

    refusal = _refusal(admin_client.get(_url(group, "delete")).content.decode())
    assert f'<a href="{_url(tracking)}">vip list</a>' in refusal and "tracks this group" in refusal
    assert f'<a href="{_url(destination)}">crm</a>' in refusal and "“VIP”" in refusal

    assert admin_client.post(_url(group, "delete"), {"post": "yes"}).status_code == 409
    assert m.Group.objects.filter(pk=group.pk).exists()
    assert m.DestinationGroupMembership.objects.filter(group=group).count() == 1

    data = {"action": "delete_selected", "_selected_action": [group.pk], "post": "yes"}
    assert admin_client.post(_changelist(m.Group), data).status_code == 409
    assert m.DestinationGroupMembership.objects.filter(group=group).count() == 1


def test_a_group_only_mapped_is_refused_too(admin_client, world):
    # Mapped only (a cascade would drop the membership silently; no database protection here).
    group = world["group"]
    assert admin_client.post(_url(group, "delete"), {"post": "yes"}).status_code == 409
    assert m.DestinationGroupMembership.objects.filter(group=group).exists()


def test_an_unused_group_is_deleted(admin_client, world):
    group = make_group(model=world["model"], name="nobody")
    assert admin_client.post(_url(group, "delete"), {"post": "yes"}).status_code == 302
    assert not m.Group.objects.filter(pk=group.pk).exists()


def test_a_source_with_properties_lists_them(admin_client, world):
    source, vip = world["source"], world["vip"]
    refusal = _refusal(admin_client.get(_url(source, "delete")).content.decode())
    assert f'<a href="{_url(vip)}">vip</a>' in refusal and "computed by this source" in refusal
    # Its own key (email) goes with it, but what uses the key outside the source is listed.
    assert f'<a href="{_url(world["destination"])}">crm</a>' in refusal
    assert admin_client.post(_url(source, "delete"), {"post": "yes"}).status_code == 409
    assert m.Source.objects.filter(pk=source.pk).exists()


def test_a_source_whose_key_is_used_by_another_source_is_refused(admin_client, world):
    source, email = world["source"], world["email"]
    m.Property.objects.filter(pk=world["vip"].pk).delete()
    m.DestinationMapping.objects.filter(property=email).delete()
    other = m.Source.objects.create(
        name="orders", app=world["app"], model=world["model"], type=source.type,
        options={"table": "orders"},
    )  # fmt: skip
    m.SourceMapping.objects.create(source=other, remote_key="user_email", property=email)

    refusal = _refusal(admin_client.get(_url(source, "delete")).content.decode())
    assert f'<a href="{_url(other)}">orders</a>' in refusal and "user_email" in refusal
    assert admin_client.post(_url(source, "delete"), {"post": "yes"}).status_code == 409
    assert m.Property.objects.filter(pk=email.pk).exists()


def test_a_source_whose_only_property_is_its_own_key_is_deleted_with_it(admin_client, world):
    source, email = world["source"], world["email"]
    m.Property.objects.filter(pk=world["vip"].pk).delete()
    m.DestinationMapping.objects.filter(property=email).delete()
    m.Run.objects.filter(source=source).delete()  # run history (read-only here) would block it

    page = admin_client.get(_url(source, "delete")).content.decode()
    assert 'class="in-use"' not in page
    assert "Are you sure" in page and "protected" not in page
    assert f'<a href="{_url(email)}">email</a>' in page  # listed as deleted along

    assert admin_client.post(_url(source, "delete"), {"post": "yes"}).status_code == 302
    assert not m.Source.objects.filter(pk=source.pk).exists()
    assert not m.Property.objects.filter(pk=email.pk).exists()


def test_a_rule_using_the_property_can_itself_be_deleted(admin_client, world):
    # Users stay deletable: remove the rule, then the property goes.
    vip = world["vip"]
    rule = m.GroupRule.objects.get(property=vip, op=RuleOp.EQ)
    assert admin_client.post(_url(rule, "delete"), {"post": "yes"}).status_code == 302
    assert admin_client.post(_url(vip, "delete"), {"post": "yes"}).status_code == 302
    assert not m.Property.objects.filter(pk=vip.pk).exists()


def test_bulk_delete_of_a_source_takes_its_own_key_along(admin_client, world):
    source, email = world["source"], world["email"]
    m.Property.objects.filter(pk=world["vip"].pk).delete()
    m.DestinationMapping.objects.filter(property=email).delete()
    m.Run.objects.filter(source=source).delete()
    data = {"action": "delete_selected", "_selected_action": [source.pk]}

    page = admin_client.post(_changelist(m.Source), data).content.decode()
    assert "Are you sure" in page and f'<a href="{_url(email)}">email</a>' in page

    assert admin_client.post(_changelist(m.Source), {**data, "post": "yes"}).status_code == 302
    assert not m.Source.objects.filter(pk=source.pk).exists()
    assert not m.Property.objects.filter(pk=email.pk).exists()
