"""Every registered admin renders: changelist (also with a search), add page and change page.

The list of admins is read from `admin.site._registry`, so a newly registered model is covered
without touching this file; a new domain model also needs an object in the `world` fixture.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


def _url(model, name: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


def test_every_domain_model_is_registered():
    missing = [
        m._meta.label
        for m in apps.get_app_config("core").get_models()
        if m not in admin.site._registry
    ]
    assert missing == []


@pytest.mark.parametrize("model", REGISTERED, ids=[m._meta.label for m in REGISTERED])
def test_admin_pages_render(admin_client, world, model):
    model_admin = admin.site._registry[model]

    assert admin_client.get(_url(model, "changelist")).status_code == 200
    assert admin_client.get(_url(model, "changelist"), {"q": "1"}).status_code == 200

    response = admin_client.get(_url(model, "add"))
    expected = 200 if model_admin.has_add_permission(response.wsgi_request) else 403
    assert response.status_code == expected

    obj = model._default_manager.order_by("pk").first()
    if model._meta.app_label == "core":
        assert obj is not None, f"add a {model._meta.label} to the world fixture"
    if obj is not None:
        assert admin_client.get(_url(model, "change", obj.pk)).status_code == 200


def test_site_header_is_grouparoo(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "Grouparoo" in response.content.decode()


def test_record_change_page_shows_properties_and_memberships(admin_client, world):
    response = admin_client.get(_url(type(world["record"]), "change", world["record"].pk))
    html = response.content.decode()
    assert "ada@example.com" in html
    assert "vips" in html
