"""A webhook URL's credentials (user info, token-like query values) are secrets: the API, the
admin and config apply store them encrypted (the plain `options` keep the URL masked), every
page and answer shows the URL masked, the masked URL sent back keeps them (only for the same
address), `config_export` writes the URL as an `env:` reference, and migration 0015 moves the
URLs stored before. Rows stored before the migration are shown masked too."""

from __future__ import annotations

import html
import importlib
import json

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from core import models as m
from core.config.apply import config_apply
from core.config.export import config_export
from core.services.api_keys import api_key_create
from tests.admin.forms import form_data, page_errors
from tests.config.conftest import write_config

pytestmark = pytest.mark.django_db

USER, PASSWORD, TOKEN, KEY = "bob-U5er", "Pa55-w0rd-x9", "T0ken-abc123", "K3y-qq77"
URL = f"https://{USER}:{PASSWORD}@hooks.example.com/in?token={TOKEN}&x=1&api_key={KEY}"
MASKED = "https://********:********@hooks.example.com/in?token=********&x=1&api_key=********"
SECRETS = (USER, PASSWORD, TOKEN, KEY)


def assert_no_secret(text: str, where: str = "") -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} in {where}"


def plain_columns(app: m.App) -> str:
    """Every column of the app's row except the encrypted one, as stored."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM core_app WHERE id = %s", [app.pk])
        names = [c[0] for c in cursor.description]
        row = cursor.fetchone()
    return repr([value for name, value in zip(names, row, strict=True) if name != "secret_options"])


@pytest.fixture
def api():
    _, key = api_key_create(name="writer", permission_all_read=True, permission_all_write=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_the_api_stores_url_credentials_encrypted_and_reads_the_url_back_masked(api):
    response = api.post(
        "/api/v1/apps/",
        {
            "name": "hooks",
            "type": "webhook",
            "options": {"url": URL},
            "secret_options": {"secret": "sign-it"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["options"] == {"url": MASKED}
    assert response.json()["secret_options"] == {
        "secret": "set",
        "authorization": "not set",
        "url": "set",
    }
    app = m.App.objects.get(name="hooks")
    assert app.options == {"url": MASKED} and app.secret_options == {
        "secret": "sign-it",
        "url": URL,
    }
    assert app.connector_options()["url"] == URL  # what the connector gets
    assert_no_secret(plain_columns(app), "the app's row")
    for path in ("/api/v1/apps/", f"/api/v1/apps/{app.pk}/"):
        assert_no_secret(api.get(path).content.decode(), path)

    # What GET shows, sent back (with a change elsewhere), keeps the credentials.
    shown = api.get(f"/api/v1/apps/{app.pk}/").json()
    response = api.put(
        f"/api/v1/apps/{app.pk}/",
        {"name": "hooks", "type": "webhook", "options": {**shown["options"], "timeout": 5}},
        format="json",
    )
    assert response.status_code == 200, response.content
    app.refresh_from_db()
    assert app.connector_options()["url"] == URL and app.options == {"url": MASKED, "timeout": 5}
    # A new token replaces the stored one; the masked ones stay.
    changed = MASKED.replace("token=********", "token=N3w-tok")
    assert (
        api.patch(
            f"/api/v1/apps/{app.pk}/", {"options": {"url": changed}}, format="json"
        ).status_code
        == 200
    )
    app.refresh_from_db()
    assert app.connector_options()["url"] == URL.replace(TOKEN, "N3w-tok")
    # The masked credentials are not for another host.
    response = api.patch(
        f"/api/v1/apps/{app.pk}/",
        {"options": {"url": MASKED.replace("hooks.", "evil.")}},
        format="json",
    )
    assert response.status_code == 400 and "options.url" in response.json()["errors"]
    # A URL without credentials drops the stored ones.
    assert (
        api.patch(
            f"/api/v1/apps/{app.pk}/",
            {"options": {"url": "https://hooks.example.com/in"}},
            format="json",
        ).status_code
        == 200
    )
    app.refresh_from_db()
    assert app.secret_options == {"secret": "sign-it"} and app.options == {
        "url": "https://hooks.example.com/in"
    }


def test_user_info_next_to_an_authorization_secret_is_refused_on_the_url_option(api):
    response = api.post(
        "/api/v1/apps/",
        {
            "name": "hooks",
            "type": "webhook",
            "options": {"url": URL},
            "secret_options": {"authorization": "Bearer tok-1"},
        },
        format="json",
    )
    assert response.status_code == 400
    assert (
        list(response.json()["errors"]) == ["options.url"]
        and "Authorization" in response.json()["errors"]["options.url"][0]
    )
    assert_no_secret(response.content.decode())
    assert not m.App.objects.exists()


def test_the_api_masks_urls_stored_before_the_split(api):
    legacy = m.App.objects.create(name="old", type="webhook", options={"url": URL})
    for path in ("/api/v1/apps/", f"/api/v1/apps/{legacy.pk}/"):
        body = api.get(path).content.decode()
        assert_no_secret(body, path)
        assert MASKED in body
    # sending the masked URL back stores the credentials encrypted, unchanged
    assert (
        api.patch(
            f"/api/v1/apps/{legacy.pk}/", {"options": {"url": MASKED}}, format="json"
        ).status_code
        == 200
    )
    legacy.refresh_from_db()
    assert legacy.options == {"url": MASKED} and legacy.secret_options == {"url": URL}


def test_the_admin_stores_url_credentials_encrypted_and_never_shows_them(admin_client):
    add = reverse("admin:core_app_add")
    data = form_data(admin_client.get(add, {"type": "webhook"}), "app_form")
    data.update(name="hooks", type="webhook", opt_url=URL, opt_secret="sign-it")
    response = admin_client.post(add, data)
    assert response.status_code == 302, page_errors(response)
    app = m.App.objects.get(name="hooks")
    assert app.options["url"] == MASKED and app.secret_options == {"secret": "sign-it", "url": URL}
    assert_no_secret(plain_columns(app), "the app's row")

    change = reverse("admin:core_app_change", args=[app.pk])
    page = admin_client.get(change)
    assert_no_secret(page.content.decode(), "change page")
    assert html.escape(MASKED) in page.content.decode()
    assert_no_secret(
        admin_client.get(reverse("admin:core_app_changelist")).content.decode(), "changelist"
    )
    # Saving the page as shown keeps the credentials.
    data = form_data(page, "app_form")
    data["opt_timeout"] = "5"
    response = admin_client.post(change, data)
    assert response.status_code == 302, page_errors(response)
    app.refresh_from_db()
    assert app.connector_options()["url"] == URL and app.options["timeout"] == 5
    # Masked credentials moved to another host are refused, on the URL field.
    data["opt_url"] = MASKED.replace("hooks.", "evil.")
    response = admin_client.post(change, data)
    assert response.status_code == 200 and "same scheme, host and port" in response.content.decode()


def test_the_admin_refuses_user_info_next_to_an_authorization_secret(admin_client):
    add = reverse("admin:core_app_add")
    data = form_data(admin_client.get(add, {"type": "webhook"}), "app_form")
    data.update(name="hooks", type="webhook", opt_url=URL, opt_authorization="Bearer tok-1")
    response = admin_client.post(add, data)
    assert (
        response.status_code == 200
        and "Authorization header option is set too" in response.content.decode()
    )
    assert_no_secret(response.content.decode(), "the refused form")
    assert not m.App.objects.exists()


def test_the_admin_masks_urls_stored_before_the_split(admin_client):
    legacy = m.App.objects.create(name="old", type="webhook", options={"url": URL})
    for url in (
        reverse("admin:core_app_change", args=[legacy.pk]),
        reverse("admin:core_app_changelist"),
    ):
        body = admin_client.get(url).content.decode()
        assert_no_secret(body, url)


@pytest.mark.parametrize("stored", ["split", "before the split"])
def test_config_export_writes_the_url_as_an_env_reference_and_apply_restores_it(
    stored, tmp_path, monkeypatch
):
    if stored == "split":
        m.App.objects.create(
            name="hooks", type="webhook", options={"url": MASKED}, secret_options={"url": URL}
        )
    else:
        m.App.objects.create(name="hooks", type="webhook", options={"url": URL})
    result = config_export(directory=tmp_path / "first")
    text = (tmp_path / "first/apps/hooks.json").read_text()
    assert_no_secret(text, "the exported file")
    assert json.loads(text)["options"] == {"url": "env:APP_HOOKS_URL"}
    assert ("apps/hooks.json", "options.url", "APP_HOOKS_URL") in result.secrets

    m.App.objects.all().delete()
    monkeypatch.setenv("APP_HOOKS_URL", URL)
    config_apply(directory=tmp_path / "first")
    app = m.App.objects.get(name="hooks")
    assert app.options == {"url": MASKED} and app.secret_options == {"url": URL}
    assert not config_apply(directory=tmp_path / "first").changed  # applying again changes nothing
    config_export(directory=tmp_path / "second")
    assert (tmp_path / "second/apps/hooks.json").read_text() == text


def test_config_apply_of_a_url_written_with_its_credentials_stores_them_encrypted(tmp_path):
    directory = write_config(
        tmp_path / "config",
        {
            "apps/hooks.json": {
                "class": "App",
                "id": "hooks",
                "name": "hooks",
                "type": "webhook",
                "options": {"url": URL},
            }
        },
    )
    assert config_apply(directory=directory).changed
    app = m.App.objects.get(name="hooks")
    assert app.options == {"url": MASKED} and app.secret_options == {"url": URL}
    assert_no_secret(plain_columns(app), "the app's row")
    assert not config_apply(directory=directory).changed


def test_migration_0015_moves_urls_stored_before_into_the_secrets():
    migration = importlib.import_module("core.migrations.0016_url_credentials_encrypted")
    legacy = m.App.objects.create(
        name="old",
        type="webhook",
        options={"url": URL, "timeout": 3},
        secret_options={"secret": "sign-it"},
    )
    clean = m.App.objects.create(
        name="clean", type="webhook", options={"url": "https://hooks.example.com/in"}
    )
    other = m.App.objects.create(
        name="db",
        type="postgres",
        options={"host": "db", "database": "d", "user": "u"},
        secret_options={"password": "pw"},
    )
    before = {a.pk: a.updated_at for a in (clean, other)}
    for _ in range(2):  # running it twice is harmless
        migration.split_url_credentials(django_apps, None)
        legacy.refresh_from_db()
        assert legacy.options == {"url": MASKED, "timeout": 3}
        assert legacy.secret_options == {"secret": "sign-it", "url": URL}
    assert_no_secret(plain_columns(legacy), "the migrated row")
    assert {a.pk: a.updated_at for a in m.App.objects.filter(pk__in=before)} == before  # untouched


def test_the_add_form_shown_again_masks_the_url_and_says_what_to_type(admin_client):
    add = reverse("admin:core_app_add")
    data = form_data(admin_client.get(add, {"type": "webhook"}), "app_form")
    data.update(name="hooks", type="webhook", opt_url=URL, opt_timeout="-1")
    response = admin_client.post(add, data)
    assert response.status_code == 200 and "opt_timeout" in page_errors(response)["form"]
    assert_no_secret(response.content.decode(), "the add form shown again")
    # Saving the form as shown again (timeout fixed): the masked URL has nothing behind it.
    data = form_data(response, "app_form")
    assert data["opt_url"] == MASKED
    data["opt_timeout"] = "5"
    response = admin_client.post(add, data)
    assert response.status_code == 200 and not m.App.objects.exists()
    [error] = page_errors(response)["form"]["opt_url"]
    assert error == (
        "The URL's masked parts (********) stand for stored credentials, and this app has none "
        "yet: type the credentials again."
    )


# --- secrets bound to the URL's host ------------------------------------------------------

BOUND = {"secret": "sign-It-0042", "authorization": "Bearer b0und-T0ken"}


def bound_app(url: str) -> m.App:
    return m.App.objects.create(
        name="hooks", type="webhook", options={"url": url}, secret_options=dict(BOUND)
    )


def test_the_api_refuses_to_move_the_url_to_another_host_keeping_its_secrets(
    api, httpserver, settings
):
    """A key with write on apps cannot send the stored Authorization value and signing secret
    to a host of its choosing: moving the URL without giving them again is refused."""
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
    httpserver.expect_request("/in").respond_with_data("ok")
    httpserver.expect_request("/steal").respond_with_data("thanks")
    app = bound_app(f"http://localhost:{httpserver.port}/in")
    elsewhere = {
        "host": f"http://127.0.0.1:{httpserver.port}/steal",
        "port": f"http://localhost:{httpserver.port + 1}/in",
        "scheme": f"https://localhost:{httpserver.port}/in",
    }
    for moved in elsewhere.values():
        response = api.patch(f"/api/v1/apps/{app.pk}/", {"options": {"url": moved}}, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["errors"] == {
            "options.url": [
                "The URL now points at another host: give authorization and secret again, as "
                "they were set for the old one."
            ]
        }
        app.refresh_from_db()
        assert app.options["url"].endswith("/in") and app.secret_options == BOUND
    # Giving only one of them again still refuses, naming the other.
    response = api.patch(
        f"/api/v1/apps/{app.pk}/",
        {"options": {"url": elsewhere["host"]}, "secret_options": {"secret": "new-Sign"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["options.url"] == [
        "The URL now points at another host: give authorization again, as it was set for the old one."
    ]
    # The connection test still goes to the stored host only.
    assert api.post(f"/api/v1/apps/{app.pk}/test/").status_code == 200
    assert [request.path for request, _ in httpserver.log] == ["/in"]
    assert httpserver.log[0][0].headers["Authorization"] == BOUND["authorization"]
    # Another path on the same host keeps them.
    same_host = f"http://localhost:{httpserver.port}/other"
    response = api.patch(f"/api/v1/apps/{app.pk}/", {"options": {"url": same_host}}, format="json")
    assert response.status_code == 200, response.content
    app.refresh_from_db()
    assert app.secret_options == BOUND
    # Giving them again (or clearing them) moves the URL.
    response = api.patch(
        f"/api/v1/apps/{app.pk}/",
        {
            "options": {"url": elsewhere["host"]},
            "secret_options": {"secret": "new-Sign", "authorization": None},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    app.refresh_from_db()
    assert app.options == {"url": elsewhere["host"]} and app.secret_options == {"secret": "new-Sign"}


def test_the_admin_refuses_to_move_the_url_to_another_host_keeping_its_secrets(admin_client):
    app = bound_app("https://hooks.example.com/in")
    change = reverse("admin:core_app_change", args=[app.pk])
    data = form_data(admin_client.get(change), "app_form")
    data["opt_url"] = "https://evil.example.com/steal"
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert page_errors(response)["form"] == {
        "opt_url": [
            "The URL now points at another host: give authorization and secret again, as "
            "they were set for the old one."
        ]
    }
    app.refresh_from_db()
    assert app.options["url"] == "https://hooks.example.com/in" and app.secret_options == BOUND
    data.update(opt_secret="new-Sign", opt_authorization="Bearer new-T0ken")
    response = admin_client.post(change, data)
    assert response.status_code == 302, page_errors(response)
    app.refresh_from_db()
    assert app.options["url"] == "https://evil.example.com/steal"
    assert app.secret_options == {"secret": "new-Sign", "authorization": "Bearer new-T0ken"}


def test_config_apply_moves_the_url_with_the_secrets_it_gives(tmp_path):
    def config(url: str, **secrets: str) -> dict:
        return {
            "apps/hooks.json": {
                "class": "App",
                "id": "hooks",
                "name": "hooks",
                "type": "webhook",
                "options": {"url": url, **secrets},
            }
        }

    first = write_config(
        tmp_path / "first",
        config("https://hooks.example.com/in", secret="env:HOOK_SECRET", authorization="env:HOOK_AUTH"),
    )
    assert config_apply(directory=first).changed
    second = write_config(
        tmp_path / "second", config("https://elsewhere.example.com/in", secret="env:OTHER_SECRET")
    )
    assert config_apply(directory=second).changed
    app = m.App.objects.get(name="hooks")
    assert app.options == {"url": "https://elsewhere.example.com/in"}
    assert app.secret_options == {"secret": "env:OTHER_SECRET"}
