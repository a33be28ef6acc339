"""Inline editors: invalid rows come back as errors on the page (200, nothing saved), never a 500."""

from __future__ import annotations

from django.urls import reverse

from core import models as m
from tests.admin.forms import add_inline_row, form_data, page_errors


def _change(obj):
    return reverse(f"admin:core_{obj._meta.model_name}_change", args=[obj.pk])


def _post_change(client, obj, edit):
    url = _change(obj)
    data = form_data(client.get(url), f"{obj._meta.model_name}_form")
    edit(data)
    return client.post(url, data)


def test_a_valid_rule_is_saved(admin_client, world):
    group, email = world["group"], world["email"]
    response = _post_change(
        admin_client,
        group,
        lambda d: add_inline_row(
            d, "rules", property=email.pk, op="endsWith", match="@example.com", position=1
        ),
    )
    assert response.status_code == 302, page_errors(response)
    assert group.rules.count() == 2


def test_a_rule_op_that_does_not_suit_the_property_type_is_an_error_on_the_page(
    admin_client, world
):
    group, vip = world["group"], world["vip"]
    response = _post_change(
        admin_client,
        group,
        lambda d: add_inline_row(d, "rules", property=vip.pk, op="gt", match="true", position=1),
    )
    assert response.status_code == 200
    assert "does not suit" in response.content.decode()
    assert "Please correct the error" in response.content.decode()
    assert group.rules.count() == 1


def test_a_rule_match_that_does_not_parse_is_an_error_on_the_page(admin_client, world):
    group, vip = world["group"], world["vip"]
    response = _post_change(
        admin_client,
        group,
        lambda d: add_inline_row(d, "rules", property=vip.pk, op="eq", match="maybe", position=1),
    )
    assert response.status_code == 200
    assert "is not a boolean" in response.content.decode()
    assert group.rules.count() == 1


def test_a_rule_on_a_property_of_another_model_is_refused_on_the_change_page(admin_client, world):
    group, other = world["group"], world["other_property"]
    response = _post_change(
        admin_client,
        group,
        lambda d: add_inline_row(d, "rules", property=other.pk, op="eq", match="x", position=1),
    )
    assert response.status_code == 200
    assert "Choose a property of the model “customers”" in response.content.decode()
    assert group.rules.count() == 1


def test_a_rule_on_a_property_of_another_model_is_refused_on_the_add_page(admin_client, world):
    url = reverse("admin:core_group_add")
    data = form_data(admin_client.get(url), "group_form")
    data.update(name="new group", model=world["model"].pk)
    add_inline_row(
        data, "rules", property=world["other_property"].pk, op="eq", match="x", position=0
    )
    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "belongs to another model than the group" in response.content.decode()
    assert not m.Group.objects.filter(name="new group").exists()


def test_a_destination_mapping_naming_a_property_of_another_model_is_refused(admin_client, world):
    destination = world["destination"]
    response = _post_change(
        admin_client,
        destination,
        lambda d: add_inline_row(
            d, "mappings", property=world["other_property"].pk, remote_key="domain"
        ),
    )
    assert response.status_code == 200
    assert "Choose a property of the model “customers”" in response.content.decode()
    assert destination.mappings.count() == 1


def test_duplicate_destination_fields_are_refused(admin_client, world):
    destination = world["destination"]
    response = _post_change(
        admin_client,
        destination,
        lambda d: add_inline_row(d, "mappings", property=world["vip"].pk, remote_key="email"),
    )
    assert response.status_code == 200
    assert "Destination field “email” is mapped twice." in response.content.decode()
    assert destination.mappings.count() == 1


def test_a_group_listed_twice_in_destination_memberships_is_refused(admin_client, world):
    destination, group = world["destination"], world["group"]
    response = _post_change(
        admin_client,
        destination,
        lambda d: add_inline_row(d, "group_memberships", group=group.pk, remote_key="VIP 2"),
    )
    assert response.status_code == 200
    assert "Group “vips” is listed twice." in response.content.decode()
    assert destination.group_memberships.count() == 1


def test_a_source_mapping_to_a_non_unique_property_is_refused(admin_client, world):
    source = world["source"]
    response = _post_change(
        admin_client,
        source,
        lambda d: add_inline_row(d, "mappings", remote_key="is_vip", property=world["vip"].pk),
    )
    assert response.status_code == 200
    assert source.mappings.count() == 1


def test_duplicate_source_columns_are_refused(admin_client, world):
    source = world["source"]
    response = _post_change(
        admin_client,
        source,
        lambda d: add_inline_row(d, "mappings", remote_key="email", property=world["email"].pk),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Column “email” is mapped twice." in html
    assert source.mappings.count() == 1


def test_duplicate_api_key_topics_are_refused(admin_client, world):
    api_key = world["api_key"]
    response = _post_change(
        admin_client,
        api_key,
        lambda d: add_inline_row(d, "permissions", topic="records", read="on"),
    )
    assert response.status_code == 200
    assert "Topic “records” is listed twice." in response.content.decode()
    assert api_key.permissions.count() == 1


def test_an_invalid_filter_is_an_error_on_the_page(admin_client, world):
    schedule = world["schedule"]
    response = _post_change(
        admin_client,
        schedule,
        lambda d: add_inline_row(d, "filters", key="age", op="gt", match="", position=1),
    )
    assert response.status_code == 200
    assert "needs a value to compare with" in response.content.decode()
    assert schedule.filters.count() == 1


def test_group_choices_on_a_record_are_limited_to_its_model(admin_client, world):
    other_group = m.Group.objects.create(model=world["other_model"], name="Z-team")
    response = admin_client.get(_change(world["record"]))
    html = response.content.decode()
    assert ">vips<" in html
    assert f">{other_group.name}<" not in html
