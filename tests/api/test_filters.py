"""List filters return what they claim, and the records list stays at a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core import models as m
from core.choices import ExportState, RecordState, RunCreator, RunState
from tests.engine.helpers import sync_all

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(r["id"] for r in response.json()["results"])


@pytest.fixture
def synced(world):
    sync_all(world.shop)
    return world


def record_of(world, user_id: int) -> int:
    prop = world.shop.props["user_id"]
    return m.RecordProperty.objects.get(property=prop, unique_value=str(user_id)).record_id


@pytest.mark.parametrize(("query", "users"), [
    ("property=email&value=cy@example.com", [3]),
    ("property=user_id&value=2", [2]),
    ("property=user_id&value=2.0", [2]),
    ("property=ltv&value=600", [3]),
    ("property=first_name&value=Dee", [4]),
    ("property=first_name&value=dee", []),
    ("property=purchase_count&value=2", [1]),
    ("property=last_purchase_at&value=2026-01-07T00:00:00Z", [1]),
    ("property=ltv&value=lots", []),
    ("property=nope&value=1", []),
    ("property=email&value=", []),
])
def test_records_by_property_value(query, users, synced, full):
    expected = sorted(record_of(synced, u) for u in users)
    assert ids(full.get(f"/api/v1/records/?{query}")) == expected
    model = synced.shop.model.pk
    assert ids(full.get(f"/api/v1/records/?{query}&model={model}")) == expected


def test_property_filter_needs_both_parts(synced, full):
    response = full.get("/api/v1/records/?property=email")
    assert response.status_code == 400 and "value" in response.json()["errors"]
    response = full.get("/api/v1/records/?value=x")
    assert response.status_code == 400 and "property" in response.json()["errors"]


def test_records_by_model_state_invalid_and_group(synced, full):
    shop = synced.shop
    everyone = sorted(m.Record.objects.values_list("pk", flat=True))
    other = m.Record.objects.create(model=m.RecordModel.objects.create(name="accounts"))
    assert ids(full.get(f"/api/v1/records/?model={shop.model.pk}")) == everyone
    m.Record.objects.filter(pk=everyone[0]).update(state=RecordState.DELETED, invalid=True)
    assert ids(full.get("/api/v1/records/?state=deleted")) == [everyone[0]]
    assert ids(full.get("/api/v1/records/?invalid=true")) == [everyone[0]]
    assert other.pk in ids(full.get("/api/v1/records/?invalid=false"))
    high = sorted(record_of(synced, u) for u in (1, 3))
    assert ids(full.get(f"/api/v1/records/?group={shop.high_value.pk}")) == high
    m.GroupMember.objects.filter(record_id=high[0]).update(left_at=timezone.now())
    assert ids(full.get(f"/api/v1/records/?group={shop.high_value.pk}")) == high[1:]
    assert full.get("/api/v1/records/?state=bogus").status_code == 400
    assert full.get("/api/v1/records/?model=999999").status_code == 400


def test_created_and_updated_ranges(synced, full):
    old = m.RecordModel.objects.create(name="old")
    new = m.RecordModel.objects.create(name="new")
    past = timezone.now() - timedelta(days=3)
    m.RecordModel.objects.filter(pk=old.pk).update(created_at=past, updated_at=past)
    cut = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert old.pk not in ids(full.get(f"/api/v1/models/?created_after={cut}"))
    assert new.pk in ids(full.get(f"/api/v1/models/?created_after={cut}"))
    assert ids(full.get(f"/api/v1/models/?created_before={cut}")) == [old.pk]
    assert ids(full.get(f"/api/v1/models/?updated_before={cut}")) == [old.pk]
    assert full.get("/api/v1/models/?created_after=yesterday").status_code == 400
    records = ids(full.get(f"/api/v1/records/?created_after={cut}"))
    assert records == sorted(m.Record.objects.values_list("pk", flat=True))


def test_config_lists_filter_by_model_source_and_state(synced, full):
    shop = synced.shop
    other_model = m.RecordModel.objects.create(name="accounts")
    assert ids(full.get(f"/api/v1/sources/?model={other_model.pk}")) == []
    assert ids(full.get(f"/api/v1/sources/?model={shop.model.pk}&is_primary=true")) == [shop.users.pk]
    purchase_props = sorted(p.pk for p in shop.props.values() if p.source_id == shop.purchases.pk)
    assert ids(full.get(f"/api/v1/properties/?source={shop.purchases.pk}")) == purchase_props
    assert ids(full.get(f"/api/v1/properties/?model={shop.model.pk}&unique=true")) == sorted(
        [shop.props["user_id"].pk, shop.props["email"].pk])
    assert ids(full.get(f"/api/v1/schedules/?source={shop.users.pk}")) == [shop.users_schedule.pk]
    assert ids(full.get(f"/api/v1/groups/?model={shop.model.pk}")) == [shop.high_value.pk]
    assert ids(full.get(f"/api/v1/destinations/?model={shop.model.pk}&sync_mode=sync")) == sorted(
        [shop.destination.pk, synced.secret_destination.pk])
    assert ids(full.get(f"/api/v1/destinations/?app={synced.secret_app.pk}")) == [synced.secret_destination.pk]
    m.Group.objects.filter(pk=shop.high_value.pk).update(state="draft")
    assert ids(full.get("/api/v1/groups/?state=draft")) == [shop.high_value.pk]
    assert ids(full.get("/api/v1/groups/?state=ready")) == []


def test_runs_imports_and_exports_filters(synced, full):
    shop = synced.shop
    active = m.Run.objects.create(creator_type=RunCreator.MANUAL, group=shop.high_value,
                                  state=RunState.RUNNING)
    assert ids(full.get("/api/v1/runs/?active=true")) == [active.pk]
    assert active.pk not in ids(full.get("/api/v1/runs/?active=false"))
    assert ids(full.get(f"/api/v1/runs/?group={shop.high_value.pk}&state=running")) == [active.pk]
    users_runs = sorted(m.Run.objects.filter(source=shop.users).values_list("pk", flat=True))
    assert ids(full.get(f"/api/v1/runs/?source={shop.users.pk}")) == users_runs
    record = record_of(synced, 2)
    expected = sorted(i.pk for i in m.Import.objects.all() if record in i.record_ids)
    assert expected and ids(full.get(f"/api/v1/imports/?record={record}")) == expected
    assert ids(full.get(f"/api/v1/imports/?record={record}&source={shop.purchases.pk}")) == sorted(
        i.pk for i in m.Import.objects.filter(source=shop.purchases) if record in i.record_ids)
    assert ids(full.get("/api/v1/exports/?state=failed")) == [synced.failed_export.pk]
    crm = sorted(m.Export.objects.filter(destination=shop.destination, state=ExportState.COMPLETE)
                 .values_list("pk", flat=True))
    assert len(crm) == 4
    assert ids(full.get(f"/api/v1/exports/?destination={shop.destination.pk}&state=complete")) == crm
    assert len(ids(full.get(f"/api/v1/exports/?record={record}"))) == 1


def test_lists_are_paginated(synced, full):
    response = full.get("/api/v1/records/?limit=2&offset=1&ordering=id")
    body = response.json()
    assert body["count"] == 4 and len(body["results"]) == 2 and body["next"] and body["previous"]
    everyone = sorted(m.Record.objects.values_list("pk", flat=True))
    assert [r["id"] for r in body["results"]] == everyone[1:3]
    assert [r["id"] for r in full.get("/api/v1/records/?ordering=-id").json()["results"]] == everyone[::-1]


def test_records_list_has_a_fixed_query_budget(synced, full, django_assert_max_num_queries):
    full.get("/api/v1/records/")  # stamps last_used_at: later requests write nothing
    # auth (key), permission (topic row), count, records, their properties, their groups
    with django_assert_max_num_queries(6):
        few = full.get("/api/v1/records/").json()
    assert few["count"] == 4 and few["results"][0]["groups"]
    for n in range(40):
        record = m.Record.objects.create(model=synced.shop.model)
        m.RecordProperty.objects.create(record=record, property=synced.shop.props["first_name"],
                                        raw_value=f"n{n}", value_text=f"n{n}")
        m.GroupMember.objects.create(group=synced.shop.high_value, record=record, joined_at=timezone.now())
    with django_assert_max_num_queries(6):
        many = full.get("/api/v1/records/?limit=50").json()
    assert len(many["results"]) == 44
    assert many["results"][-1]["properties"]["first_name"]["value"] == "n39"
    assert many["results"][-1]["groups"][0]["name"] == "High value"
    with django_assert_max_num_queries(6):
        assert full.get("/api/v1/records/?property=first_name&value=n3&limit=50").json()["count"] == 1
