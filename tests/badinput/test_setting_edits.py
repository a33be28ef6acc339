"""Settings are changed, never renamed, added or deleted: the admin's Setting form edits only the
value, and neither the admin nor the API accepts an empty value or a number written other than
plainly (`1_000`, full-width digits), which Python's float() would take and the row would keep
as typed."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core import models as m
from core.services.api_keys import api_key_create, api_key_set_permissions
from core.settings_registry import DEFAULTS, setting_problem

pytestmark = pytest.mark.django_db

LEASE = next(d for d in DEFAULTS if d.key == "runs-lease-seconds")
NOT_PLAIN = ["1_000", "１８０", "３００", "0x12c", "nan", "+inf", "1e", "."]
PLAIN = ["300", "+300", "300.", "300.0", "3e2", "3E+2", "30000e-2", ".3e3"]


@pytest.fixture(autouse=True)
def production_bounds(settings):
    settings.GROUPAROO_SETTING_MINIMUMS = {}


@pytest.fixture
def lease() -> m.Setting:
    row, _ = m.Setting.objects.get_or_create(
        plugin="core",
        key=LEASE.key,
        defaults={"value": LEASE.default, "type": LEASE.type, "title": LEASE.title},
    )
    return row


@pytest.fixture
def api() -> APIClient:
    api_key, plaintext = api_key_create(name="settings-editor")
    api_key_set_permissions(api_key=api_key, read=["settings"], write=["settings"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def test_the_admin_changes_only_the_value(admin_client, lease):
    url = reverse("admin:core_setting_change", args=[lease.pk])
    data = {
        "plugin": "other",
        "key": "runs-lease-seconds-x",
        "value": "600",
        "type": "string",
        "title": "Renamed",
        "description": "changed",
    }
    assert admin_client.post(url, data).status_code == 302
    lease.refresh_from_db()
    assert (lease.plugin, lease.key, lease.type, lease.title, lease.value) == (
        "core", "runs-lease-seconds", LEASE.type, LEASE.title, "600"
    )  # fmt: skip
    assert not m.Setting.objects.filter(key="runs-lease-seconds-x").exists()
    form = admin_client.get(url).context["adminform"].form
    assert list(form.fields) == ["value"]


def test_settings_are_neither_added_nor_deleted_in_the_admin(admin_client, lease):
    assert admin_client.get(reverse("admin:core_setting_add")).status_code == 403
    add = admin_client.post(reverse("admin:core_setting_add"), {"key": "x", "value": "1"})
    assert add.status_code == 403 and not m.Setting.objects.filter(key="x").exists()
    delete = reverse("admin:core_setting_delete", args=[lease.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:core_setting_changelist")
    admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [lease.pk],
                                    "post": "yes"})  # fmt: skip
    assert m.Setting.objects.filter(pk=lease.pk).exists()


def test_an_empty_value_is_refused_by_the_admin_and_the_api(admin_client, api, lease):
    other = m.Setting.objects.create(plugin="core", key="not-read-here", value="x")
    for row in (lease, other):
        response = api.patch(f"/api/v1/settings/{row.pk}/", {"value": ""}, format="json")
        assert response.status_code == 400
        assert response.json()["errors"]["value"] == ["Must not be empty."]
        url = reverse("admin:core_setting_change", args=[row.pk])
        form = admin_client.post(url, {"value": ""}).context["adminform"].form
        assert form.errors["value"] == ["Must not be empty."]
    lease.refresh_from_db()
    other.refresh_from_db()
    assert (lease.value, other.value) == (LEASE.default, "x")


@pytest.mark.parametrize("value", NOT_PLAIN)
def test_numbers_not_written_plainly_are_refused_with_the_bounds_message(
    admin_client, api, lease, value
):
    message = f"Must be a number from 180 to 86400 (seconds), not {value!r}."
    response = api.patch(f"/api/v1/settings/{lease.pk}/", {"value": value}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["value"] == [message]
    url = reverse("admin:core_setting_change", args=[lease.pk])
    form = admin_client.post(url, {"value": value}).context["adminform"].form
    assert form.errors["value"] == [message]
    lease.refresh_from_db()
    assert lease.value == LEASE.default


def test_plain_numbers_are_accepted_and_stored_as_typed(api, lease):
    for value in PLAIN:
        assert setting_problem(LEASE.key, value) is None, value
        response = api.patch(f"/api/v1/settings/{lease.pk}/", {"value": value}, format="json")
        assert response.status_code == 200, response.content
        lease.refresh_from_db()
        assert lease.value == value


def test_a_number_setting_nothing_reads_must_be_plain_too(api):
    row = m.Setting.objects.create(plugin="core", key="not-read-here", type="number", value="1")
    for value in ("1_000", "１８０"):
        response = api.patch(f"/api/v1/settings/{row.pk}/", {"value": value}, format="json")
        assert (
            response.status_code == 400 and "ASCII digits" in response.json()["errors"]["value"][0]
        )
    assert (
        api.patch(f"/api/v1/settings/{row.pk}/", {"value": "-2.5"}, format="json").status_code
        == 200
    )
