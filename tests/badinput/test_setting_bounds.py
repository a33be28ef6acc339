"""Settings outside their bounds (a zero lease, a retry delay of 1e300, a fractional attempt
count, NaN) are refused where they come in — the admin's Setting form, the API and config
files — and a bad row written straight to the table is read by the engine as its default or its
nearest bound, so no value can stop exports or let two workers hold one run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from core import models as m
from core.choices import ExportState, RunCreator, RunState
from core.config.validate import config_validate
from core.services.api_keys import api_key_create, api_key_set_permissions
from core.settings_registry import DEFAULTS, setting_number, setting_problem
from tests.config.conftest import write_config

pytestmark = pytest.mark.django_db

BAD = [
    ("runs-lease-seconds", "0"),
    ("runs-lease-seconds", "86401"),
    ("exports-retry-base-seconds", "1e300"),
    ("exports-retry-base-seconds", "0.5"),
    ("exports-max-attempts", "0"),
    ("exports-max-attempts", "2.5"),
    ("exports-max-attempts", "1000"),
    ("groups-relative-recompute-minutes", "0"),
    ("groups-relative-recompute-minutes", "10081"),
    ("runs-lease-seconds", "nan"),
    ("runs-lease-seconds", "inf"),
    ("runs-lease-seconds", "soon"),
]


@pytest.fixture(autouse=True)
def production_bounds(settings):
    """The bounds deployments get (tests.settings lowers two minimums for the fault tests)."""
    settings.GROUPAROO_SETTING_MINIMUMS = {}


def _row(key: str) -> m.Setting:
    d = next(d for d in DEFAULTS if d.key == key)
    row, _ = m.Setting.objects.get_or_create(
        plugin="core", key=key, defaults={"value": d.default, "type": d.type, "title": d.title}
    )
    return row


def _write_straight_to_the_table(key: str, value: str) -> None:
    _row(key)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_setting SET value = %s WHERE plugin = 'core' AND key = %s", [value, key]
        )


def test_every_setting_has_bounds_around_its_default():
    """Number settings have bounds around their default; text settings a check it passes."""
    for d in DEFAULTS:
        assert setting_problem(d.key, d.default) is None
        if d.type != "number":
            assert d.check is not None, d.key
            continue
        assert d.minimum is not None and d.maximum is not None, d.key
        assert d.minimum <= float(d.default) <= d.maximum, d.key


@pytest.mark.parametrize(("key", "value"), BAD)
def test_the_api_refuses_a_value_outside_the_bounds_on_the_field(key, value):
    row = _row(key)
    api_key, plaintext = api_key_create(name="settings-editor")
    api_key_set_permissions(api_key=api_key, read=["settings"], write=["settings"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    response = api.patch(f"/api/v1/settings/{row.pk}/", {"value": value}, format="json")
    assert response.status_code == 400, response.content
    [message] = response.json()["errors"]["value"]
    assert message.startswith("Must be a ") and repr(value) in message
    row.refresh_from_db()
    default = next(d.default for d in DEFAULTS if d.key == key)
    assert row.value == default
    ok = api.patch(f"/api/v1/settings/{row.pk}/", {"value": default}, format="json")
    assert ok.status_code == 200, ok.content


@pytest.mark.parametrize(
    ("key", "value"), [("runs-lease-seconds", "0"), ("exports-retry-base-seconds", "1e300")]
)
def test_the_admin_form_shows_a_field_error(key, value, admin_client):
    row = _row(key)
    url = f"/admin/core/setting/{row.pk}/change/"
    data = {
        "plugin": "core",
        "key": key,
        "value": value,
        "type": row.type,
        "title": row.title,
        "description": "",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form again, not a redirect
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["value"] and "Must be a number from" in errors["value"][0]
    row.refresh_from_db()
    assert row.value != value
    assert admin_client.post(url, {**data, "value": "600"}).status_code == 302


def test_validate_names_the_file_the_setting_and_the_key(tmp_path):
    write_config(
        tmp_path,
        {
            "settings/lease.json": {
                "id": "lease",
                "class": "Setting",
                "pluginName": "core",
                "key": "runs-lease-seconds",
                "value": 0,
            },
            "settings/retry.json": {
                "id": "retry",
                "class": "Setting",
                "pluginName": "core",
                "key": "exports-retry-base-seconds",
                "value": "1e300",
            },
        },
    )
    config = config_validate(directory=tmp_path)
    found = {(p.file, p.object_id, p.key): p.message for p in config.problems.errors}
    assert set(found) == {
        ("settings/lease.json", "lease", "value"),
        ("settings/retry.json", "retry", "value"),
    }
    assert (
        "core.runs-lease-seconds must be a number from 180 to 86400 (seconds), not '0'"
        in found[("settings/lease.json", "lease", "value")]
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("runs-lease-seconds", "0", 180),
        ("runs-lease-seconds", "-5", 180),
        ("runs-lease-seconds", "nan", 300),
        ("runs-lease-seconds", "inf", 300),
        ("runs-lease-seconds", "soon", 300),
        ("exports-retry-base-seconds", "1e300", 86400),
        ("exports-max-attempts", "0", 1),
        ("exports-max-attempts", "2.7", 2),
        ("exports-max-attempts", "1e9", 20),
        ("groups-relative-recompute-minutes", "-Infinity", 60),
        ("groups-relative-recompute-minutes", "999999", 10080),
    ],
)
def test_the_engine_reads_a_bad_row_as_its_default_or_nearest_bound(key, value, expected):
    _write_straight_to_the_table(key, value)
    assert setting_number(key) == expected


def test_a_zero_lease_row_does_not_let_a_second_worker_take_a_held_run(tmp_path):
    from core.engine.runs import run_claim
    from tests.engine.conftest import make_shop

    shop = make_shop(tmp_path)
    run = m.Run.objects.create(
        creator_type=RunCreator.MANUAL,
        source=shop.users,
        schedule=shop.users_schedule,
        state=RunState.PENDING,
    )
    _write_straight_to_the_table("runs-lease-seconds", "0")
    assert run_claim(run.pk)  # the first worker
    assert not run_claim(run.pk)  # a second one, a moment later: the lease is held


def test_a_huge_retry_delay_row_is_read_as_one_day_and_the_export_is_retried_within_a_week(tmp_path):
    from core.engine.exports import MAX_RETRY_DELAY_SECONDS, exports_send
    from tests.engine import fakes
    from tests.engine.conftest import make_shop
    from tests.engine.helpers import sync

    fakes.reset()
    shop = make_shop(tmp_path)
    app = m.App.objects.create(name="memory", type="memory")
    dest = m.Destination.objects.create(
        name="down",
        app=app,
        model=shop.model,
        type="memory-export",
        options={"name": "down"},
        collection="model",
    )
    m.DestinationMapping.objects.create(
        destination=dest, remote_key="id", property=shop.props["user_id"]
    )
    sync(shop.users_schedule, export=False)
    _write_straight_to_the_table("exports-retry-base-seconds", "1e300")
    _write_straight_to_the_table("exports-max-attempts", "1e9")
    # The worst case the bounds allow: the 19th failure of 20 attempts, at a one-day base.
    m.Export.objects.filter(destination=dest).update(attempts=18)
    fakes.MemoryDestination.SCRIPT["down"] = ["down"]
    try:
        assert exports_send(destination_id=dest.pk).retried == 4
    finally:
        fakes.reset()
    now = timezone.now()
    for export in m.Export.objects.filter(destination=dest):
        assert export.state == ExportState.PENDING and export.attempts == 19
        # One day doubled 18 times, capped at a week (core.engine.exports.retry_delay).
        expected = export.updated_at + timedelta(seconds=MAX_RETRY_DELAY_SECONDS)
        assert abs(export.send_after - expected) < timedelta(seconds=5)
        assert export.send_after > now
