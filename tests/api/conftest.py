"""Fixtures for the API tests: a working shop world (SQLite source and destination files) plus an
app and a destination with secrets, API keys made to measure, and a client that records every
response so that no test can leak a secret unnoticed (see `no_secret_in_any_response`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from connectors import registry
from connectors.base import (
    AppConnector,
    ConnectorError,
    DestinationConnector,
    ExportResult,
    MappingOptions,
    Option,
)
from core import models as m
from core.choices import ExportState, RunCreator, RunState
from core.services.api_keys import api_key_create, api_key_set_permissions
from tests.engine.conftest import Shop, make_shop

APP_SECRET = "app-Pa55word-9f3Kq"
DEST_SECRET = "dest-T0ken-7Zx2W"
NEW_SECRET = "new-Pa55word-Qq81"


class SecretApp(AppConnector):
    """An app whose password is secret; its connection test fails when asked to."""

    key = "apitest"
    label = "API test app"
    options = (
        Option("host", "Host", required=True),
        Option("port", "Port", type="number"),
        Option("password", "Password", type="secret", required=True),
    )

    def test_connection(self) -> str:
        if self.app_options.get("host") == "down.invalid":
            raise ConnectorError("Connection refused by down.invalid")
        return f"connected to {self.app_options['host']}"


class SecretDestination(DestinationConnector):
    """A destination with a secret token that refuses every export (never reaches anything)."""

    key = "apitest-export"
    app_key = "apitest"
    label = "API test export"
    options = (Option("list", "List", required=True), Option("token", "Token", type="secret"))

    def mapping_options(self) -> MappingOptions:
        return MappingOptions()

    def export_batch(self, exports, *, operations):
        return [ExportResult(p.export_id, success=False, error="test destination", level="info")
                for p in exports]


@pytest.fixture(autouse=True)
def api_connectors(monkeypatch):
    monkeypatch.setitem(registry._apps, SecretApp.key, SecretApp)
    monkeypatch.setitem(registry._destinations, SecretDestination.key, SecretDestination)


class RecordingClient(APIClient):
    """An APIClient that keeps every response it got (for the secret scan)."""

    def __init__(self, log: list, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log = log

    def request(self, **kwargs: Any):
        response = super().request(**kwargs)
        self.log.append((kwargs.get("REQUEST_METHOD"), kwargs.get("PATH_INFO"), response))
        return response


@dataclass
class Keys:
    """Makes API keys; remembers their plaintexts, which must never appear in a response."""

    plaintexts: list[str] = field(default_factory=list)

    def make(self, *, read=(), write=(), all_read=False, all_write=False, name: str = "",
             **fields: Any) -> str:
        api_key, key = api_key_create(
            name=name or f"key{len(self.plaintexts)}-{timezone.now().timestamp()}",
            permission_all_read=all_read, permission_all_write=all_write, **fields,
        )
        api_key_set_permissions(api_key=api_key, read=read, write=write)
        self.plaintexts.append(key)
        return key


@pytest.fixture
def response_log() -> list:
    return []


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture(autouse=True)
def no_secret_in_any_response(request, response_log, keys):
    """After every API test: no response carried an app or destination secret, nor an API key's
    plaintext (except the one answer that created that key)."""
    yield
    if not response_log:
        return
    created: dict[str, int] = {}
    for method, path, response in response_log:
        body = response.content.decode("utf-8", "replace")
        for secret in (APP_SECRET, DEST_SECRET, NEW_SECRET, *keys.plaintexts):
            assert secret not in body, f"{method} {path} leaked a secret"
            assert secret not in str(response.headers), f"{method} {path} leaked a secret in a header"
        if method == "POST" and path.rstrip("/").endswith("/api-keys") and response.status_code == 201:
            created[response.json()["key"]] = 0
    for _method, _path, response in response_log:
        body = response.content.decode("utf-8", "replace")
        for key in created:
            created[key] += key in body
    assert all(n == 1 for n in created.values()), "a created API key was shown more than once"


@pytest.fixture
def client_for(response_log):
    """client_for(key) -> an APIClient sending `Authorization: Bearer <key>` (None: no key)."""

    def make(key: str | None = None, **headers: Any) -> RecordingClient:
        client = RecordingClient(response_log)
        if key is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}", **headers)
        elif headers:
            client.credentials(**headers)
        return client

    return make


@pytest.fixture
def anon(client_for) -> RecordingClient:
    return client_for(None)


@pytest.fixture
def full(client_for, keys) -> RecordingClient:
    """A client whose key reads and writes every topic."""
    return client_for(keys.make(all_read=True, all_write=True))


@dataclass
class World:
    shop: Shop
    secret_app: m.App
    secret_destination: m.Destination
    refresh_query: m.AppRefreshQuery
    record: m.Record
    run: m.Run
    failed_export: m.Export
    setting: m.Setting


@pytest.fixture
def world(db, tmp_path) -> World:
    """The engine tests' shop (two SQLite sources, a SQLite CRM destination, a group) with one
    record imported, plus an app and a destination holding secrets, a refresh query, a finished
    run and a failed export."""
    from core.engine.single import record_import_now

    shop = make_shop(tmp_path)
    record = record_import_now(model=shop.model, property_key="user_id", value="1", export=False)
    secret_app = m.App.objects.create(
        name="mailer", type=SecretApp.key, options={"host": "mail.example.com"},
        secret_options={"password": APP_SECRET},
    )
    secret_destination = m.Destination.objects.create(
        name="newsletter", app=secret_app, model=shop.model, type=SecretDestination.key,
        options={"list": "all"}, secret_options={"token": DEST_SECRET},
    )
    refresh_query = m.AppRefreshQuery.objects.create(
        app=shop.users.app, query="SELECT MAX(updated_at) FROM users"
    )
    run = m.Run.objects.create(
        creator_type=RunCreator.SCHEDULE, source=shop.users, schedule=shop.users_schedule,
        state=RunState.COMPLETE,
    )
    m.Import.objects.create(run=run, source=shop.users, batch=1, rows_read=1, record_ids=[record.pk])
    failed_export = m.Export.objects.create(
        destination=secret_destination, record=record, run=run, state=ExportState.FAILED,
        new_properties={"email": "ada@example.com"}, error_message="remote said no",
    )
    setting, _ = m.Setting.objects.get_or_create(
        plugin="core", key="exports-max-attempts", defaults={"value": "5", "type": "number"}
    )
    return World(shop, secret_app, secret_destination, refresh_query, record, run, failed_export, setting)
