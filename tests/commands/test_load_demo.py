"""`manage.py load_demo`: the demo databases and a configuration touching every concept, once."""

from __future__ import annotations

import datetime as dt
import sqlite3
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from core import models as m
from core.demo import (
    INVALID_EMAIL_USER,
    INVALID_LTV_USER,
    USER_COUNT,
    demo_databases_create,
    demo_paths,
)

pytestmark = pytest.mark.django_db

CONFIG_MODELS = [
    m.RecordModel, m.App, m.AppRefreshQuery, m.Source, m.SourceMapping, m.Property,
    m.PropertyFilter, m.Schedule, m.ScheduleFilter, m.Group, m.GroupRule, m.Destination,
    m.DestinationMapping, m.DestinationGroupMembership,
]  # fmt: skip


def load(tmp_path, *args: str) -> str:
    out = StringIO()
    call_command("load_demo", "--dir", str(tmp_path), *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_app_config("core").get_models()
    }


def rows(path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_loading_twice_creates_everything_once(tmp_path):
    first = load(tmp_path)
    after_first = counts()
    second = load(tmp_path)

    assert counts() == after_first
    assert "created" in first
    assert "nothing to do" in second
    for model in CONFIG_MODELS:
        assert model.objects.exists(), f"the demo has no {model._meta.label}"


def test_the_demo_touches_every_concept(tmp_path):
    load(tmp_path)

    model = m.RecordModel.objects.get(name="customers")
    users = m.Source.objects.get(name="Users")
    assert users.is_primary and users.model == model
    assert m.Source.objects.filter(model=model, is_primary=False).count() >= 1
    assert m.Property.objects.get(model=model, is_primary_key=True).key == "user_id"
    assert set(
        m.Property.objects.filter(source__name="Purchases").values_list("key", flat=True)
    ) >= {
        "purchase_count",
        "total_spend",
        "last_purchase_at",
    }
    assert m.PropertyFilter.objects.filter(property__key="large_purchases").exists()
    assert m.Schedule.objects.get(source=users).options == {"column": "updated_at"}
    assert set(m.Group.objects.values_list("name", flat=True)) == {
        "High value",
        "Recent buyers",
        "VIPs in Europe",
    }
    destination = m.Destination.objects.get(name="CRM contacts")
    assert destination.mappings.get(remote_key="id").property.key == "user_id"
    assert destination.group_memberships.count() == 2
    assert m.App.objects.get(name="Shop database").options == {
        "path": str(tmp_path.resolve() / "shop.sqlite3")
    }


def test_the_shop_database_has_users_purchases_and_invalid_values(tmp_path):
    load(tmp_path)
    shop, crm = demo_paths(tmp_path).shop, demo_paths(tmp_path).crm

    assert rows(shop, "SELECT COUNT(*) FROM users") == [(USER_COUNT,)]
    purchases = rows(shop, "SELECT COUNT(*) FROM purchases")[0][0]
    assert 2 * USER_COUNT <= purchases <= 4 * USER_COUNT
    email = rows(shop, f"SELECT email FROM users WHERE id = {INVALID_EMAIL_USER}")[0][0]
    assert "@" not in email
    assert rows(shop, f"SELECT ltv FROM users WHERE id = {INVALID_LTV_USER}") == [("n/a",)]
    assert rows(crm, "SELECT COUNT(*) FROM crm_contacts") == [(0,)]
    assert rows(crm, "SELECT COUNT(*) FROM crm_groups") == [(0,)]


def test_existing_demo_databases_are_left_alone_unless_reset(tmp_path):
    load(tmp_path)
    crm = demo_paths(tmp_path).crm
    conn = sqlite3.connect(crm)
    with conn:
        conn.execute("INSERT INTO crm_contacts (id, email) VALUES ('1', 'synced@example.com')")
    conn.close()

    load(tmp_path)
    assert rows(crm, "SELECT COUNT(*) FROM crm_contacts") == [(1,)]

    load(tmp_path, "--reset")
    assert rows(crm, "SELECT COUNT(*) FROM crm_contacts") == [(0,)]


def test_the_shop_data_is_deterministic(tmp_path):
    now = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)
    a, b = demo_paths(tmp_path / "a"), demo_paths(tmp_path / "b")
    demo_databases_create(paths=a, now=now)
    demo_databases_create(paths=b, now=now)
    for table in ("users", "purchases"):
        sql = f"SELECT * FROM {table} ORDER BY id"
        assert rows(a.shop, sql) == rows(b.shop, sql)


def test_the_demo_api_key_is_printed_once_and_reads_records(tmp_path):
    pytest.importorskip("core.services.api_keys")
    first = load(tmp_path)
    second = load(tmp_path)

    assert "Demo API key" in first
    assert "Demo API key" not in second
    key = m.ApiKey.objects.get(name="demo")
    permission = key.permissions.get(topic="records")
    assert permission.read and not permission.write
    assert key.hashed_key not in first
