"""Deleting a property, group or source that something uses: 409 with the list of its users, and
nothing deleted. Group memberships and records are not written by hand through the API."""

from __future__ import annotations

from core import models as m
from core.choices import DestinationCollection


def test_deleting_a_used_property_is_a_conflict_listing_its_users(world, full):
    shop = world.shop
    ltv = shop.props["ltv"]
    response = full.delete(f"/api/v1/properties/{ltv.pk}/")
    assert response.status_code == 409
    body = response.json()
    assert body["message"].startswith("Cannot delete property “ltv”: it is used by ")
    users = {(u["kind"], u["object"], u["id"]) for u in body["users"]}
    assert users == {
        ("group rule", "group", shop.high_value.pk),
        ("destination mapping", "destination", shop.destination.pk),
    }
    rule = next(u for u in body["users"] if u["kind"] == "group rule")
    assert rule["name"] == "High value"
    assert rule["url"] == f"/api/v1/groups/{shop.high_value.pk}/"
    assert "ltv is greater than 500" in rule["detail"]
    assert m.Property.objects.filter(pk=ltv.pk).exists()
    assert m.GroupRule.objects.filter(property=ltv).count() == 1
    assert m.DestinationMapping.objects.filter(property=ltv).count() == 1


def test_the_primary_key_lists_the_sources_it_identifies_and_the_destination_key(world, full):
    shop = world.shop
    body = full.delete(f"/api/v1/properties/{shop.props['user_id'].pk}/").json()
    kinds = {(u["kind"], u["name"]) for u in body["users"]}
    assert kinds == {
        ("destination key", "crm"),  # mapped to the destination's primaryKey "id"
        ("source mapping", "users"),
        ("source mapping", "purchases"),
    }


def test_deleting_a_used_group_is_a_conflict(world, full):
    shop = world.shop
    tracking = m.Destination.objects.create(
        name="high value list", app=shop.destination.app, model=shop.model,
        type=shop.destination.type, options=dict(shop.destination.options),
        collection=DestinationCollection.GROUP, group=shop.high_value,
    )  # fmt: skip
    response = full.delete(f"/api/v1/groups/{shop.high_value.pk}/")
    assert response.status_code == 409
    users = {(u["kind"], u["id"]) for u in response.json()["users"]}
    assert users == {
        ("tracking destination", tracking.pk),
        ("destination group membership", shop.destination.pk),
    }
    assert m.DestinationGroupMembership.objects.filter(group=shop.high_value).exists()


def test_a_group_only_sent_as_a_list_is_not_dropped_from_it(world, full):
    shop = world.shop
    response = full.delete(f"/api/v1/groups/{shop.high_value.pk}/")
    assert response.status_code == 409
    assert [u["detail"] for u in response.json()["users"]] == [
        "sends it as the list or tag “high-value”"
    ]
    assert m.Group.objects.filter(pk=shop.high_value.pk).exists()


def test_deleting_a_source_with_properties_is_a_conflict(world, full):
    shop = world.shop
    response = full.delete(f"/api/v1/sources/{shop.purchases.pk}/")
    assert response.status_code == 409
    names = sorted(u["name"] for u in response.json()["users"] if u["object"] == "property")
    assert names == ["last_purchase_at", "purchase_count", "total_spend"]
    assert m.Property.objects.filter(source=shop.purchases).count() == 3


def test_a_source_goes_with_its_own_key_when_nothing_else_uses_it(world, full):
    shop = world.shop
    source = m.Source.objects.create(
        name="leads", app=shop.users.app, model=shop.model, type="sqlite-table",
        options={"table": "users"},
    )  # fmt: skip
    key = m.Property.objects.create(
        model=shop.model, source=source, key="lead_email", unique=True, options={"column": "email"}
    )
    m.SourceMapping.objects.create(source=source, remote_key="email", property=key)
    assert full.delete(f"/api/v1/sources/{source.pk}/").status_code == 204
    assert not m.Source.objects.filter(pk=source.pk).exists()
    assert not m.Property.objects.filter(pk=key.pk).exists()


def test_an_unused_property_is_deleted(world, full):
    shop = world.shop
    spare = m.Property.objects.create(
        model=shop.model, source=shop.users, key="nickname", options={"column": "first_name"}
    )
    assert full.delete(f"/api/v1/properties/{spare.pk}/").status_code == 204
    assert not m.Property.objects.filter(pk=spare.pk).exists()


def test_group_members_are_read_only(world, full):
    group = world.shop.high_value
    url = f"/api/v1/groups/{group.pk}/members/"
    before = list(m.GroupMember.objects.values_list("group", "record", "left_at"))
    body = {"record": world.record.pk}
    for method in ("post", "put", "patch", "delete"):
        assert getattr(full, method)(url, body, format="json").status_code == 405
    patch = full.patch(
        f"/api/v1/records/{world.record.pk}/", {"groups": [{"id": group.pk}]}, format="json"
    )
    assert patch.status_code == 405
    assert (
        full.post("/api/v1/records/", {"model": world.shop.model.pk}, format="json").status_code
        == 405
    )
    assert list(m.GroupMember.objects.values_list("group", "record", "left_at")) == before
