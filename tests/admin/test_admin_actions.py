"""Admin actions and pages delegate to services; failures become messages, never a 500.

Services are replaced by stand-in modules, so these tests exercise the admin only.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import types

import pytest
from django.conf import settings
from django.urls import reverse

from connectors.base import ConnectorError
from core import models as m
from tests.admin.forms import form_data


def fake_service(monkeypatch, module: str, **functions) -> None:
    """Install a stand-in for `core.services.<module>` for one test."""
    stand_in = types.ModuleType(f"core.services.{module}")
    for name, function in functions.items():
        setattr(stand_in, name, function)
    monkeypatch.setitem(sys.modules, f"core.services.{module}", stand_in)


def run_action(client, model: type, action: str, objects) -> str:
    """Run a changelist action and return the page it redirects to (messages are capfirst-ed)."""
    url = reverse(f"admin:core_{model._meta.model_name}_changelist")
    data = {"action": action, "_selected_action": [o.pk for o in objects]}
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_test_connection_reports_success(admin_client, world, monkeypatch):
    fake_service(
        monkeypatch,
        "apps",
        app_test_connection=lambda *, app: f"connected to {app.options['host']}",
    )
    html = run_action(admin_client, m.App, "test_connection", [world["app"]])
    assert "Warehouse: connected to db.local" in html


def test_test_connection_shows_the_connector_error_message(admin_client, world, monkeypatch):
    def failing(*, app):
        raise ConnectorError("password authentication failed", permanent=True)

    fake_service(monkeypatch, "apps", app_test_connection=failing)
    html = run_action(admin_client, m.App, "test_connection", [world["app"]])
    assert "Warehouse: password authentication failed" in html
    assert "Traceback" not in html


def test_an_unexpected_error_names_only_its_class(admin_client, world, monkeypatch):
    def crashing(*, app):
        raise RuntimeError("postgres://user:hunter2@db/x is unreachable")

    fake_service(monkeypatch, "apps", app_test_connection=crashing)
    html = run_action(admin_client, m.App, "test_connection", [world["app"]])
    assert "unexpected RuntimeError" in html
    assert "hunter2" not in html


def test_run_now_starts_a_run_of_the_schedule(admin_client, world, monkeypatch):
    calls = []

    def run_enqueue(*, schedule, full=False):
        calls.append((schedule, full))
        return world["run"]

    fake_service(monkeypatch, "runs", run_enqueue=run_enqueue)
    other = world["other_source"]  # has no schedule
    html = run_action(admin_client, m.Source, "run_now", [world["source"], other])
    assert calls == [(world["schedule"], False)]
    assert f">#{world['run'].pk}</a> started." in html
    assert "Companies has no schedule" in html

    calls.clear()
    run_action(admin_client, m.Schedule, "run_now", [world["schedule"]])
    assert calls == [(world["schedule"], False)]


def test_recompute_starts_a_group_run(admin_client, world, monkeypatch):
    fake_service(monkeypatch, "groups", group_recompute_enqueue=lambda *, group: world["run"])
    html = run_action(admin_client, m.Group, "recompute", [world["group"]])
    assert "Vips: recompute run" in html


def test_retry_failed_exports_reports_the_count(admin_client, world, monkeypatch):
    fake_service(monkeypatch, "exports", exports_retry_failed=lambda *, destination: 3)
    html = run_action(admin_client, m.Destination, "retry_failed_exports", [world["destination"]])
    assert "Crm: 3 failed export(s) queued again." in html


def test_preview_page_shows_rows(admin_client, world, monkeypatch):
    rows = [{"id": 1, "email": "ada@example.com"}, {"id": 2, "email": None, "vip": True}]
    fake_service(monkeypatch, "sources", source_preview=lambda *, source, limit: rows[:limit])
    source = world["source"]
    change = admin_client.get(
        reverse("admin:core_source_change", args=[source.pk])
    ).content.decode()
    url = reverse("admin:core_source_preview", args=[source.pk])
    assert url in change

    response = admin_client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert "ada@example.com" in html
    assert "<span>vip</span>" in html


def test_preview_page_shows_a_connector_error(admin_client, world, monkeypatch):
    def failing(*, source, limit):
        raise ConnectorError('relation "users" does not exist')

    fake_service(monkeypatch, "sources", source_preview=failing)
    response = admin_client.get(reverse("admin:core_source_preview", args=[world["source"].pk]))
    assert response.status_code == 200
    assert "Relation &quot;users&quot; does not exist" in response.content.decode()


def test_adding_an_api_key_shows_it_once_and_stores_its_hash(admin_client, world, admin_user):
    url = reverse("admin:core_apikey_add")
    data = form_data(admin_client.get(url), "apikey_form")
    data["name"] = "reporting"
    data["permissions-TOTAL_FORMS"] = "1"
    data.update(
        {"permissions-0-topic": "records", "permissions-0-read": "on", "permissions-0-id": ""}
    )
    response = admin_client.post(url, data, follow=True)

    assert response.status_code == 200
    api_key = m.ApiKey.objects.get(name="reporting")
    assert api_key.created_by == admin_user
    assert api_key.permissions.get().topic == "records"
    html = response.content.decode()
    prefix = f"grp_{api_key.prefix}."
    assert prefix in html
    key = html[html.index(prefix) :].split()[0]
    expected = hmac.new(settings.API_KEY_PEPPER.encode(), key.encode(), hashlib.sha256).hexdigest()
    assert api_key.hashed_key == expected

    change = admin_client.get(
        reverse("admin:core_apikey_change", args=[api_key.pk])
    ).content.decode()
    assert key not in change


@pytest.mark.parametrize("model", [m.App, m.Source, m.Destination], ids=lambda x: x.__name__)
def test_changelists_hide_secrets(admin_client, world, model):
    html = admin_client.get(
        reverse(f"admin:core_{model._meta.model_name}_changelist")
    ).content.decode()
    assert "s3cr3t" not in html
