"""The operations that are not CRUD: run a schedule, recompute a group, test an app, preview a
source, import and export one record, retry failed exports, stop a run, status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core import models as m
from core.choices import ExportState, RunCreator, RunState
from core.selectors import status_summary
from tests.engine.helpers import sync_all

pytestmark = pytest.mark.django_db


def test_running_a_schedule_answers_202_with_the_run_and_does_the_work(
    world, full, django_capture_on_commit_callbacks
):
    url = f"/api/v1/schedules/{world.shop.users_schedule.pk}/run/"
    with django_capture_on_commit_callbacks(execute=True):
        response = full.post(url, {"full": True}, format="json")
    assert response.status_code == 202
    run = m.Run.objects.get(pk=response.json()["id"])
    assert run.full and run.source == world.shop.users and run.state == RunState.COMPLETE
    assert m.Record.objects.filter(model=world.shop.model).count() == 4
    assert {r["id"] for r in world.shop.dst_rows()} == {"1", "2", "3", "4"}


def test_running_an_active_schedule_returns_the_active_run(world, full):
    url = f"/api/v1/schedules/{world.shop.users_schedule.pk}/run/"
    first = full.post(url).json()
    second = full.post(url, {"full": False}, format="json").json()
    assert first["id"] == second["id"] and first["state"] == "pending"
    assert full.post(url, {"full": "maybe"}, format="json").status_code == 400


def test_recomputing_a_group(world, full, django_capture_on_commit_callbacks):
    sync_all(world.shop)
    m.GroupMember.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        response = full.post(f"/api/v1/groups/{world.shop.high_value.pk}/recompute/")
    assert response.status_code == 202
    assert response.json()["creator_type"] == RunCreator.GROUP
    members = full.get(f"/api/v1/groups/{world.shop.high_value.pk}/members/?current=true").json()
    assert members["count"] == 2  # ltv 900 and 600


def test_testing_app_connections(world, full, monkeypatch):
    response = full.post(f"/api/v1/apps/{world.shop.users.app_id}/test/")
    assert response.status_code == 200 and "SQLite" in response.json()["message"]
    m.App.objects.filter(pk=world.secret_app.pk).update(options={"host": "down.invalid"})
    response = full.post(f"/api/v1/apps/{world.secret_app.pk}/test/")
    assert response.status_code == 502
    assert response.json() == {"message": "Connection refused by down.invalid"}
    world.secret_app.refresh_from_db()
    world.secret_app.secret_options = {"password": "env:GROUPAROO_TEST_UNSET_VARIABLE"}
    world.secret_app.save()
    monkeypatch.delenv("GROUPAROO_TEST_UNSET_VARIABLE", raising=False)
    response = full.post(f"/api/v1/apps/{world.secret_app.pk}/test/")
    assert response.status_code == 400 and "GROUPAROO_TEST_UNSET_VARIABLE" in response.json()["message"]


def test_previewing_a_source(world, full):
    response = full.post(f"/api/v1/sources/{world.shop.users.pk}/preview/", {"limit": 2}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert len(body["rows"]) == 2 and {"id", "email"} <= set(body["columns"])
    assert full.post(f"/api/v1/sources/{world.shop.users.pk}/preview/", {"limit": 0}, format="json").status_code == 400
    columns = full.get(f"/api/v1/sources/{world.shop.users.pk}/columns/").json()
    assert "email" in [c["name"] for c in columns]
    m.Source.objects.filter(pk=world.shop.users.pk).update(options={"table": "no_such_table"})
    response = full.post(f"/api/v1/sources/{world.shop.users.pk}/preview/")
    assert response.status_code == 502 and "no_such_table" in response.json()["message"]


def test_importing_one_record_by_a_unique_value_and_exporting_it(world, full):
    response = full.post("/api/v1/records/import/", {
        "model": world.shop.model.pk, "property": "email", "value": "bob@example.com",
    }, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["data"]["properties"]["email"]["value"] == "bob@example.com"
    assert body["data"]["properties"]["purchase_count"]["value"] == 1
    assert body["exports"] == {str(world.shop.destination.pk): ExportState.COMPLETE}
    assert "2" in {r["id"] for r in world.shop.dst_rows()}


def test_import_errors(world, full):
    def post(**body):
        return full.post("/api/v1/records/import/", {"model": world.shop.model.pk, **body}, format="json")

    response = post(property="user_id", value="999")
    assert response.status_code == 404 and "999" in response.json()["message"]
    response = post(property="ltv", value="1")
    assert response.status_code == 400 and "property" in response.json()["errors"]
    response = post(property="nope", value="1")
    assert response.status_code == 400 and "property" in response.json()["errors"]
    response = post(property="user_id", value="abc")
    assert response.status_code == 400 and "value" in response.json()["errors"]


def test_exporting_one_record_now(world, full):
    response = full.post(f"/api/v1/records/{world.record.pk}/export/")
    assert response.status_code == 200
    assert response.json()["exports"][str(world.shop.destination.pk)] == ExportState.COMPLETE
    assert [r["id"] for r in world.shop.dst_rows()] == ["1"]
    exports = full.get(f"/api/v1/records/{world.record.pk}/exports/").json()
    assert exports["count"] == 2  # the CRM's and the failed one of the newsletter
    imports = full.get(f"/api/v1/records/{world.record.pk}/imports/").json()
    assert [i["id"] for i in imports["results"]] == [world.run.imports.get().pk]


def test_retrying_failed_exports_in_a_window(world, full):
    url = f"/api/v1/destinations/{world.secret_destination.pk}/retry-failed/"
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    assert full.post(url, {"since": later}, format="json").json() == {"retried": 0}
    response = full.post(url, {"since": later, "until": timezone.now().isoformat()}, format="json")
    assert response.status_code == 400 and "until" in response.json()["errors"]
    response = full.post(url, {}, format="json")
    assert response.status_code == 202 and response.json() == {"retried": 1}
    world.failed_export.refresh_from_db()
    assert world.failed_export.state == ExportState.PENDING and world.failed_export.attempts == 0
    assert full.post(url).json() == {"retried": 0}


def test_stopping_runs(world, full):
    active = m.Run.objects.create(creator_type=RunCreator.MANUAL, source=world.shop.purchases,
                                  state=RunState.RUNNING)
    url = f"/api/v1/runs/{active.pk}/stop/"
    response = full.post(url)
    assert response.status_code == 200 and response.json()["state"] == RunState.STOPPED
    assert full.post(url).status_code == 200  # stopping again: no-op
    response = full.post(f"/api/v1/runs/{world.run.pk}/stop/")
    assert response.status_code == 409 and "complete" in response.json()["message"]


def test_status_matches_the_status_command(world, full, client_for, keys):
    sync_all(world.shop)
    response = full.get("/api/v1/status")
    assert response.status_code == 200
    assert response.json() == status_summary()
    assert client_for(keys.make(read=["system"])).get("/api/v1/status/").status_code == 200
