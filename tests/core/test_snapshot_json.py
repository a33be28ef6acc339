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


# Snapshot JSON is written with orjson and read with it (core.engine.exports._dumps / _json);
# the json module stays the fallback where orjson would not give the same values.

def test_dumps_and_json_give_back_what_json_dumps_with_str_default_would():
    import datetime as dt
    import json
    from decimal import Decimal

    from core.engine.exports import _dumps

    when = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    cases = [
        SNAPSHOT,
        {"big": 2**70, "neg": -(2**64), "max": 2**64 - 1, "phone": "12345678901234567890123"},
        {"é": "naïve ☃ \u2028", "when": when, "day": dt.date(2026, 1, 2), "price": Decimal("1.10")},
        {"tiny": 5e-324, "huge": 1e16, "third": 1 / 3, "neg0": -0.0, "t": True, "f": False},
        ["high_value", "recent_buyers"],
        ["vip", 3, None],
        {},
        [],
    ]
    for value in cases:
        expected = json.loads(json.dumps(value, default=str))
        text = _dumps(value)
        assert json.loads(text) == expected, value
        assert _json(text) == expected, value
        assert [type(v) for v in (_json(text).values() if isinstance(value, dict) else _json(text))] == [
            type(v) for v in (expected.values() if isinstance(value, dict) else expected)
        ]
    # A datetime that reaches _dumps as it is keeps str()'s form, as json.dumps(default=str) did.
    assert _json(_dumps({"when": when}))["when"] == "2026-01-02 03:04:05.000006+00:00"


def test_json_reads_exactly_what_orjson_would_not():
    assert _json('{"id": 1180591620717411303424}') == {"id": 2**70}  # orjson: a float
    assert type(_json('{"id": 18446744073709551616}')["id"]) is int
    nan = _json('{"x": NaN}')["x"]  # json's extension, which orjson refuses
    assert nan != nan
    with pytest.raises(ValueError):
        _json('{"a": 1} trailing')
    assert _json({"already": "decoded"}) == {"already": "decoded"}


def test_fresh_snapshots_are_the_export_form_of_the_values_written():
    import datetime as dt
    import json
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from core.choices import PropertyType as P
    from core.engine.exports import (
        BS,
        BS2,
        DestinationPlan,
        _snapshot,
        _snapshot_mapping,
        fresh_snapshots,
    )

    utc = dt.datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=dt.UTC)
    berlin = dt.datetime(2026, 3, 4, 6, 6, 7, tzinfo=ZoneInfo("Europe/Berlin"))  # not UTC: converted
    mapping = [("email", 1, P.EMAIL, False), ("n", 2, P.INTEGER, False), ("ltv", 3, P.FLOAT, False),
               ("at", 4, P.DATE, False), ("ok", 5, P.BOOLEAN, False), ("note", 6, P.STRING, False)]
    plan = DestinationPlan(destination=SimpleNamespace(pk=7), mapping=mapping, groups={}, collection="model",
                           tracked_group_id=None)
    fresh = {
        10: {1: ["a@example.com"], 2: [3.0], 3: [1.5], 4: [utc], 5: [True], 6: ['tab\t"back\\slash" é']},
        11: {1: ["b@example.com"], 4: [berlin], 6: [None]},
        12: {2: [float(2**53)], 4: [dt.datetime(1, 1, 1, tzinfo=dt.UTC)]},
    }
    texts = fresh_snapshots([plan], fresh)[7]
    flat = _snapshot_mapping(plan)
    for rid, rvals in fresh.items():
        expected = _snapshot(flat, rvals)
        got = json.loads(texts[rid].replace(BS2, BS))  # COPY text: backslashes doubled
        assert got == expected, rid
        assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]
    assert json.loads(texts[11].replace(BS2, BS))["at"] == "2026-03-04T05:06:07+00:00"
    assert json.loads(texts[12].replace(BS2, BS))["at"] == "0001-01-01T00:00:00+00:00"
