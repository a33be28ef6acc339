"""The hot tables (record properties, group members, exports) reference their parents without
database FOREIGN KEYs (see RecordProperty.record). Every way the product deletes a parent must
still take the children with it: nothing may point at a row that is gone."""
from __future__ import annotations

import pytest
from django.db import transaction

from core import models as m
from core.services.records import records_merge
from tests.engine.helpers import sync_all

CHILDREN = {
    "core_recordproperty": {"record_id": "core_record", "property_id": "core_property"},
    "core_groupmember": {"record_id": "core_record", "group_id": "core_group"},
    "core_export": {"record_id": "core_record", "destination_id": "core_destination", "run_id": "core_run"},
    "core_record": {"model_id": "core_recordmodel"},
}


def orphans() -> dict[str, int]:
    from django.db import connection

    found = {}
    with connection.cursor() as cur:
        for table, refs in CHILDREN.items():
            for column, parent in refs.items():
                cur.execute(
                    f"SELECT COUNT(*) FROM {table} c WHERE c.{column} IS NOT NULL AND NOT EXISTS "
                    f"(SELECT 1 FROM {parent} p WHERE p.id = c.{column})"
                )
                count = cur.fetchone()[0]
                if count:
                    found[f"{table}.{column}"] = count
    return found


def counts() -> tuple[int, int, int, int]:
    return (
        m.RecordProperty.objects.count(),
        m.GroupMember.objects.count(),
        m.Export.objects.count(),
        m.Record.objects.count(),
    )


@pytest.mark.django_db
def test_deleting_parents_leaves_no_orphans(shop):
    sync_all(shop)
    assert all(counts()) and orphans() == {}

    # A record deleted (admin, API): its values, memberships and exports go with it.
    record = m.Record.objects.filter(memberships__isnull=False).first()
    record.delete()
    assert orphans() == {}

    # Two records merged: the loser's rows move or go.
    a, b = m.Record.objects.order_by("id")[:2]
    with transaction.atomic():
        records_merge(record_ids=(a.pk, b.pk), reason="test")
    assert orphans() == {}

    # A property, a group, a run and a destination deleted.
    shop.props["first_name"].delete()
    m.DestinationGroupMembership.objects.filter(group=shop.high_value).delete()
    m.Group.objects.filter(pk=shop.high_value.pk).delete()
    m.Run.objects.all().delete()
    assert orphans() == {}
    assert m.Export.objects.filter(run__isnull=True).exists()  # exports outlive their run
    shop.destination.delete()
    assert orphans() == {}
    assert m.Export.objects.count() == 0

    # The model deleted: its records and everything under them go too.
    assert m.Record.objects.filter(model=shop.model).exists()
    # Destinations, groups, properties and sources protect it: they go first.
    m.Destination.objects.filter(model=shop.model).delete()
    m.Group.objects.filter(model=shop.model).delete()
    m.Property.objects.filter(source__model=shop.model).delete()
    m.Source.objects.filter(model=shop.model).delete()
    assert m.Record.objects.filter(model=shop.model).exists()
    m.RecordModel.objects.filter(pk=shop.model.pk).delete()
    assert orphans() == {}
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_the_orphan_check_sees_an_orphan(shop):
    # The check above can fail: a value whose record is gone is counted.
    sync_all(shop)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "UPDATE core_recordproperty SET record_id = 999999 WHERE record_id = (SELECT MIN(record_id) "
            "FROM core_recordproperty) AND property_id = (SELECT MIN(property_id) FROM core_recordproperty "
            "WHERE record_id = (SELECT MIN(record_id) FROM core_recordproperty)) AND position = 0"
        )
    assert orphans() == {"core_recordproperty.record_id": 1}
