"""Import one record now by a unique value, and export one record now."""
from __future__ import annotations

import pytest

from core import models as m
from core.choices import ExportState
from core.engine.single import RecordNotFound, record_export_now, record_import_now
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db


def test_import_one_record_by_its_key_with_secondary_aggregates_and_export(shop):
    record = record_import_now(model=shop.model, property_key="user_id", value="1")
    values = {rp.property.key: rp.value for rp in record.properties.select_related("property")}
    assert values["email"] == "ada@example.com"
    assert values["purchase_count"] == 2 and values["total_spend"] == 40.0
    assert m.Record.objects.count() == 1
    assert m.GroupMember.objects.filter(record=record, group=shop.high_value, left_at__isnull=True).exists()
    assert [r["id"] for r in shop.dst_rows()] == ["1"]


def test_import_one_record_by_another_unique_property(shop):
    sync(shop.users_schedule)
    shop.src_sql("UPDATE users SET ltv = 1 WHERE email = 'cy@example.com'")
    record = record_import_now(model=shop.model, property_key="email", value="cy@example.com")
    assert record.properties.get(property=shop.props["ltv"]).value_number == 1.0
    assert {r["id"]: r["ltv"] for r in shop.dst_rows()}["3"] == 1.0


def test_import_unknown_value_and_non_unique_property_are_refused(shop):
    with pytest.raises(RecordNotFound):
        record_import_now(model=shop.model, property_key="user_id", value="999")
    with pytest.raises(ValueError, match="not a unique property"):
        record_import_now(model=shop.model, property_key="ltv", value="1")
    assert m.Record.objects.count() == 0


def test_export_one_record_now_is_idempotent(shop):
    sync(shop.users_schedule, export=False)
    record = m.Record.objects.order_by("pk").first()
    states = record_export_now(record=record)
    assert states == {shop.destination.pk: ExportState.COMPLETE}
    assert record_export_now(record=record) == states
    assert m.Export.objects.filter(record=record).count() == 1
