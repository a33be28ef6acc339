"""Authentication, topics, sessions, config-file locks and the error body."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from core import models as m
from core.api import views
from core.api.permissions import ANY_TOPIC, HasTopicPermission
from core.choices import ApiTopic
from core.services.api_keys import api_key_touch
from tests.api.conftest import APP_SECRET, DEST_SECRET

pytestmark = pytest.mark.django_db


def api_views():
    """Every view class routed under /api/v1/."""
    resolver = get_resolver()
    (api,) = [p for p in resolver.url_patterns if getattr(p, "namespace", None) == "api"]
    for pattern in api.url_patterns:
        callback = pattern.callback
        yield getattr(callback, "cls", None) or callback.view_class


def test_every_api_view_declares_a_topic():
    classes = set(api_views())
    assert views.RecordViewSet in classes and views.StatusView in classes
    for cls in classes:
        assert cls.api_topic in ApiTopic.values or cls.api_topic == ANY_TOPIC, cls


def test_a_view_without_a_topic_fails_when_defined():
    with pytest.raises(ImproperlyConfigured, match="declares no api_topic"):
        class Forgotten(views.ConfigViewSet):  # noqa: F841 - defining it is the test
            queryset = m.RecordModel.objects.all()
    with pytest.raises(ImproperlyConfigured, match="not an ApiTopic"):
        class Misspelt(views.ReadOnlyViewSet):  # noqa: F841
            api_topic = "record"


def test_a_plain_view_without_a_topic_fails_on_its_first_request(rf):
    class Plain:
        pass

    with pytest.raises(ImproperlyConfigured):
        HasTopicPermission().has_permission(rf.get("/"), Plain())


def test_staff_session_reads_and_writes_with_csrf(db, admin_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get("/api/v1/models/").status_code == 200
    assert client.post("/api/v1/models/", {"name": "x"}, format="json").status_code == 403
    client.get("/admin/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post("/api/v1/models/", {"name": "x"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


def test_browsable_api_renders_for_staff_without_secrets(world, admin_user, client):
    client.force_login(admin_user)
    response = client.get("/api/v1/models/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"<html" in response.content
    for url in (f"/api/v1/apps/{world.secret_app.pk}/",
                f"/api/v1/destinations/{world.secret_destination.pk}/"):
        response = client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 200
        assert APP_SECRET.encode() not in response.content
        assert DEST_SECRET.encode() not in response.content
    assert client.get("/api/v1/docs/").status_code == 200
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/").status_code == 200


def test_api_docs_load_nothing_from_other_hosts(admin_user, client):
    import re

    from django.contrib.staticfiles import finders

    client.force_login(admin_user)
    page = client.get("/api/v1/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r'"(https?://[^"]+)"', page)
    assert assets, page
    assert not [a for a in assets if a.startswith(("http://", "https://", "//"))], assets
    local = [a for a in assets if a.startswith("/static/")]
    assert any("swagger-ui" in a for a in local), assets
    for asset in local:  # each is a file this installation serves
        assert finders.find(asset.removeprefix("/static/")), asset


def test_non_staff_session_is_forbidden(db, django_user_model):
    user = django_user_model.objects.create_user("bob", password="pw")
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/models/").status_code == 403


def test_schema_needs_any_valid_key(world, client_for, keys, anon):
    assert anon.get("/api/v1/schema/").status_code == 401
    response = client_for(keys.make(read=["records"])).get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    assert "/api/v1/records/" in response.json()["paths"]
    assert response.json()["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_last_used_at_is_written_at_most_once_a_minute(world, client_for, keys):
    key = keys.make(read=["models"])
    api_key = m.ApiKey.objects.get(prefix=key[4:12])
    assert api_key.last_used_at is None
    client = client_for(key)
    client.get("/api/v1/models/")
    first = m.ApiKey.objects.get(pk=api_key.pk).last_used_at
    assert first is not None
    client.get("/api/v1/models/")
    assert m.ApiKey.objects.get(pk=api_key.pk).last_used_at == first
    stale = timezone.now() - timedelta(minutes=2)
    m.ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=stale)
    client.get("/api/v1/models/")
    assert m.ApiKey.objects.get(pk=api_key.pk).last_used_at > stale


def test_touch_is_conditional(world, keys):
    key = keys.make()
    api_key = m.ApiKey.objects.get(prefix=key[4:12])
    now = timezone.now()
    assert api_key_touch(api_key=api_key, now=now)
    assert not api_key_touch(api_key=api_key, now=now + timedelta(seconds=30))
    stale_copy = m.ApiKey.objects.get(pk=api_key.pk)
    stale_copy.last_used_at = None  # another request's view of the row: the UPDATE still guards
    assert not api_key_touch(api_key=stale_copy, now=now + timedelta(seconds=30))
    assert api_key_touch(api_key=api_key, now=now + timedelta(seconds=61))


def test_write_permission_does_not_imply_read(world, client_for, keys):
    client = client_for(keys.make(write=["models"]))
    assert client.get("/api/v1/models/").status_code == 403
    assert client.post("/api/v1/models/", {"name": "w"}, format="json").status_code == 201


def test_all_read_flag_reads_every_topic_but_writes_none(world, client_for, keys):
    client = client_for(keys.make(all_read=True))
    for path in ("/api/v1/records/", "/api/v1/api-keys/", "/api/v1/status/"):
        assert client.get(path).status_code == 200, path
    assert client.post("/api/v1/models/", {"name": "w"}, format="json").status_code == 403


# --- config-file locks ------------------------------------------------------------------------

LOCKABLE = [
    ("models", lambda w: w.shop.model, {"name": "renamed"}),
    ("apps", lambda w: w.secret_app, {"name": "renamed"}),
    ("sources", lambda w: w.shop.users, {"name": "renamed"}),
    ("properties", lambda w: w.shop.props["first_name"], {"type": "string"}),
    ("schedules", lambda w: w.shop.users_schedule, {"recurring": False}),
    ("groups", lambda w: w.shop.high_value, {"name": "renamed"}),
    ("destinations", lambda w: w.secret_destination, {"name": "renamed"}),
    ("settings", lambda w: w.setting, {"value": "2"}),
]


@pytest.mark.parametrize(("resource", "get", "patch"), LOCKABLE, ids=[r[0] for r in LOCKABLE])
def test_objects_managed_by_a_config_file_refuse_writes(resource, get, patch, world, full):
    obj = get(world)
    type(obj).objects.filter(pk=obj.pk).update(locked_by="config/thing.json")
    url = f"/api/v1/{resource}/{obj.pk}/"
    assert full.get(url).status_code == 200
    methods = [("patch", patch), ("put", patch)] + ([("delete", None)] if resource != "settings" else [])
    for method, body in methods:
        response = getattr(full, method)(url, body, format="json")
        assert response.status_code == 409, (method, response.content)
        message = response.json()["message"]
        assert "config/thing.json" in message and "manage.py apply" in message
    obj.refresh_from_db()
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert getattr(obj, "name", "") != "renamed"


def test_locked_api_key_refuses_edits_but_can_be_revoked(world, full, keys):
    keys.make(name="from-file")
    api_key = m.ApiKey.objects.get(name="from-file")
    m.ApiKey.objects.filter(pk=api_key.pk).update(locked_by="config/keys.json")
    url = f"/api/v1/api-keys/{api_key.pk}/"
    assert full.patch(url, {"name": "x"}, format="json").status_code == 409
    assert full.delete(url).status_code == 409
    assert full.post(url + "revoke/").status_code == 200
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_actions_still_work_on_locked_objects(world, full):
    m.Group.objects.filter(pk=world.shop.high_value.pk).update(locked_by="config/groups.json")
    response = full.post(f"/api/v1/groups/{world.shop.high_value.pk}/recompute/")
    assert response.status_code == 202


def test_refresh_query_follows_its_app_lock(world, full):
    m.App.objects.filter(pk=world.shop.users.app_id).update(locked_by="config/shop.json")
    url = f"/api/v1/app-refresh-queries/{world.refresh_query.pk}/"
    response = full.patch(url, {"recurring_frequency": 600}, format="json")
    assert response.status_code == 409 and "config/shop.json" in response.json()["message"]
    m.App.objects.filter(pk=world.secret_app.pk).update(locked_by="config/mail.json")
    response = full.post("/api/v1/app-refresh-queries/", {"app": world.secret_app.pk, "query": "SELECT 1"},
                         format="json")
    assert response.status_code == 409 and "config/mail.json" in response.json()["message"]
    assert not m.AppRefreshQuery.objects.filter(app=world.secret_app).exists()


# --- error bodies ------------------------------------------------------------------------------


def test_validation_errors_name_the_field(world, full):
    response = full.post("/api/v1/models/", {}, format="json")
    assert response.status_code == 400
    assert response.json() == {"message": "name: This field is required.",
                               "errors": {"name": ["This field is required."]}}


def test_nested_errors_are_dotted(world, full):
    rules = [{"property": world.shop.props["ltv"].pk, "op": "gt", "match": "1"},
             {"property": world.shop.props["ltv"].pk, "op": "startsWith", "match": "1"}]
    response = full.post("/api/v1/groups/", {"model": world.shop.model.pk, "name": "g", "rules": rules},
                         format="json")
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["rules.1.op"]
    assert body["message"].startswith("rules.1.op: ")


def test_not_found_and_method_not_allowed_are_json(world, full):
    response = full.get("/api/v1/models/999999/")
    assert response.status_code == 404 and set(response.json()) == {"message"}
    response = full.post("/api/v1/runs/", {}, format="json")
    assert response.status_code == 405 and set(response.json()) == {"message"}


def test_deleting_something_in_use_is_a_conflict(world, full):
    response = full.delete(f"/api/v1/apps/{world.shop.users.app_id}/")
    assert response.status_code == 409
    assert "still used by" in response.json()["message"]
    assert m.App.objects.filter(pk=world.shop.users.app_id).exists()
