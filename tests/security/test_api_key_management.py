"""A key manages only keys within its own permissions, and no key outlives its grantor.

A key with write on apiKeys may change or delete a key only when that key holds nothing beyond
its own permissions (so a weak key cannot make an all-access key last for ever, nor delete it);
revoking stays allowed for any key, since it only protects. A key that expires may set expiries
no later than its own, and "never" only when it never expires itself. A revoked key is not
restored by `PATCH {"revoked_at": null}`: that is a 400, not a 200 that changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core import models as m
from core.services.api_keys import api_key_create, api_key_revoke, api_key_set_permissions

pytestmark = pytest.mark.django_db

MANAGER = {"read": ["apiKeys"], "write": ["apiKeys"]}


def key_client(*, name, read=(), write=(), all_read=False, all_write=False, expires_at=None):
    api_key, key = api_key_create(
        name=name, permission_all_read=all_read, permission_all_write=all_write,
        expires_at=expires_at,
    )  # fmt: skip
    api_key_set_permissions(api_key=api_key, read=read, write=write)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client, api_key


def url(api_key) -> str:
    return f"/api/v1/api-keys/{api_key.pk}/"


def test_a_weaker_key_cannot_change_or_delete_a_stronger_one_but_may_revoke_it():
    api, own = key_client(name="manager", **MANAGER)
    _, root = key_client(name="root", all_read=True, all_write=True,
                         expires_at=timezone.now() + timedelta(days=1))  # fmt: skip
    for body in ({"expires_at": None}, {"expires_at": "2099-01-01T00:00:00Z"}, {"name": "x"}):
        response = api.patch(url(root), body, format="json")
        assert response.status_code == 403, response.content
        assert "only keys whose permissions are within its own" in response.json()["message"]
    assert api.delete(url(root)).status_code == 403
    root.refresh_from_db()
    assert root.name == "root" and root.expires_at < timezone.now() + timedelta(days=2)

    # a key within its own permissions may be changed and deleted
    _, weaker = key_client(name="weaker", read=["apiKeys"])
    assert api.patch(url(weaker), {"name": "renamed"}, format="json").status_code == 200
    assert api.patch(url(own), {"name": "manager-2"}, format="json").status_code == 200
    assert api.delete(url(weaker)).status_code == 204

    # revoking protects, so any key with write on apiKeys may revoke any key
    assert api.post(f"{url(root)}revoke/").status_code == 200
    root.refresh_from_db()
    assert root.revoked_at is not None


def test_a_staff_session_changes_only_keys_within_its_django_permissions(client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("keeper", password="pw-k-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=[f"{a}_{model}" for a in ("view", "add", "change", "delete")
                      for model in ("apikey", "apikeypermission")]))  # fmt: skip
    client.force_login(user)
    _, root = key_client(name="root", all_read=True, all_write=True)
    response = client.patch(url(root), {"expires_at": None}, content_type="application/json")
    assert response.status_code == 403
    assert "only keys whose permissions are within your own" in response.json()["message"]
    assert client.delete(url(root)).status_code == 403
    assert client.post(f"{url(root)}revoke/").status_code == 200


def test_a_key_that_expires_cannot_outlive_itself_nor_make_keys_that_do():
    soon = timezone.now() + timedelta(days=1)
    api, own = key_client(name="temp", expires_at=soon, **MANAGER)

    never = api.patch(url(own), {"expires_at": None}, format="json")
    assert never.status_code == 400
    assert "may not give a key no expiry" in never.json()["errors"]["expires_at"][0]
    later = api.patch(url(own), {"expires_at": "2099-01-01T00:00:00Z"}, format="json")
    assert later.status_code == 400
    assert "no later than its own" in later.json()["errors"]["expires_at"][0]
    own.refresh_from_db()
    assert own.expires_at == soon

    for body in ({}, {"expires_at": None}, {"expires_at": "2099-01-01T00:00:00Z"}):
        response = api.post("/api/v1/api-keys/", {"name": "child", **body}, format="json")
        assert response.status_code == 400, (body, response.content)
        assert "expires_at" in response.json()["errors"]
    assert not m.ApiKey.objects.filter(name="child").exists()

    _, other = key_client(name="other", read=["apiKeys"])
    assert api.patch(url(other), {"expires_at": None}, format="json").status_code == 400

    earlier = (soon - timedelta(hours=1)).isoformat()
    assert api.patch(url(own), {"expires_at": earlier}, format="json").status_code == 200
    made = api.post("/api/v1/api-keys/", {"name": "child", "expires_at": earlier}, format="json")
    assert made.status_code == 201, made.content

    # a key that never expires may give any expiry, "never" included
    forever, _ = key_client(name="forever", **MANAGER)
    assert forever.patch(url(other), {"expires_at": None}, format="json").status_code == 200
    assert forever.post("/api/v1/api-keys/", {"name": "kid"}, format="json").status_code == 201


def test_a_revoked_key_cannot_be_restored():
    api, _ = key_client(name="manager", **MANAGER)
    _, target = key_client(name="target", read=["apiKeys"])
    api_key_revoke(api_key=target)
    target.refresh_from_db()
    revoked_at = target.revoked_at
    response = api.patch(url(target), {"revoked_at": None}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["revoked_at"] == [
        "A revoked key cannot be restored; create a new key."
    ]
    target.refresh_from_db()
    assert target.revoked_at == revoked_at


def test_the_admin_changes_and_deletes_only_keys_within_the_staff_users_permissions(
    client, django_user_model
):
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    from tests.admin.forms import form_data

    user = django_user_model.objects.create_user("keeper", password="pw-k-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=[f"{a}_{model}" for a in ("view", "add", "change", "delete")
                      for model in ("apikey", "apikeypermission")]))  # fmt: skip
    client.force_login(user)
    _, root = key_client(name="root", all_read=True, all_write=True)
    change = reverse("admin:core_apikey_change", args=[root.pk])
    data = form_data(client.get(change), "apikey_form") | {
        "expires_at_0": "2099-01-01",
        "expires_at_1": "00:00",
    }
    response = client.post(change, data)
    assert response.status_code == 200
    assert "within your own" in str(response.context["adminform"].form.non_field_errors())
    assert client.post(reverse("admin:core_apikey_delete", args=[root.pk]), {"post": "yes"}
                       ).status_code == 403  # fmt: skip
    selected = {"action": "delete_selected", "_selected_action": [root.pk], "post": "yes"}
    client.post(reverse("admin:core_apikey_changelist"), selected)
    root.refresh_from_db()
    assert root.expires_at is None


def test_a_key_that_expires_cannot_widen_a_key_that_outlives_it():
    """Found in review: widening a never-expiring key without sending expires_at handed the
    grantor's permissions to a key that outlives it."""
    soon = timezone.now() + timedelta(days=1)
    api, _ = key_client(name="temp", expires_at=soon, all_read=True, all_write=True)
    _, weak = key_client(name="weak", read=["models"])
    widened = api.patch(url(weak), {"permission_all_read": True, "permission_all_write": True}, format="json")
    assert widened.status_code == 400 and "expires_at" in widened.json()["errors"]
    weak.refresh_from_db()
    assert not weak.permission_all_write and weak.expires_at is None
    # with an expiry no later than its own, the same change is allowed
    body = {"permission_all_read": True, "expires_at": (soon - timedelta(hours=1)).isoformat()}
    assert api.patch(url(weak), body, format="json").status_code == 200
    # a change that gives nothing (a new name) needs no expiry
    _, other = key_client(name="other", read=["models"])
    assert api.patch(url(other), {"name": "renamed"}, format="json").status_code == 200
