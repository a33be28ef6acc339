"""Records in the admin: added by a unique value (imported now from the sources), never empty;
group memberships are read-only (recomputes keep them from the rules)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core import models as m
from tests.engine.conftest import make_shop


@pytest.fixture
def shop(db, tmp_path):
    return make_shop(tmp_path)


ADD = "admin:core_record_add"


def test_an_empty_record_cannot_be_added(admin_client, world):
    # What the add page took before: a model and a state, nothing identifying the record.
    old_form = {
        "model": world["model"].pk,
        "state": "ready",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    response = admin_client.post(reverse(ADD), old_form)
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"property", "value"}
    assert m.Record.objects.count() == 1  # only the world's record


def test_the_add_page_asks_for_a_unique_property_and_its_value(admin_client, world):
    html = admin_client.get(reverse(ADD)).content.decode()
    assert 'name="property"' in html and 'name="value"' in html
    assert 'name="state"' not in html
    form = admin_client.get(reverse(ADD)).context["form"]
    labels = [label for _, label in form.fields["property"].choices]
    assert "customers: email" in labels
    assert "customers: vip" not in labels  # not unique: it cannot identify a record


def test_a_record_is_added_by_a_value_its_sources_hold(admin_client, shop):
    email = shop.props["email"]
    response = admin_client.post(
        reverse(ADD), {"property": email.pk, "value": "cy@example.com", "export": ""}
    )
    record = m.Record.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:core_record_change", args=[record.pk])
    values = {
        rp.property.key: rp.raw_value
        for rp in m.RecordProperty.objects.filter(record=record).select_related("property")
    }
    assert values["email"] == "cy@example.com" and values["first_name"] == "Cy"
    assert values["user_id"] == "3"
    assert shop.dst_rows() == []  # "send the exports now" was left unticked


def test_a_record_added_with_export_is_sent_to_its_destinations(admin_client, shop):
    email = shop.props["email"]
    admin_client.post(
        reverse(ADD), {"property": email.pk, "value": "ada@example.com", "export": "on"}
    )
    assert [row["email"] for row in shop.dst_rows()] == ["ada@example.com"]


def test_a_value_no_source_holds_adds_nothing(admin_client, shop):
    email = shop.props["email"]
    response = admin_client.post(
        reverse(ADD), {"property": email.pk, "value": "nobody@example.com", "export": "on"}
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["value"]
    assert "No source has a record with email = 'nobody@example.com'" in errors[0]
    assert not m.Record.objects.exists()


def test_group_memberships_are_read_only(admin_client, world):
    member = m.GroupMember.objects.get()
    assert admin_client.get(reverse("admin:core_groupmember_add")).status_code == 403
    change = reverse("admin:core_groupmember_change", args=[member.pk])
    assert admin_client.get(change).status_code == 200
    assert (
        admin_client.post(change, {"left_at_0": "2020-01-01", "left_at_1": "00:00"}).status_code
        == 403
    )
    delete = reverse("admin:core_groupmember_delete", args=[member.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    member.refresh_from_db()
    assert member.left_at is None


def test_a_records_page_shows_its_memberships_without_editing_them(admin_client, world):
    record = world["record"]
    html = admin_client.get(reverse("admin:core_record_change", args=[record.pk])).content.decode()
    assert "vips" in html
    for field in ("group", "joined_at_0", "left_at_0", "DELETE"):
        assert f'name="memberships-0-{field}"' not in html
    assert "memberships-__prefix__-group" not in html  # nor a blank row to add one
