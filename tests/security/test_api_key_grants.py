"""Nobody hands out more than they hold. A key with write permission on API keys may create keys
and widen keys only within its own permissions; a staff user (admin or browsable API) only
within their Django permissions; a superuser anything. Anything beyond is refused — 403 naming
the topics in the API, an error on the form in the admin — and nothing is written."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from core import models as m
from core.services.api_keys import api_key_create, api_key_grants, api_key_set_permissions
from tests.admin.forms import add_inline_row, form_data

pytestmark = pytest.mark.django_db

KEY_PERMS = (
    "view_apikey",
    "add_apikey",
    "change_apikey",
    "delete_apikey",
    "view_apikeypermission",
    "add_apikeypermission",
    "change_apikeypermission",
    "delete_apikeypermission",
)


def key_client(*, read=(), write=(), all_read=False, all_write=False, name="caller"):
    api_key, key = api_key_create(
        name=name, permission_all_read=all_read, permission_all_write=all_write
    )
    api_key_set_permissions(api_key=api_key, read=read, write=write)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client, api_key


def staff_user(django_user_model, *codenames: str, superuser: bool = False):
    user = django_user_model.objects.create_user(
        "keeper", password="pw-keeper-123", is_staff=True, is_superuser=superuser
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return django_user_model.objects.get(pk=user.pk)


def test_a_key_that_writes_api_keys_cannot_mint_a_key_with_more_than_it_holds():
    api, _ = key_client(read=["apiKeys"], write=["apiKeys"])
    before = m.ApiKey.objects.count()

    full = api.post(
        "/api/v1/api-keys/",
        {"name": "root", "permission_all_read": True, "permission_all_write": True},
        format="json",
    )
    assert full.status_code == 403, full.content
    assert full.json()["message"] == (
        "This API key may grant only permissions it holds itself; not held: read on every topic, "
        "write on every topic."
    )
    apps = api.post(
        "/api/v1/api-keys/",
        {
            "name": "redirector",
            "permissions": [
                {"topic": "apps", "read": True, "write": True},
                {"topic": "apiKeys", "read": True, "write": True},
            ],
        },
        format="json",
    )
    assert apps.status_code == 403, apps.content
    assert apps.json()["message"].endswith("not held: read on apps, write on apps.")
    assert m.ApiKey.objects.count() == before

    within = api.post(
        "/api/v1/api-keys/",
        {
            "name": "helper",
            "permissions": [
                {"topic": "apiKeys", "read": True, "write": False},
            ],
        },
        format="json",
    )
    assert within.status_code == 201, within.content
    helper = m.ApiKey.objects.get(name="helper")
    assert api_key_grants(helper).read == {"apiKeys"} and not api_key_grants(helper).write


def test_a_key_cannot_widen_a_key_beyond_what_it_holds():
    api, caller = key_client(read=["apiKeys", "records"], write=["apiKeys"])
    target, _ = api_key_create(name="target")
    api_key_set_permissions(api_key=target, read=["records"])
    url = f"/api/v1/api-keys/{target.pk}/"

    for body, named in [
        ({"permissions": [{"topic": "records", "read": True, "write": True}]}, "write on records"),
        ({"permission_all_read": True}, "read on every topic"),
        (
            {"permissions": [{"topic": "destinations", "read": False, "write": True}]},
            "write on destinations",
        ),
    ]:
        for method in (api.patch, api.put):
            response = method(url, {"name": "target", **body}, format="json")
            assert response.status_code == 403, (body, response.content)
            assert named in response.json()["message"]
    # Not even its own key.
    own = api.patch(f"/api/v1/api-keys/{caller.pk}/", {"permission_all_write": True}, format="json")
    assert own.status_code == 403
    target.refresh_from_db()
    caller.refresh_from_db()
    assert api_key_grants(target).read == {"records"} and not api_key_grants(target).write
    assert not target.permission_all_read and not caller.permission_all_write

    # Narrowing, and keeping what a key already has, are fine.
    assert (
        api.patch(
            url,
            {"permissions": [{"topic": "apiKeys", "read": True, "write": False}]},
            format="json",
        ).status_code
        == 200
    )
    # A key stronger than the caller is not changed at all, not even renamed
    # (tests/security/test_api_key_management.py).
    root, _ = api_key_create(name="root", permission_all_read=True, permission_all_write=True)
    renamed = api.patch(f"/api/v1/api-keys/{root.pk}/", {"name": "root-renamed"}, format="json")
    assert renamed.status_code == 403, renamed.content


def test_a_full_access_key_may_grant_anything():
    api, _ = key_client(all_read=True, all_write=True)
    response = api.post(
        "/api/v1/api-keys/",
        {"name": "second-root", "permission_all_read": True, "permission_all_write": True},
        format="json",
    )
    assert response.status_code == 201, response.content


def test_a_staff_session_grants_only_what_the_user_may_do(django_user_model):
    user = staff_user(django_user_model, *KEY_PERMS, "view_recordmodel")
    api = APIClient()
    api.force_login(user)
    refused = api.post(
        "/api/v1/api-keys/",
        {"name": "k1", "permissions": [{"topic": "models", "read": True, "write": True}]},
        format="json",
    )
    assert refused.status_code == 403, refused.content
    assert refused.json()["message"] == (
        "You may grant only permissions you hold yourself; not held: write on models."
    )
    allowed = api.post(
        "/api/v1/api-keys/",
        {
            "name": "k2",
            "permissions": [
                {"topic": "models", "read": True},
                {"topic": "apiKeys", "read": True, "write": True},
            ],
        },
        format="json",
    )
    assert allowed.status_code == 201, allowed.content

    superuser = django_user_model.objects.create_user(
        "root", password="pw-root-123", is_staff=True, is_superuser=True
    )
    api.force_login(superuser)
    assert (
        api.post(
            "/api/v1/api-keys/", {"name": "k3", "permission_all_write": True}, format="json"
        ).status_code
        == 201
    )


def test_the_admin_refuses_flags_and_rows_the_staff_user_does_not_hold(client, django_user_model):
    client.force_login(staff_user(django_user_model, *KEY_PERMS, "view_recordmodel"))
    url = reverse("admin:core_apikey_add")

    data = form_data(client.get(url), "apikey_form")
    data.update(name="everything", permission_all_write="on")
    response = client.post(url, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "not held: write on every topic" in errors["permission_all_write"][0]

    data = form_data(client.get(url), "apikey_form")
    data["name"] = "models-writer"
    add_inline_row(data, "permissions", topic="models", read="on", write="on")
    response = client.post(url, data)
    assert response.status_code == 200
    [formset] = [f.formset for f in response.context["inline_admin_formsets"]]
    assert "not held: write on models" in formset.non_form_errors()[0]
    assert not m.ApiKey.objects.exists()

    data = form_data(client.get(url), "apikey_form")
    data["name"] = "models-reader"
    add_inline_row(data, "permissions", topic="models", read="on")
    assert client.post(url, data).status_code == 302
    key = m.ApiKey.objects.get(name="models-reader")

    # The standalone permission rows are held to the same rule.
    row_url = reverse("admin:core_apikeypermission_add")
    response = client.post(row_url, {"api_key": key.pk, "topic": "apps", "read": "on"})
    assert response.status_code == 200
    assert "not held: read on apps" in str(response.context["adminform"].form.non_field_errors())
    assert list(key.permissions.values_list("topic", flat=True)) == ["models"]


def test_a_superuser_may_grant_anything_in_the_admin(admin_client):
    url = reverse("admin:core_apikey_add")
    data = form_data(admin_client.get(url), "apikey_form")
    data.update(name="everything", permission_all_read="on", permission_all_write="on")
    assert admin_client.post(url, data).status_code == 302
    assert m.ApiKey.objects.get(name="everything").permission_all_write
