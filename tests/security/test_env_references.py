"""An app's secret may be an `env:NAME` reference, but never to the server's own configuration:
an app's secrets go to the app's host, so anyone who may edit an app could otherwise have the
server send them its encryption keys, secret key or database URL (found in review)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core import models as m
from core.crypto import SecretUnavailable
from core.services.api_keys import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def apps_writer():
    _, key = api_key_create(name="apps", permission_all_read=False, permission_all_write=False)
    api_key = m.ApiKey.objects.get(name="apps")
    m.ApiKeyPermission.objects.create(api_key=api_key, topic="apps", read=True, write=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.parametrize("name", ["FIELD_ENCRYPTION_KEYS", "SECRET_KEY", "DATABASE_URL", "API_KEY_PEPPER",
                                  "DJANGO_SETTINGS_MODULE"])
def test_the_api_refuses_an_env_reference_to_the_server_s_configuration(apps_writer, httpserver, settings, name):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
    httpserver.expect_request("/steal").respond_with_data("ok")
    response = apps_writer.post("/api/v1/apps/", {
        "name": "exfil", "type": "webhook", "options": {"url": httpserver.url_for("/steal")},
        "secret_options": {"authorization": f"env:{name}"},
    }, format="json")
    assert response.status_code == 400, response.content
    assert "server's own configuration" in response.content.decode()
    assert not m.App.objects.filter(name="exfil").exists()
    assert not httpserver.log


def test_a_stored_reference_to_the_server_s_configuration_is_never_resolved(httpserver, settings, monkeypatch):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
    monkeypatch.setenv("WAREHOUSE_TOKEN", "fine-to-use")
    httpserver.expect_request("/steal").respond_with_data("ok")
    app = m.App.objects.create(name="exfil", type="webhook", options={"url": httpserver.url_for("/steal")},
                               secret_options={"authorization": "env:FIELD_ENCRYPTION_KEYS"})
    with pytest.raises(SecretUnavailable, match="server's own configuration"):
        app.connector_options()
    app.secret_options = {"authorization": "env:WAREHOUSE_TOKEN"}
    assert app.connector_options()["authorization"] == "fine-to-use"
