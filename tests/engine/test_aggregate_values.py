"""Aggregated values as Grouparoo computes them, end to end through a real SQLite source: sums
of no rows are 0, and sums of decimals are exact everywhere a person or a destination sees
them (the admin, the API, the destination row)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core import models as m
from core.services.api_keys import api_key_create
from tests.engine.conftest import make_shop
from tests.engine.helpers import sync_all

pytestmark = pytest.mark.django_db

# 273.78 + 55.41 + 179.98 adds up to 509.16999999999996 in binary floats, 0.1 + 0.2 to
# 0.30000000000000004; users 3 and 4 buy nothing.
PURCHASES = [
    (1, 1, 273.78, "2026-01-05T00:00:00"),
    (2, 1, 55.41, "2026-01-06T00:00:00"),
    (3, 1, 179.98, "2026-01-07T00:00:00"),
    (4, 2, 0.1, "2026-01-05T00:00:00"),
    (5, 2, 0.2, "2026-01-06T00:00:00"),
]


def spend_by_user(shop) -> dict[int, m.RecordProperty]:
    ids = {
        rp.record_id: int(rp.raw_value)
        for rp in m.RecordProperty.objects.filter(property=shop.props["user_id"])
    }
    return {
        ids[rp.record_id]: rp
        for rp in m.RecordProperty.objects.filter(property=shop.props["total_spend"])
    }


def test_sums_are_exact_in_the_admin_the_api_and_the_destination(tmp_path, admin_client):
    shop = make_shop(tmp_path, purchases=PURCHASES)
    for run in sync_all(shop):
        assert run.state == "complete", run.error
    spend = spend_by_user(shop)
    assert {u: (rp.raw_value, rp.value) for u, rp in spend.items() if u <= 2} == {
        1: ("509.17", 509.17),
        2: ("0.3", 0.3),
    }
    crm = {r["id"]: r["total_spend"] for r in shop.dst_rows()}
    assert (crm["1"], crm["2"]) == (509.17, 0.3)
    _, key = api_key_create(name="reader", permission_all_read=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = api.get(f"/api/v1/records/{spend[1].record_id}/")
    assert response.status_code == 200
    assert response.json()["properties"]["total_spend"]["value"] == 509.17
    assert b"509.17" in response.content and b"509.1699" not in response.content
    page = admin_client.get(reverse("admin:core_record_change", args=[spend[1].record_id])).content
    assert b"509.17" in page and b"509.1699" not in page and b"509.1700" not in page


def test_sums_of_no_purchases_are_zero_as_counts(tmp_path):
    """Grouparoo defaults sum and count to 0 for a record without rows."""
    shop = make_shop(tmp_path, purchases=PURCHASES)
    sync_all(shop)
    spend = spend_by_user(shop)
    assert (spend[3].value, spend[4].value) == (0, 0)
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert [(crm[u]["total_spend"], crm[u]["purchase_count"]) for u in ("3", "4")] == [
        (0, 0),
        (0, 0),
    ]


def test_a_source_that_answers_nothing_for_a_key_still_gives_sums_and_counts_of_zero(tmp_path):
    """A connector (a plugin) may leave keys without rows out of its answer: the pipeline
    reads a missing count or sum as 0, other aggregates as no value."""
    from core.engine.imports import prepare_batch, source_plan

    shop = make_shop(tmp_path, purchases=PURCHASES)
    plan = source_plan(shop.purchases)
    prepared = prepare_batch(plan=plan, rows=[{"user_id": 3}], aggregates={}, fragments=False)
    numbers = {row[1]: (row[3], row[5]) for row in prepared.staged}
    props = shop.props
    assert numbers[props["total_spend"].pk] == ("0", 0.0)
    assert numbers[props["purchase_count"].pk] == ("0", 0.0)
    assert numbers[props["last_purchase_at"].pk] == (None, None)
