"""A CSV file uploaded in the admin is kept under the media folder and read by the source."""
from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core import models as m
from core.services.sources import source_preview
from tests.admin.forms import form_data, page_errors


def test_uploading_a_csv_fills_in_the_source_path(admin_client, settings, tmp_path, db):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    model = m.RecordModel.objects.create(name="people")
    app = m.App.objects.create(name="files", type="csv", options={})
    url = reverse("admin:core_source_add") + "?type=csv-file"
    page = admin_client.get(url)
    assert 'enctype="multipart/form-data"' in page.content.decode()
    data = form_data(page, "source_form")
    data.update(name="people.csv", app=app.pk, model=model.pk, type="csv-file")
    data.pop("opt_path", None)
    data["upload_file"] = SimpleUploadedFile("people.csv", b"id,email\n1,a@example.com\n2,b@example.com\n")
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    source = m.Source.objects.get(name="people.csv")
    stored = Path(source.options["path"])
    assert stored.parent == tmp_path / "media" / "csv" and stored.read_text().startswith("id,email")
    rows = source_preview(source=source)
    assert [str(r["email"]) for r in rows] == ["a@example.com", "b@example.com"]


def test_without_a_path_or_an_upload_the_path_is_required(admin_client, settings, tmp_path, db):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    model = m.RecordModel.objects.create(name="people")
    app = m.App.objects.create(name="files", type="csv", options={})
    url = reverse("admin:core_source_add") + "?type=csv-file"
    data = form_data(admin_client.get(url), "source_form")
    data.update(name="nothing", app=app.pk, model=model.pk, type="csv-file", opt_path="")
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert not m.Source.objects.filter(name="nothing").exists()
