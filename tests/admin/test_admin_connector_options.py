"""Connector options as form fields: type first, then options; secrets never rendered back;
blank keeps a stored secret; the connector's validation lands on the right field."""

from __future__ import annotations

import json

from django.db import connection
from django.urls import reverse

from core import crypto
from core import models as m
from tests.admin.conftest import SECRET
from tests.admin.forms import form_data, page_errors


def _add_url(model: str) -> str:
    return reverse(f"admin:core_{model}_add")


def _change_url(obj) -> str:
    return reverse(f"admin:core_{obj._meta.model_name}_change", args=[obj.pk])


def test_add_page_asks_for_the_type_first(admin_client, world):
    html = admin_client.get(_add_url("app")).content.decode()
    assert 'name="type"' in html
    assert 'value="admintest"' in html
    assert "opt_host" not in html
    assert "Choose the type and save" in html


def test_add_page_with_type_in_the_query_shows_its_option_fields(admin_client, world):
    html = admin_client.get(_add_url("app"), {"type": "admintest"}).content.decode()
    for name in ("opt_host", "opt_port", "opt_ssl", "opt_mode", "opt_notes", "opt_password"):
        assert f'name="{name}"' in html
    assert 'type="password"' in html
    assert "Admin test app options" in html


def test_choosing_a_type_shows_its_options_before_anything_is_saved(admin_client, world):
    data = form_data(admin_client.get(_add_url("app")), "app_form")
    data.update(name="new", type="admintest")
    response = admin_client.post(_add_url("app"), data)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Fill in the options of Admin test app below, then save again." in html
    assert 'name="opt_host"' in html
    assert 'name="opt_port" value="5432"' in html  # pre-filled with the declared default
    assert not m.App.objects.filter(name="new").exists()

    data = form_data(response, "app_form")
    assert data["options_for"] == "admintest"
    data.update(opt_host="db.example", opt_port="5433", opt_mode="fast", opt_password="pw")
    response = admin_client.post(_add_url("app"), data)

    assert response.status_code == 302, page_errors(response)
    app = m.App.objects.get(name="new")
    assert app.type == "admintest"
    assert app.options == {"host": "db.example", "port": 5433, "ssl": True, "mode": "fast"}
    assert dict(app.secret_options) == {"password": "pw"}


def test_connector_validation_errors_land_on_their_fields(admin_client, world):
    data = form_data(admin_client.get(_add_url("app"), {"type": "admintest"}), "app_form")
    data.update(name="new", opt_host="db", opt_port="70000", opt_password="pw")
    response = admin_client.post(_add_url("app"), data)

    assert response.status_code == 200
    assert "The port must be between 1 and 65535." in response.content.decode()
    errors = response.context["adminform"].form.errors
    assert "opt_port" in errors
    assert not m.App.objects.filter(name="new").exists()


def test_a_missing_required_secret_is_an_error_on_its_field(admin_client, world):
    data = form_data(admin_client.get(_add_url("app"), {"type": "admintest"}), "app_form")
    data.update(name="new", opt_host="db", opt_password="")
    response = admin_client.post(_add_url("app"), data)

    assert response.status_code == 200
    assert "opt_password" in response.context["adminform"].form.errors
    assert not m.App.objects.filter(name="new").exists()


def test_stored_secret_never_appears_in_the_change_page(admin_client, world):
    for obj in (world["app"], world["destination"]):
        response = admin_client.get(_change_url(obj))
        html = response.content.decode()
        assert response.status_code == 200
        assert SECRET not in html
        assert "leave blank to keep the stored value" in html
        assert 'name="opt_host"' in html or 'name="opt_table"' in html


def test_blank_secret_keeps_the_stored_value_and_other_options_change(admin_client, world):
    app = world["app"]
    data = form_data(admin_client.get(_change_url(app)), "app_form")
    assert data["opt_password"] == ""
    data["opt_host"] = "db2.local"
    response = admin_client.post(_change_url(app), data)

    assert response.status_code == 302, page_errors(response)
    app.refresh_from_db()
    assert app.options["host"] == "db2.local"
    assert app.secret_options["password"] == SECRET


def test_a_new_secret_replaces_the_stored_one_and_env_references_are_stored_as_typed(
    admin_client, world
):
    app = world["app"]
    data = form_data(admin_client.get(_change_url(app)), "app_form")
    data["opt_password"] = "env:WAREHOUSE_PASSWORD"
    response = admin_client.post(_change_url(app), data)

    assert response.status_code == 302, page_errors(response)
    app.refresh_from_db()
    assert app.secret_options["password"] == "env:WAREHOUSE_PASSWORD"


