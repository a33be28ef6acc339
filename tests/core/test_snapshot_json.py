"""Export snapshots are kept as written (core.fields.SnapshotJSONField): PostgreSQL `json`, read
back as the same values through the ORM and as text by raw SQL (the senders decode it once)."""

from __future__ import annotations

import pytest
from django.db import connection

from core import models as m
from core.engine import db
from core.engine.exports import _json
from tests.factories import make_destination, make_model, make_record

pytestmark = pytest.mark.django_db

SNAPSHOT = {"email": "ada@example.com", "ltv": 512.5, "count": 3, "vip": True, "note": 'tab\tquote"\\', "none": None}


def test_snapshots_round_trip_through_the_orm_and_raw_sql():
    model = make_model()
    export = m.Export.objects.create(
        destination=make_destination(model=model),
        record=make_record(model=model),
        old_properties={},
        new_properties=SNAPSHOT,
        new_groups=["high_value"],
    )
    fresh = m.Export.objects.get(pk=export.pk)
    assert fresh.new_properties == SNAPSHOT
    assert fresh.old_properties == {}
    assert fresh.new_groups == ["high_value"]
    assert fresh.old_groups == []
    raw = db.fetchall("SELECT new_properties, new_groups FROM core_export WHERE id = %s", [export.pk])[0]
    assert all(isinstance(v, str) for v in raw)  # decoded by whoever reads it, once
    assert _json(raw[0]) == SNAPSHOT
    assert _json(raw[1]) == ["high_value"]
    # Django's JSONField lookups (the admin, the API) work on the column as on jsonb.
    exports = m.Export.objects.all()
    assert exports.filter(new_properties__email="ada@example.com").get() == export
    assert not exports.filter(new_properties__email="eve@example.com").exists()
    assert exports.filter(new_properties__ltv__gt=500, new_properties__has_key="vip").get() == export
    assert exports.filter(old_properties={}, new_groups__0="high_value").get() == export
    if connection.features.supports_json_field_contains:
        assert exports.filter(new_groups__contains=["high_value"]).get() == export
    assert list(exports.values_list("new_properties__count", flat=True)) == [3]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the column type is PostgreSQL's")
def test_snapshot_columns_are_json_not_jsonb():
    types = dict(
        db.fetchall(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'core_export' "
            "AND column_name IN ('old_properties', 'new_properties', 'old_groups', 'new_groups')",
            [],
        )
    )
    assert types == dict.fromkeys(("old_properties", "new_properties", "old_groups", "new_groups"), "json")
