"""CRUD through the API changes what it should, validates like the admin, keeps secrets
write-only, and starts the work a save implies (like the admin's save_related)."""

from __future__ import annotations

import pytest

from core import models as m
from core.choices import RunCreator
from tests.api.conftest import APP_SECRET, DEST_SECRET, NEW_SECRET

pytestmark = pytest.mark.django_db


# --- secrets and connector options -------------------------------------------------------------


def test_app_secrets_are_write_only_and_read_back_as_set(world, full):
    response = full.post("/api/v1/apps/", {
        "name": "warehouse", "type": "apitest", "options": {"host": "db", "port": 5433},
        "secret_options": {"password": NEW_SECRET},
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["options"] == {"host": "db", "port": 5433}
    assert body["secret_options"] == {"password": "set"}
    app = m.App.objects.get(name="warehouse")
    assert app.secret_options == {"password": NEW_SECRET}
    assert full.get(f"/api/v1/apps/{app.pk}/").json()["secret_options"] == {"password": "set"}


def test_secret_writes_merge(world, full):
    url = f"/api/v1/destinations/{world.secret_destination.pk}/"
    # Absent: kept.
    assert full.patch(url, {"options": {"list": "vip"}}, format="json").status_code == 200
    world.secret_destination.refresh_from_db()
    assert world.secret_destination.secret_options == {"token": DEST_SECRET}
    # A value: replaced. The response says only "set".
    response = full.patch(url, {"secret_options": {"token": NEW_SECRET}}, format="json")
    assert response.json()["secret_options"] == {"token": "set"}
    world.secret_destination.refresh_from_db()
    assert world.secret_destination.secret_options == {"token": NEW_SECRET}
    # null (or ""): cleared.
    response = full.patch(url, {"secret_options": {"token": None}}, format="json")
    assert response.json()["secret_options"] == {"token": "not set"}
    world.secret_destination.refresh_from_db()
    assert world.secret_destination.secret_options == {}


def test_env_secret_references_are_stored_as_typed(world, full):
    url = f"/api/v1/apps/{world.secret_app.pk}/"
    assert full.patch(url, {"secret_options": {"password": "env:MAILER_PASSWORD"}}, format="json").status_code == 200
    world.secret_app.refresh_from_db()
    assert world.secret_app.secret_options == {"password": "env:MAILER_PASSWORD"}


@pytest.mark.parametrize(("payload", "field"), [
    ({"options": {}}, "options.host"),
    ({"options": {"host": "h", "colour": "red"}}, "options.colour"),
    ({"options": {"host": "h", "password": "x"}}, "options.password"),
    ({"secret_options": {"host": "x"}}, "secret_options.host"),
    ({"secret_options": {"password": None}}, "secret_options.password"),
    ({"options": "nope"}, "options"),
    ({"type": "sqlite"}, "type"),
])
def test_connector_options_are_validated_by_the_connector(payload, field, world, full):
    response = full.patch(f"/api/v1/apps/{world.secret_app.pk}/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    world.secret_app.refresh_from_db()
    assert world.secret_app.secret_options == {"password": APP_SECRET}
    assert world.secret_app.options == {"host": "mail.example.com"}


def test_unknown_connector_type_is_refused(world, full):
    response = full.post("/api/v1/apps/", {"name": "x", "type": "nosuch"}, format="json")
    assert response.status_code == 400
    assert "Unknown app type 'nosuch'" in response.json()["errors"]["type"][0]


def test_source_type_must_belong_to_its_app(world, full):
    response = full.post("/api/v1/sources/", {
        "name": "s", "app": world.secret_app.pk, "model": world.shop.model.pk, "type": "sqlite-table",
        "options": {"table": "users"},
    }, format="json")
    assert response.status_code == 400 and "type" in response.json()["errors"]


# --- sources, properties, schedules ------------------------------------------------------------


def test_source_mappings_are_replaced_and_checked(world, full):
    shop = world.shop
    url = f"/api/v1/sources/{shop.users.pk}/"
    mapping = [{"remote_key": "email", "property": shop.props["email"].pk}]
    response = full.patch(url, {"mappings": mapping}, format="json")
    assert response.status_code == 200 and response.json()["mappings"] == mapping
    assert list(shop.users.mappings.values_list("remote_key", flat=True)) == ["email"]
    response = full.patch(url, {"mappings": [{"remote_key": "ltv", "property": shop.props["ltv"].pk}]},
                          format="json")
    assert response.status_code == 400 and "mappings.0.property" in response.json()["errors"]
    twice = [{"remote_key": "a", "property": shop.props["email"].pk},
             {"remote_key": "a", "property": shop.props["user_id"].pk}]
    response = full.patch(url, {"mappings": twice}, format="json")
    assert response.status_code == 400 and "mappings.1.remote_key" in response.json()["errors"]
    assert list(shop.users.mappings.values_list("remote_key", flat=True)) == ["email"]


def test_source_model_and_type_cannot_change(world, full):
    other = m.RecordModel.objects.create(name="accounts")
    response = full.patch(f"/api/v1/sources/{world.shop.users.pk}/", {"model": other.pk}, format="json")
    assert response.status_code == 400 and "model" in response.json()["errors"]


def test_creating_a_property_starts_a_full_run_of_its_source(world, full):
    response = full.post("/api/v1/properties/", {
        "source": world.shop.users.pk, "key": "nickname", "type": "string",
        "options": {"column": "first_name"}, "filters": [{"key": "ltv", "op": "gt", "match": "10"}],
    }, format="json")
    assert response.status_code == 201, response.content
    prop = m.Property.objects.get(key="nickname")
    assert prop.model == world.shop.model and response.json()["model"] == world.shop.model.pk
    assert [(f.key, f.op, f.match) for f in prop.filters.all()] == [("ltv", "gt", "10")]
    run = m.Run.objects.get(property=prop)
    assert run.source == world.shop.users and run.full and run.creator_type == RunCreator.PROPERTY


def test_property_options_are_validated_by_the_source_connector(world, full):
    response = full.post("/api/v1/properties/", {
        "source": world.shop.users.pk, "key": "nickname", "options": {"colum": "first_name"},
    }, format="json")
    assert response.status_code == 400
    assert {"options.column", "options.colum"} <= set(response.json()["errors"])


def test_unchanged_property_save_starts_nothing(world, full):
    prop = world.shop.props["first_name"]
    response = full.patch(f"/api/v1/properties/{prop.pk}/", {"type": prop.type}, format="json")
    assert response.status_code == 200
    assert not m.Run.objects.filter(property=prop).exists()


def test_schedule_validation_and_filters(world, full):
    url = f"/api/v1/schedules/{world.shop.users_schedule.pk}/"
    response = full.patch(url, {"recurring": True, "cron": "every tuesday"}, format="json")
    assert response.status_code == 400 and "cron" in response.json()["errors"]
    response = full.patch(url, {"recurring": True, "recurring_frequency": 30}, format="json")
    assert response.status_code == 400 and "recurring_frequency" in response.json()["errors"]
    response = full.patch(url, {"recurring": True, "cron": "*/15 * * * *",
                                "filters": [{"key": "ltv", "op": "gte", "match": "100"}]}, format="json")
    assert response.status_code == 200, response.content
    world.shop.users_schedule.refresh_from_db()
    assert world.shop.users_schedule.cron == "*/15 * * * *"
    assert [f.key for f in world.shop.users_schedule.filters.all()] == ["ltv"]
    # A second schedule for the same source is refused.
    response = full.post("/api/v1/schedules/", {"source": world.shop.users.pk}, format="json")
    assert response.status_code == 400 and "source" in response.json()["errors"]


# --- groups and destinations --------------------------------------------------------------------


def test_creating_a_group_with_rules_recomputes_it(world, full, django_capture_on_commit_callbacks):
    from tests.engine.helpers import sync_all

    sync_all(world.shop)
    with django_capture_on_commit_callbacks(execute=True):
        response = full.post("/api/v1/groups/", {
            "model": world.shop.model.pk, "name": "Buyers",
            "rules": [{"property": world.shop.props["purchase_count"].pk, "op": "gte", "match": "1"}],
        }, format="json")
    assert response.status_code == 201, response.content
    group = m.Group.objects.get(name="Buyers")
    run = m.Run.objects.get(group=group, creator_type=RunCreator.GROUP)
    run.refresh_from_db()
    assert run.state == "complete"
    assert group.members.filter(left_at__isnull=True).count() == 2  # users 1 and 2 bought


def test_editing_rules_replaces_them_and_recomputes(world, full):
    group = world.shop.high_value
    url = f"/api/v1/groups/{group.pk}/"
    rules = [{"property": world.shop.props["ltv"].pk, "op": "gt", "match": "100"}]
    response = full.patch(url, {"rules": rules}, format="json")
    assert response.status_code == 200
    assert [(r.op, r.match) for r in group.rules.all()] == [("gt", "100")]
    assert m.Run.objects.filter(group=group, creator_type=RunCreator.GROUP).count() == 1
    m.Run.objects.all().delete()
    # The same rules again: nothing changed, nothing starts.
    assert full.patch(url, {"rules": rules}, format="json").status_code == 200
    assert not m.Run.objects.exists()
    assert full.put(url, {"model": world.shop.model.pk, "name": group.name, "rules": []},
                    format="json").status_code == 200
    assert not group.rules.exists()


def test_rules_must_use_the_groups_model(world, full):
    other = m.RecordModel.objects.create(name="accounts")
    response = full.post("/api/v1/groups/", {
        "model": other.pk, "name": "x",
        "rules": [{"property": world.shop.props["ltv"].pk, "op": "gt", "match": "1"}],
    }, format="json")
    assert response.status_code == 400 and "rules.0.property" in response.json()["errors"]


def test_changing_a_destination_mapping_starts_a_re_export(world, full):
    destination = world.shop.destination
    url = f"/api/v1/destinations/{destination.pk}/"
    body = full.get(url).json()
    mappings = [*body["mappings"], {"property": world.shop.props["first_name"].pk, "remote_key": "name"}]
    response = full.patch(url, {"mappings": mappings}, format="json")
    assert response.status_code == 200, response.content
    assert destination.mappings.filter(remote_key="name").exists()
    run = m.Run.objects.get(destination=destination)
    assert run.creator_type == RunCreator.DESTINATION
    m.Run.objects.all().delete()
    assert full.patch(url, {"mappings": mappings}, format="json").status_code == 200
    assert not m.Run.objects.exists()


def test_destination_group_memberships_are_checked(world, full):
    destination = world.shop.destination
    other = m.Group.objects.create(model=m.RecordModel.objects.create(name="accounts"), name="x")
    response = full.patch(f"/api/v1/destinations/{destination.pk}/", {
        "group_memberships": [{"group": other.pk, "remote_key": "x"}],
    }, format="json")
    assert response.status_code == 400 and "group_memberships.0.group" in response.json()["errors"]
    response = full.patch(f"/api/v1/destinations/{destination.pk}/", {"collection": "group"}, format="json")
    assert response.status_code == 400 and "group" in response.json()["errors"]


# --- API keys and settings ---------------------------------------------------------------------


def test_creating_an_api_key_shows_it_once_and_it_works(world, full, client_for):
    response = full.post("/api/v1/api-keys/", {
        "name": "reporting", "permissions": [{"topic": "records", "read": True, "write": False}],
    }, format="json")
    assert response.status_code == 201
    body = response.json()
    key = body["key"]
    assert key.startswith(body["key_prefix"] + ".")
    api_key = m.ApiKey.objects.get(name="reporting")
    assert key not in api_key.hashed_key
    listed = full.get(f"/api/v1/api-keys/{api_key.pk}/").json()
    assert "key" not in listed and "hashed_key" not in listed
    reporting = client_for(key)
    assert reporting.get("/api/v1/records/").status_code == 200
    assert reporting.get("/api/v1/groups/").status_code == 403
    assert full.post(f"/api/v1/api-keys/{api_key.pk}/revoke/").json()["is_active"] is False
    assert reporting.get("/api/v1/records/").status_code == 401


def test_api_key_permissions_are_replaced(world, full, keys):
    keys.make(name="etl", read=["records"])
    api_key = m.ApiKey.objects.get(name="etl")
    url = f"/api/v1/api-keys/{api_key.pk}/"
    perms = [{"topic": "groups", "read": True, "write": True}]
    assert full.patch(url, {"permissions": perms}, format="json").json()["permissions"] == perms
    twice = perms * 2
    response = full.patch(url, {"permissions": twice}, format="json")
    assert response.status_code == 400 and "permissions.1.topic" in response.json()["errors"]
    assert full.patch(url, {"permissions": [{"topic": "nope"}]}, format="json").status_code == 400


def test_settings_values_are_typed(world, full):
    url = f"/api/v1/settings/{world.setting.pk}/"
    response = full.patch(url, {"value": "lots"}, format="json")
    assert response.status_code == 400 and "value" in response.json()["errors"]
    # A read-only field sent with another value is refused, not silently ignored.
    response = full.patch(url, {"value": "7", "key": "other"}, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["key"]
    assert full.patch(url, {"value": "7", "key": "exports-max-attempts"}, format="json").status_code == 200
    world.setting.refresh_from_db()
    assert (world.setting.key, world.setting.value) == ("exports-max-attempts", "7")
    assert full.post("/api/v1/settings/", {"key": "x"}, format="json").status_code == 405
    assert full.delete(url).status_code == 405


def test_records_are_deleted_not_edited(world, full):
    url = f"/api/v1/records/{world.record.pk}/"
    assert full.patch(url, {"state": "deleted"}, format="json").status_code == 405
    assert full.delete(url).status_code == 204
    assert not m.Record.objects.filter(pk=world.record.pk).exists()


def test_group_state_deleted_and_read_only_fields_are_refused(world, full):
    """PATCH {"state": "deleted"} would freeze the memberships of a group that still exists, and
    {"member_count": 99} would be silently ignored: both are 400 and change nothing; sending back
    what a GET returned still works."""
    group = world.shop.high_value
    url = f"/api/v1/groups/{group.pk}/"
    response = full.patch(url, {"state": "deleted"}, format="json")
    assert response.status_code == 400 and "state" in response.json()["errors"], response.content
    response = full.patch(url, {"member_count": 99, "id": group.pk + 1}, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()["errors"]) == {"member_count", "id"}
    group.refresh_from_db()
    assert group.state == "ready" and group.pk == world.shop.high_value.pk
    body = full.get(url).json()
    assert full.patch(url, {**body, "state": "draft"}, format="json").status_code == 200
    group.refresh_from_db()
    assert group.state == "draft"