def test_the_database_column_holds_no_plaintext(world):
    app = world["app"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_options FROM core_app WHERE id = %s", [app.pk])
        (raw,) = cursor.fetchone()
    assert SECRET not in raw
    assert "password" not in raw
    assert json.loads(crypto.decrypt(raw)) == {"password": SECRET}


def test_secret_options_cannot_be_filtered_on(admin_client, world):
    app_list = reverse("admin:core_app_changelist")
    assert admin_client.get(app_list, {"secret_options__contains": "s3cr"}).status_code == 400
    assert admin_client.get(app_list, {"secret_options": "x"}).status_code == 400
    source_list = reverse("admin:core_source_changelist")
    assert admin_client.get(source_list, {"app__secret_options__contains": "s"}).status_code == 400
    assert admin_client.get(app_list, {"type": "admintest"}).status_code == 200


def test_add_and_change_posts_are_marked_sensitive(admin_client, world):
    for model in ("app", "source", "destination"):
        response = admin_client.post(_add_url(model), {"name": "x"})
        assert response.wsgi_request.sensitive_post_parameters == "__ALL__"
    response = admin_client.post(_change_url(world["app"]), {"name": "x"})
    assert response.wsgi_request.sensitive_post_parameters == "__ALL__"


def test_source_options_are_edited_as_fields(admin_client, world):
    source = world["source"]
    response = admin_client.get(_change_url(source))
    assert 'name="opt_table" value="users"' in response.content.decode()
    data = form_data(response, "source_form")
    data["opt_table"] = "people"
    response = admin_client.post(_change_url(source), data)

    assert response.status_code == 302, page_errors(response)
    source.refresh_from_db()
    assert source.options == {"table": "people"}


def test_destination_secret_is_kept_when_blank(admin_client, world):
    destination = world["destination"]
    data = form_data(admin_client.get(_change_url(destination)), "destination_form")
    assert data["opt_token"] == ""
    data["opt_primaryKey"] = "email"
    response = admin_client.post(_change_url(destination), data)

    assert response.status_code == 302, page_errors(response)
    destination.refresh_from_db()
    assert destination.options == {"table": "out", "primaryKey": "email"}
    assert destination.secret_options == {"token": SECRET}


def test_property_options_come_from_the_source_connector(admin_client, world):
    prop = world["vip"]
    response = admin_client.get(_change_url(prop))
    html = response.content.decode()
    assert 'name="opt_column" value="vip"' in html
    assert 'name="opt_aggregationMethod"' in html
    data = form_data(response, "property_form")
    data.update(opt_column="is_vip", opt_aggregationMethod="count")
    response = admin_client.post(_change_url(prop), data)

    assert response.status_code == 302, page_errors(response)
    prop.refresh_from_db()
    assert prop.options == {"column": "is_vip", "aggregationMethod": "count"}


def test_property_add_page_builds_options_for_the_chosen_source(admin_client, world):
    response = admin_client.get(_add_url("property"), {"source": world["source"].pk})
    assert 'name="opt_column"' in response.content.decode()
    data = form_data(response, "property_form")
    data.update(model=world["model"].pk, key="name", type="string", opt_column="full_name")
    response = admin_client.post(_add_url("property"), data)

    assert response.status_code == 302, page_errors(response)
    assert m.Property.objects.get(key="name").options == {
        "column": "full_name",
        "aggregationMethod": "exact",
    }


def test_an_app_whose_connector_is_not_installed_still_renders(admin_client, world):
    app = m.App.objects.create(
        name="legacy", type="mailchimp", options={"listId": "x"}, secret_options={"apiKey": SECRET}
    )
    response = admin_client.get(_change_url(app))
    html = response.content.decode()
    assert response.status_code == 200
    assert "listId: x" in html
    assert "apiKey: ******** (set)" in html
    assert SECRET not in html


def test_destination_add_page_flow_with_inlines(admin_client, world):
    url = _add_url("destination")
    data = form_data(admin_client.get(url, {"type": "admintest-export"}), "destination_form")
    data.update(
        name="warehouse copy",
        app=world["app"].pk,
        model=world["model"].pk,
        opt_table="copy",
        **{
            "mappings-TOTAL_FORMS": "1",
            "mappings-0-id": "",
            "mappings-0-property": world["other_property"].pk,
            "mappings-0-remote_key": "email",
        },
    )
    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "belongs to another model than the destination" in response.content.decode()
    assert not m.Destination.objects.filter(name="warehouse copy").exists()

    data["mappings-0-property"] = world["email"].pk
    response = admin_client.post(url, data)

    assert response.status_code == 302, page_errors(response)
    destination = m.Destination.objects.get(name="warehouse copy")
    assert destination.options == {"table": "copy"}
    assert dict(destination.secret_options) == {}
    assert destination.mappings.get().property == world["email"]
