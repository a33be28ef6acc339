"""`apply` deletes a property, group or source only when nothing uses it once the apply is done:
a use made in the admin refuses the whole apply (naming the file and id), a use the same files
remove or change does not."""

from __future__ import annotations

import json

import pytest

from core import models as m
from core.choices import RuleOp
from core.config.apply import config_apply
from core.config.problems import ConfigError
from tests.config.conftest import write_config

pytestmark = pytest.mark.django_db


def _edit(directory, rel: str, change) -> None:
    path = directory / rel
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def _drop_ltv(directory) -> None:
    """Remove the ltv property's file and every use of it in the other files."""
    (directory / "properties/ltv.json").unlink()
    _edit(
        directory,
        "groups/high_value.json",
        lambda g: g["rules"][0].update(propertyId="total_spend"),
    )
    _edit(directory, "destinations/crm.json", lambda d: d["mapping"].pop("ltv"))


@pytest.fixture
def applied(shop_files, fixture_dir):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)
    return directory


def test_a_property_a_group_made_in_the_admin_uses_is_not_deleted(applied):
    ltv = m.Property.objects.get(config_id="ltv")
    mine = m.Group.objects.create(model=ltv.model, name="Admin VIPs")
    m.GroupRule.objects.create(group=mine, property=ltv, op=RuleOp.GT, match="100")
    _drop_ltv(applied)

    with pytest.raises(ConfigError) as raised:
        config_apply(directory=applied)

    [problem] = raised.value.problems
    assert (problem.file, problem.object_class, problem.object_id) == (
        "properties/ltv.json",
        "Property",
        "ltv",
    )
    assert problem.message == (
        "cannot be deleted: still used by group “Admin VIPs” (rule “ltv is greater than 100”), "
        "not managed by config files. Remove those uses (or delete those objects) in the admin "
        "or in their files, or keep this object's file"
    )
    # Nothing changed: the property, the admin's rule and the files' own uses are all still there.
    assert m.GroupRule.objects.filter(group=mine, property=ltv).exists()
    assert m.Group.objects.get(config_id="high_value").rules.get().property == ltv
    assert m.DestinationMapping.objects.filter(property=ltv).count() == 1


def test_a_property_the_same_apply_stops_using_is_deleted(applied):
    _drop_ltv(applied)
    result = config_apply(directory=applied)
    assert [(c.cls, c.id) for c in result.plan.deletes] == [("property", "ltv")]
    assert not m.Property.objects.filter(config_id="ltv").exists()
    rule = m.Group.objects.get(config_id="high_value").rules.get()
    assert rule.property.config_id == "total_spend"
    destination = m.Destination.objects.get(config_id="crm_contacts")
    assert "ltv" not in set(destination.mappings.values_list("remote_key", flat=True))


def test_a_group_a_destination_made_in_the_admin_sends_is_not_deleted(applied):
    group = m.Group.objects.get(config_id="high_value")
    crm = m.Destination.objects.get(config_id="crm_contacts")
    mine = m.Destination.objects.create(
        name="Admin list", app=crm.app, model=crm.model, type=crm.type, options=dict(crm.options)
    )
    m.DestinationGroupMembership.objects.create(destination=mine, group=group, remote_key="vip")
    (applied / "groups/high_value.json").unlink()
    _edit(
        applied,
        "destinations/crm.json",
        lambda d: d["destinationGroupMemberships"].pop("high-value"),
    )

    with pytest.raises(ConfigError) as raised:
        config_apply(directory=applied)

    [problem] = raised.value.problems
    assert (problem.file, problem.object_id) == ("groups/high_value.json", "high_value")
    assert "destination “Admin list” (sends it as the list or tag “vip”)" in problem.message
    assert m.DestinationGroupMembership.objects.filter(destination=mine, group=group).exists()
    assert crm.group_memberships.filter(group=group).exists()  # the whole apply rolled back


def test_a_group_removed_while_its_destination_stops_tracking_it(applied):
    def track(d):
        d.update(collection="group", groupId="recent_buyers")

    _edit(applied, "destinations/crm.json", track)
    config_apply(directory=applied)
    crm = m.Destination.objects.get(config_id="crm_contacts")
    assert crm.group.config_id == "recent_buyers"

    # One apply: the group's file goes, and the destination tracks the whole model again.
    (applied / "groups/recent_buyers.json").unlink()

    def untrack(d):
        d.update(collection="model")
        d.pop("groupId")
        d["destinationGroupMemberships"].pop("recent")

    _edit(applied, "destinations/crm.json", untrack)
    config_apply(directory=applied)

    assert not m.Group.objects.filter(config_id="recent_buyers").exists()
    crm.refresh_from_db()
    assert (crm.collection, crm.group) == ("model", None)


def test_a_source_removed_while_its_properties_move_to_another(applied):
    # purchases_table is replaced by orders_table (same table); its properties move over.
    (applied / "sources/purchases.json").unlink()
    write_config(
        applied,
        {
            "sources/orders.json": [
                {
                    "class": "Source",
                    "id": "orders_table",
                    "modelId": "customers",
                    "name": "Orders",
                    "type": "sqlite-table",
                    "appId": "shop_db",
                    "options": {"table": "purchases"},
                    "mapping": {"user_id": "user_id"},
                },
            ]
        },
    )
    path = applied / "properties/purchases.json"
    path.write_text(path.read_text().replace('"purchases_table"', '"orders_table"'))

    result = config_apply(directory=applied)

    deleted = {(c.cls, c.id) for c in result.plan.deletes}
    assert deleted == {("source", "purchases_table"), ("schedule", "purchases_schedule")}
    assert not m.Source.objects.filter(config_id="purchases_table").exists()
    moved = m.Property.objects.filter(source__config_id="orders_table")
    assert moved.count() == 4
    assert m.Property.objects.get(config_id="purchase_count").source.name == "Orders"


def test_a_source_whose_property_the_admin_added_is_not_deleted(applied):
    source = m.Source.objects.get(config_id="purchases_table")
    m.Property.objects.create(
        model=source.model, source=source, key="refunds", options={"column": "amount"}
    )
    (applied / "sources/purchases.json").unlink()
    (applied / "properties/purchases.json").unlink()
    _edit(applied, "groups/recent_buyers.json", lambda g: g["rules"].pop(0))
    _edit(
        applied,
        "destinations/crm.json",
        lambda d: [
            d["mapping"].pop(k) for k in ("purchase_count", "total_spend", "last_purchase_at")
        ],
    )

    with pytest.raises(ConfigError) as raised:
        config_apply(directory=applied)

    [problem] = raised.value.problems
    assert (problem.file, problem.object_id) == ("sources/purchases.json", "purchases_table")
    assert "property “refunds” (computed by this source; delete it first)" in problem.message
    assert m.Property.objects.filter(config_id="purchase_count").exists()  # rolled back
