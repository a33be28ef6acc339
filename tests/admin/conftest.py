"""Fixtures for the admin tests: fake connectors (so the tests need no real connector) and a small
world holding one object of every domain model."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from connectors import registry
from connectors.base import AppConnector, DestinationConnector, Option, SourceConnector
from core import models as m
from core.choices import ApiTopic, ExportState, PropertyType, RuleOp, RunCreator, RunState
from core.services.api_keys import api_key_create
from tests.factories import (
    make_app,
    make_destination,
    make_group,
    make_model,
    make_property,
    make_record,
    make_source,
)

SECRET = "s3cr3t-Pa55word-XYZ"


class FakeApp(AppConnector):
    key = "admintest"
    label = "Admin test app"
    options = (
        Option("host", "Host", required=True),
        Option("port", "Port", type="number", default=5432),
        Option("ssl", "Use TLS", type="boolean", default=True),
        Option(
            "mode",
            "Mode",
            type="choice",
            choices=(("fast", "Fast"), ("safe", "Safe")),
            default="safe",
        ),
        Option("notes", "Notes", type="textarea"),
        Option("password", "Password", type="secret", required=True),
    )

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, str]:
        errors = super().validate_options(options)
        port = options.get("port")
        if port is not None and not 0 < port < 65536:
            errors["port"] = "The port must be between 1 and 65535."
        return errors

    def test_connection(self) -> str:
        return "connected"


class FakeSource(SourceConnector):  # never instantiated: the admin only reads its declarations
    key = "admintest-table"
    app_key = "admintest"
    label = "Admin test table"
    options = (Option("table", "Table", required=True),)
    property_options = (
        Option("column", "Column", required=True),
        Option(
            "aggregationMethod",
            "Aggregation",
            type="choice",
            choices=(("exact", "Exact"), ("count", "Count")),
            required=True,
            default="exact",
        ),
    )


class FakeDestination(DestinationConnector):  # never instantiated
    key = "admintest-export"
    app_key = "admintest"
    label = "Admin test export"
    options = (
        Option("table", "Table", required=True),
        Option("primaryKey", "Primary key"),
        Option("token", "Token", type="secret"),
    )


@pytest.fixture(autouse=True)
def fake_connectors(monkeypatch):
    """Register the fakes for one test only (the registry is process-wide)."""
    monkeypatch.setitem(registry._apps, FakeApp.key, FakeApp)
    monkeypatch.setitem(registry._sources, FakeSource.key, FakeSource)
    monkeypatch.setitem(registry._destinations, FakeDestination.key, FakeDestination)


@pytest.fixture
def world(db, admin_user) -> dict[str, Any]:
    """One object of every domain model, wired together like a real configuration."""
    now = timezone.now()
    model = make_model(name="customers")
    other_model = make_model(name="accounts")
    app = make_app(
        name="warehouse",
        type=FakeApp.key,
        options={"host": "db.local", "port": 5432, "ssl": True, "mode": "safe"},
        secret_options={"password": SECRET},
    )
    m.AppRefreshQuery.objects.create(app=app, query="SELECT max(updated_at) FROM users")
    source = make_source(app=app, model=model, name="users", is_primary=True)
    email = make_property(
        source=source, key="email", type=PropertyType.EMAIL, unique=True, is_primary_key=True
    )
    vip = make_property(source=source, key="vip", type=PropertyType.BOOLEAN)
    other_source = make_source(app=app, model=other_model, name="companies")
    other_property = make_property(source=other_source, key="domain")
    m.PropertyFilter.objects.create(property=vip, key="deleted", op="eq", match="false")
    m.SourceMapping.objects.create(source=source, remote_key="email", property=email)
    schedule = m.Schedule.objects.create(source=source, recurring=True, recurring_frequency=3600)
    m.ScheduleFilter.objects.create(schedule=schedule, key="deleted", op="eq", match="false")
    record = make_record(model=model)
    m.RecordProperty.objects.create(
        record=record,
        property=email,
        raw_value="ada@example.com",
        value_text="ada@example.com",
        unique_value="ada@example.com",
    )
    group = make_group(model=model, name="vips")
    m.GroupRule.objects.create(group=group, property=vip, op=RuleOp.EQ, match="true")
    m.GroupMember.objects.create(group=group, record=record, joined_at=now)
    destination = make_destination(
        app=app, model=model, name="crm", secret_options={"token": SECRET}
    )
    m.DestinationMapping.objects.create(destination=destination, property=email, remote_key="email")
    m.DestinationGroupMembership.objects.create(
        destination=destination, group=group, remote_key="VIP"
    )
    run = m.Run.objects.create(
        creator_type=RunCreator.SCHEDULE, source=source, schedule=schedule, state=RunState.COMPLETE
    )
    m.Import.objects.create(run=run, source=source, batch=1, rows_read=1, record_ids=[record.pk])
    m.Export.objects.create(
        destination=destination,
        record=record,
        run=run,
        new_properties={"email": "ada@example.com"},
        state=ExportState.FAILED,
        error_message="remote said no",
    )
    api_key, _ = api_key_create(name="ci", created_by=admin_user)
    m.ApiKeyPermission.objects.create(api_key=api_key, topic=ApiTopic.RECORDS, read=True)
    m.Setting.objects.get_or_create(plugin="core", key="admin-test", defaults={"value": "1"})
    return {
        "model": model,
        "other_model": other_model,
        "app": app,
        "source": source,
        "email": email,
        "vip": vip,
        "other_source": other_source,
        "other_property": other_property,
        "schedule": schedule,
        "record": record,
        "group": group,
        "destination": destination,
        "run": run,
        "api_key": api_key,
    }
