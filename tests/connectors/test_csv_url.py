"""Grouparoo's CSV source `csv-import-table` (our csv-url): a CSV file at a URL, downloaded
through the webhooks' address guard from a local server (loopback, allowed by the setting in
these tests except where the refusal is tested), kept, and downloaded again once older than
`fileAgeHours`; or a path on the server. The reading itself is csv-file's (its own tests and
the source contract cover it)."""

from __future__ import annotations

import os
import time

import pytest

from connectors import csv_file, registry
from connectors.base import ConnectorError
from core import models as m
from core.config.apply import config_apply
from core.services.sources import source_preview
from tests.config.conftest import write_config

USERS = "id,email\n1,ada@example.com\n2,bob@example.com\n"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def allow_loopback(settings):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True


def serve(httpserver, text: str, path: str = "/exports/users.csv") -> str:
    httpserver.expect_request(path).respond_with_data(text, content_type="text/csv")
    return httpserver.url_for(path)


def emails(url: str, **options) -> list[str]:
    with registry.get_source("csv-import-table")({}, {"url": url, **options}) as source:
        batch = source.read_batch(key_column="id", columns=None, watermark_column=None, since=None,
                                  after=None, limit=100, filters=[])  # fmt: skip
    return [row["email"] for row in batch.rows]


def test_grouparoo_type_name_is_the_url_source():
    assert registry.get_source("csv-import-table") is registry.get_source("csv-url")


def test_a_url_is_downloaded_and_read(httpserver, media, allow_loopback):
    url = serve(httpserver, USERS)
    assert emails(url) == ["ada@example.com", "bob@example.com"]
    [copy] = (media / "csv-cache").glob("*.csv")
    assert copy.read_text() == USERS


def test_the_copy_is_used_until_it_is_older_than_file_age_hours(httpserver, media, allow_loopback):
    url = serve(httpserver, USERS)
    assert emails(url, fileAgeHours=1) == ["ada@example.com", "bob@example.com"]
    httpserver.clear()
    url = serve(httpserver, USERS + "3,cy@example.com\n")
    assert emails(url, fileAgeHours=1) == ["ada@example.com", "bob@example.com"]  # the copy
    assert len(httpserver.log) == 0
    [copy] = (media / "csv-cache").glob("*.csv")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(copy, (two_hours_ago, two_hours_ago))
    assert emails(url, fileAgeHours="1") == ["ada@example.com", "bob@example.com", "cy@example.com"]
    assert len(httpserver.log) == 1


def test_an_open_source_keeps_its_copy_while_a_newer_one_is_downloaded(
    httpserver, media, allow_loopback
):
    url = serve(httpserver, USERS)
    running = registry.get_source("csv-url")({}, {"url": url, "fileAgeHours": 0})
    assert len(running.preview(10)) == 2
    httpserver.clear()
    serve(httpserver, USERS + "3,cy@example.com\n")
    assert emails(url, fileAgeHours=0) == ["ada@example.com", "bob@example.com", "cy@example.com"]
    assert [row["email"] for row in running.preview(10)] == ["ada@example.com", "bob@example.com"]
    running.close()
    del running  # the snapshot lives as long as its connector
    assert [n for n in os.listdir(media / "csv-cache") if n.endswith(".reading")] == []


def test_private_addresses_are_refused_without_the_setting(httpserver, media, settings):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = False
    url = serve(httpserver, USERS) + "?token=s3cret-token"
    with pytest.raises(ConnectorError) as raised:
        emails(url)
    assert raised.value.permanent
    assert "non-public address 127.0.0.1" in raised.value.message
    assert "GROUPAROO_ALLOW_PRIVATE_WEBHOOKS" in raised.value.message
    assert "s3cret" not in raised.value.message and "/exports" not in raised.value.message
    assert len(httpserver.log) == 0  # nothing was sent
    assert not list((media / "csv-cache").glob("*.csv"))


def test_a_failed_download_keeps_no_half_file(httpserver, media, allow_loopback, monkeypatch):
    monkeypatch.setattr(csv_file, "MAX_UPLOAD_BYTES", 10)
    url = serve(httpserver, USERS)
    with pytest.raises(ConnectorError, match="larger than 10 bytes"):
        emails(url)
    assert [name for name in os.listdir(media / "csv-cache") if not name.endswith(".lock")] == []


def test_a_server_error_is_retryable_and_a_missing_file_is_not(httpserver, media, allow_loopback):
    httpserver.expect_request("/down.csv").respond_with_data("busy", status=503)
    with pytest.raises(ConnectorError) as raised:
        emails(httpserver.url_for("/down.csv"))
    assert not raised.value.permanent and "HTTP 503" in raised.value.message
    httpserver.expect_request("/gone.csv").respond_with_data("", status=404)
    with pytest.raises(ConnectorError) as raised:
        emails(httpserver.url_for("/gone.csv"))
    assert raised.value.permanent and "'gone.csv'" in raised.value.message


def test_a_url_that_is_not_http_is_a_path(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(USERS)
    assert emails(str(path)) == ["ada@example.com", "bob@example.com"]


def test_file_age_hours_must_be_a_number():
    cls = registry.get_source("csv-url")
    assert "fileAgeHours" in cls.validate_options(
        {"url": "https://x.test/a.csv", "fileAgeHours": "daily"}
    )
    assert cls.validate_options({"url": "https://x.test/a.csv", "fileAgeHours": 6}) == {}


@pytest.mark.django_db
def test_grouparoo_config_of_a_csv_import_table_source_applies_and_reads(
    httpserver, media, allow_loopback, tmp_path
):
    url = serve(httpserver, USERS)
    files = {
        "models/users.json": {"id": "users", "class": "Model", "name": "Users", "type": "profile"},
        "apps/csv.json": {"id": "csv", "class": "App", "name": "CSV", "type": "csv", "options": {}},
        "sources/users.json": {
            "id": "users_csv", "class": "Source", "name": "Users CSV", "type": "csv-import-table",
            "appId": "csv", "modelId": "users", "options": {"url": url, "fileAgeHours": "6"},
            "mapping": {"id": "user_id"},
        },
        "properties/user_id.json": {
            "id": "user_id", "class": "Property", "key": "userId", "type": "integer",
            "sourceId": "users_csv", "unique": True, "options": {"column": "id"},
        },
    }  # fmt: skip
    config_apply(directory=write_config(tmp_path / "config", files))
    source = m.Source.objects.get(config_id="users_csv")
    assert (source.type, source.options) == ("csv-url", {"url": url, "fileAgeHours": 6})
    assert [row["email"] for row in source_preview(source=source)] == [
        "ada@example.com",
        "bob@example.com",
    ]
