"""File path options given through the API or the admin must stay inside
GROUPAROO_FILE_DIRECTORIES; connectors never open the project's .env or the application's
database, whoever gave the path; config files are trusted."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connectors.base import ConnectorError
from core import models as m
from core.config.apply import config_apply
from core.services.sources import source_preview
from tests.admin.forms import form_data, page_errors
from tests.config.conftest import write_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def dirs(settings, tmp_path):
    """An allowed directory, a directory outside it, and a project whose .env holds a secret."""
    allowed, outside, project = tmp_path / "allowed", tmp_path / "outside", tmp_path / "project"
    for directory in (allowed, outside, project):
        directory.mkdir()
    (project / ".env").write_text("id,SECRET_KEY\n1,leaked-secret-key\n")
    (outside / "private.csv").write_text("id,secret\n1,leaked-private-row\n")
    (allowed / "people.csv").write_text("id,email\n1,a@example.com\n")
    settings.BASE_DIR = project
    settings.GROUPAROO_FILE_DIRECTORIES = [str(allowed), str(project)]
    return allowed, outside, project


@pytest.fixture
def csv_app(db):
    return m.App.objects.create(name="files", type="csv", options={})


def _source_body(app, **options):
    model, _ = m.RecordModel.objects.get_or_create(name="people")
    return {
        "name": "s",
        "app": app.pk,
        "model": model.pk,
        "type": options.pop("type"),
        "options": options,
    }


@pytest.mark.parametrize("type_, key", [("csv-url", "url"), ("csv-file", "path")])
def test_an_api_source_cannot_read_a_file_outside_the_directories(full, dirs, csv_app, type_, key):
    _, outside, _ = dirs
    body = _source_body(csv_app, type=type_, **{key: str(outside / "private.csv")})
    response = full.post("/api/v1/sources/", body, format="json")
    assert response.status_code == 400, response.content
    [message] = response.json()["errors"][f"options.{key}"]
    assert "GROUPAROO_FILE_DIRECTORIES" in message and f"({key})" in message
    assert not m.Source.objects.exists()


def test_an_api_source_cannot_read_the_projects_env_file(full, dirs, csv_app):
    _, _, project = dirs
    body = _source_body(csv_app, type="csv-url", url=str(project / ".env"))
    response = full.post("/api/v1/sources/", body, format="json")
    assert response.status_code == 400, response.content
    assert "server's own files" in response.json()["errors"]["options.url"][0]
    assert "leaked-secret-key" not in response.content.decode()


def test_a_symbolic_link_inside_the_directories_to_a_file_outside_is_refused(full, dirs, csv_app):
    allowed, outside, _ = dirs
    (allowed / "link.csv").symlink_to(outside / "private.csv")
    body = _source_body(csv_app, type="csv-file", path=str(allowed / "link.csv"))
    response = full.post("/api/v1/sources/", body, format="json")
    assert response.status_code == 400, response.content
    assert "GROUPAROO_FILE_DIRECTORIES" in response.json()["errors"]["options.path"][0]


def test_a_file_inside_the_directories_is_accepted_and_read(full, dirs, csv_app):
    allowed, _, _ = dirs
    body = _source_body(csv_app, type="csv-file", path=str(allowed / "people.csv"))
    response = full.post("/api/v1/sources/", body, format="json")
    assert response.status_code == 201, response.content
    preview = full.post(f"/api/v1/sources/{response.json()['id']}/preview/", {}, format="json")
    assert "a@example.com" in preview.content.decode()


def test_a_relative_path_is_checked_under_the_apps_base_directory(full, dirs, db):
    allowed, _, _ = dirs
    app = m.App.objects.create(name="based", type="csv", options={"baseDirectory": str(allowed)})
    ok = full.post(
        "/api/v1/sources/", _source_body(app, type="csv-file", path="people.csv"), format="json"
    )
    assert ok.status_code == 201, ok.content
    m.Source.objects.all().delete()
    bad = full.post(
        "/api/v1/sources/",
        _source_body(app, type="csv-file", path="../outside/private.csv"),
        format="json",
    )
    assert bad.status_code == 400 and "options.path" in bad.json()["errors"]


@pytest.mark.parametrize(
    "type_, key",
    [("csv", "baseDirectory"), ("sqlite", "path"), ("duckdb", "path"), ("logger", "filename")],
)
def test_an_api_app_cannot_name_a_file_outside_the_directories(full, dirs, type_, key):
    _, outside, _ = dirs
    body = {"name": "a", "type": type_, "options": {key: str(outside / "private.csv")}}
    response = full.post("/api/v1/apps/", body, format="json")
    assert response.status_code == 400, response.content
    assert "GROUPAROO_FILE_DIRECTORIES" in response.json()["errors"][f"options.{key}"][0]
    assert not m.App.objects.exists()


def test_an_admin_source_cannot_read_a_file_outside_the_directories(admin_client, dirs, csv_app):
    _, outside, _ = dirs
    model = m.RecordModel.objects.create(name="people")
    url = reverse("admin:core_source_add") + "?type=csv-file"
    data = form_data(admin_client.get(url), "source_form")
    data.update(
        name="x",
        app=csv_app.pk,
        model=model.pk,
        type="csv-file",
        opt_path=str(outside / "private.csv"),
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "GROUPAROO_FILE_DIRECTORIES" in page_errors(response)["form"]["opt_path"][0]
    assert not m.Source.objects.filter(name="x").exists()


def test_connectors_never_open_the_env_file_whoever_gave_the_path(dirs, csv_app):
    _, _, project = dirs
    model = m.RecordModel.objects.create(name="people")
    source = m.Source.objects.create(
        name="s", app=csv_app, model=model, type="csv-file", options={"path": str(project / ".env")}
    )
    with pytest.raises(ConnectorError, match="never open") as raised:
        source_preview(source=source)
    assert "leaked-secret-key" not in str(raised.value)


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_connectors_never_open_the_application_database(settings, tmp_path):
    from connectors.logger import log_path
    from connectors.sqlite import SqliteDialect

    database = tmp_path / "app.sqlite3"
    database.write_bytes(b"")
    settings.DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}
    }
    with pytest.raises(ConnectorError, match="never open"):
        SqliteDialect()._path({"path": str(database)})
    with pytest.raises(ConnectorError, match="never open"):
        log_path({"filename": f"{database}-wal"})


def test_config_files_are_trusted_with_paths_outside_the_directories(dirs, db):
    _, outside, _ = dirs
    directory = write_config(
        outside / "config",
        {
            "apps/log.json": {
                "id": "log",
                "class": "App",
                "name": "log",
                "type": "logger",
                "options": {"filename": str(outside / "export.log")},
            }
        },
    )
    config_apply(directory=directory)
    assert m.App.objects.get(config_id="log").options["filename"] == str(outside / "export.log")
