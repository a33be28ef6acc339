"""Every registered admin renders: changelist (also with a search), add page and change page.

The list of admins is read from `admin.site._registry`, so a newly registered model is covered
without touching this file; a new domain model also needs an object in the `world` fixture.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from core.models import Record, RecordProperty

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


def _url(model, name: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


# Django 5.2's admin does not register models with a composite primary key; these are shown on
# their parent's page instead (a record's values: test_record_change_page_shows_values below).
SHOWN_ON_PARENT_PAGE = {"core.RecordProperty"}


def test_every_domain_model_is_registered():
    models = list(apps.get_app_config("core").get_models())
    missing = [m._meta.label for m in models if m not in admin.site._registry]
    assert missing == sorted(SHOWN_ON_PARENT_PAGE)
    assert {m._meta.label for m in models if m._meta.is_composite_pk} == SHOWN_ON_PARENT_PAGE


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


def test_record_change_page_shows_values(admin_client, world):
    # The values table: raw and typed value, state and the reason a value is invalid, escaped.
    record, vip = world["record"], world["vip"]
    RecordProperty.objects.create(
        record=record, property=vip, raw_value="<b>maybe</b>", invalid_reason="is not a boolean"
    )
    html = admin_client.get(_url(Record, "change", record.pk)).content.decode()
    values = html[html.index('class="record-values"'):]
    values = values[: values.index("</table>")]
    assert "ada@example.com" in values
    assert "&lt;b&gt;maybe&lt;/b&gt;" in values and "<b>maybe" not in values
    assert "is not a boolean" in values
    assert "vip" in values and "email" in values


def test_records_list_filters_by_invalid_value_of_a_property(admin_client, world):
    record, vip, model = world["record"], world["vip"], world["model"]
    bad = Record.objects.create(model=model)
    RecordProperty.objects.create(record=bad, property=vip, raw_value="maybe", invalid_reason="is not a boolean")
    RecordProperty.objects.create(record=record, property=vip, raw_value="true", value_boolean=True)
    url = _url(Record, "changelist")

    response = admin_client.get(url, {"invalid_value_of": vip.pk})
    assert [r.pk for r in response.context["cl"].result_list] == [bad.pk]
    response = admin_client.get(url, {"invalid_value_of": world["email"].pk})
    assert list(response.context["cl"].result_list) == []
    # Not a property id: the admin's "invalid lookup" redirect, not a server error.
    response = admin_client.get(url, {"invalid_value_of": "x"})
    assert response.status_code == 302 and response.url.endswith("?e=1")
