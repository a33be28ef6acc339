"""The admin requires a staff login for every URL it serves, and a staff member who is not a
superuser can do exactly what their Django permissions allow — on pages, form posts and actions."""
from __future__ import annotations

import sys
import types

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import NoReverseMatch, URLPattern, URLResolver, reverse

from core import models as m

pytestmark = pytest.mark.django_db


def admin_urls(world) -> list[str]:
    """Every URL of the admin site: its own pages and, per registered model, every page it
    routes (changelist, add, change, history, delete, custom pages), with a real object's id."""
    objects: dict = {}
    for value in world.values():
        if hasattr(value, "_meta"):
            objects.setdefault(type(value), value)
    urls = [reverse("admin:index"), reverse("admin:password_change"), reverse("admin:app_list", args=["core"])]
    for model, model_admin in admin.site._registry.items():
        obj = objects.get(model) or model._default_manager.first()
        for pattern in model_admin.get_urls():
            if isinstance(pattern, URLResolver) or not isinstance(pattern, URLPattern) or not pattern.name:
                continue
            if "object_id" in str(pattern.pattern):
                if obj is None:
                    continue
                args = [obj.pk]
            else:
                args = []
            try:
                urls.append(reverse(f"admin:{pattern.name}", args=args))
            except NoReverseMatch:
                continue
    return sorted(set(urls))


def test_the_url_list_covers_every_registered_model(world):
    urls = admin_urls(world)
    for model in admin.site._registry:
        name = model._meta.model_name
        assert reverse(f"admin:{model._meta.app_label}_{name}_changelist") in urls
    assert reverse("admin:core_source_preview", args=[world["source"].pk]) in urls
    assert reverse("admin:core_app_change", args=[world["app"].pk]) in urls
    assert len(urls) > 4 * len(admin.site._registry)


def test_anonymous_requests_to_every_admin_url_go_to_the_login_page(client, world):
    for url in admin_urls(world):
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 302, (method, url, response.status_code)
            assert response["Location"].startswith(reverse("admin:login")), (method, url)
    assert m.App.objects.filter(pk=world["app"].pk).exists()


def test_an_active_user_who_is_not_staff_gets_no_admin_page(client, world, django_user_model):
    user = django_user_model.objects.create_user("visitor", password="pw-visitor-123", is_active=True)
    client.force_login(user)
    for url in admin_urls(world):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    # and cannot log in through the admin's form either
    client.logout()
    response = client.post(reverse("admin:login"), {"username": "visitor", "password": "pw-visitor-123"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_an_inactive_staff_user_cannot_log_in(client, world, django_user_model):
    django_user_model.objects.create_user("former", password="pw-former-123", is_staff=True, is_active=False)
    response = client.post(reverse("admin:login"), {"username": "former", "password": "pw-former-123"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert client.get(reverse("admin:core_app_changelist")).status_code == 302


@pytest.fixture
def staff(client, django_user_model):
    """A logged-in staff member (not a superuser) with no permission yet; grant(*codenames)."""
    user = django_user_model.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    client.force_login(user)

    def grant(*codenames: str):
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="core", codename__in=codenames))
        # drop Django's per-user permission cache by reloading the user into the session
        client.force_login(django_user_model.objects.get(pk=user.pk))

    client.grant = grant
    return client


def test_staff_with_only_view_source_can_view_sources_and_nothing_else(staff, world):
    staff.grant("view_source")
    source = world["source"]
    assert staff.get(reverse("admin:core_source_changelist")).status_code == 200
    page = staff.get(reverse("admin:core_source_change", args=[source.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()  # shown read only
    assert staff.get(reverse("admin:core_source_history", args=[source.pk])).status_code == 200

    assert staff.get(reverse("admin:core_source_add")).status_code == 403
    assert staff.post(reverse("admin:core_source_add"), {"name": "sneaky"}).status_code == 403
    assert staff.post(reverse("admin:core_source_change", args=[source.pk]), {"name": "renamed"}).status_code == 403
    assert staff.get(reverse("admin:core_source_delete", args=[source.pk])).status_code == 403
    assert staff.post(reverse("admin:core_source_delete", args=[source.pk]), {"post": "yes"}).status_code == 403
    source.refresh_from_db()
    assert source.name == "users"

    for model in admin.site._registry:
        if model is m.Source:
            continue
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert staff.get(url).status_code == 403, url
        assert staff.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403, url
    # the index lists only what may be seen
    index = staff.get(reverse("admin:index")).content.decode()
    assert reverse("admin:core_source_changelist") in index
    assert reverse("admin:core_app_changelist") not in index
    assert reverse("admin:core_apikey_changelist") not in index


def stand_in(monkeypatch, module: str, name: str, calls: list, result=None) -> None:
    """Replace core.services.<module>.<name> by a recorder for one test."""
    fake = types.ModuleType(f"core.services.{module}")

    def record(**kwargs):
        calls.append(kwargs)
        return result

    setattr(fake, name, record)
    monkeypatch.setitem(sys.modules, f"core.services.{module}", fake)


ACTIONS = [
    # (model, action, service module, service function, the permission the action needs)
    (m.Source, "run_now", "runs", "run_enqueue", "change_source"),
    (m.Schedule, "run_now", "runs", "run_enqueue", "change_schedule"),
    (m.Group, "recompute", "groups", "group_recompute_enqueue", "change_group"),
    (m.Destination, "retry_failed_exports", "exports", "exports_retry_failed", "change_destination"),
    (m.App, "test_connection", "apps", "app_test_connection", "change_app"),
]


@pytest.mark.parametrize(("model", "action", "module", "function", "needed"), ACTIONS,
                         ids=[f"{a[0].__name__}.{a[1]}" for a in ACTIONS])
def test_admin_actions_need_the_change_permission(staff, world, monkeypatch, model, action, module, function,
                                                  needed):
    name = model._meta.model_name
    obj = {m.Source: world["source"], m.Schedule: world["schedule"], m.Group: world["group"],
           m.Destination: world["destination"], m.App: world["app"]}[model]
    calls: list = []
    stand_in(monkeypatch, module, function, calls, result=world["run"] if module != "exports" else 0)
    url = reverse(f"admin:core_{name}_changelist")
    data = {"action": action, "_selected_action": [obj.pk]}

    staff.grant(f"view_{name}")
    listing = staff.get(url).content.decode()
    assert f'value="{action}"' not in listing  # not offered
    staff.post(url, data, follow=True)
    assert calls == []  # and refused when posted anyway

    staff.grant(needed)
    assert f'value="{action}"' in staff.get(url).content.decode()
    response = staff.post(url, data, follow=True)
    assert response.status_code == 200
    assert len(calls) == 1


def test_revoking_an_api_key_needs_the_change_permission(staff, world):
    api_key = world["api_key"]
    url = reverse("admin:core_apikey_changelist")
    data = {"action": "revoke", "_selected_action": [api_key.pk]}
    staff.grant("view_apikey")
    staff.post(url, data, follow=True)
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
    staff.grant("change_apikey")
    staff.post(url, data, follow=True)
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_delete_selected_needs_the_delete_permission(staff, world):
    group = m.Group.objects.create(model=world["model"], name="unused")  # nothing depends on it
    url = reverse("admin:core_group_changelist")
    data = {"action": "delete_selected", "_selected_action": [group.pk], "post": "yes"}
    staff.grant("view_group", "change_group")
    staff.post(url, data, follow=True)
    assert m.Group.objects.filter(pk=group.pk).exists()
    staff.grant("delete_group")
    staff.post(url, data, follow=True)
    assert not m.Group.objects.filter(pk=group.pk).exists()


def test_the_source_preview_needs_a_view_permission(staff, world, monkeypatch):
    calls: list = []
    stand_in(monkeypatch, "sources", "source_preview", calls, result=[{"id": 1}])
    url = reverse("admin:core_source_preview", args=[world["source"].pk])
    staff.grant("view_app")
    assert staff.get(url).status_code == 403
    assert calls == []
    staff.grant("view_source")
    assert staff.get(url).status_code == 200
    assert len(calls) == 1


def test_log_pages_follow_view_permissions(staff, world):
    run = world["run"]
    assert staff.get(reverse("admin:core_run_change", args=[run.pk])).status_code == 403
    staff.grant("view_run")
    assert staff.get(reverse("admin:core_run_change", args=[run.pk])).status_code == 200
    assert staff.get(reverse("admin:core_export_changelist")).status_code == 403


def test_a_staff_session_in_the_api_has_only_its_django_permissions(staff, world):
    """The browsable API with a staff session is not a way around the admin's permissions."""
    source, app = world["source"], world["app"]
    assert staff.get("/api/v1/sources/").status_code == 403
    staff.grant("view_source", "view_sourcemapping", "view_schedule", "view_schedulefilter")
    assert staff.get("/api/v1/sources/").status_code == 200
    assert staff.get(f"/api/v1/sources/{source.pk}/").status_code == 200
    response = staff.patch(f"/api/v1/sources/{source.pk}/", {"name": "renamed"}, content_type="application/json")
    assert response.status_code == 403 and "no write permission on sources" in response.content.decode()
    assert staff.get("/api/v1/apps/").status_code == 403
    assert staff.patch(f"/api/v1/apps/{app.pk}/", {"name": "x"}, content_type="application/json").status_code == 403
    source.refresh_from_db()
    app.refresh_from_db()
    assert source.name == "users" and app.name != "x"
