"""Grouparoo's logger destination (plugin @grouparoo/logger): exports appended to a log file,
one JSON line each with the fields Grouparoo wrote; and a Grouparoo demo-shaped config
(plugins/@grouparoo/demo/config/logger) applied and synced end to end."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime

import pytest

from connectors import registry
from connectors.base import ConnectorError, ExportPayload, SyncOperations
from core import models as m
from core.config.apply import config_apply
from tests.config.conftest import write_config
from tests.engine.helpers import sync

SYNC = SyncOperations.for_mode("sync")
FIELDS = {
    "time",
    "id",
    "oldRecordProperties",
    "newRecordProperties",
    "oldGroups",
    "newGroups",
    "toDelete",
}


def payload(export_id, record_id, new, old=None, groups=(), old_groups=(), delete=False):
    return ExportPayload(
        export_id, record_id, dict(old or {}), dict(new), list(old_groups), list(groups), delete
    )


def logger_destination(path, **app):
    return registry.get_destination("logger-export-records")({"filename": str(path), **app}, {})


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_export_is_one_json_line_with_grouparoos_fields(tmp_path):
    path = tmp_path / "exports.log"
    destination = logger_destination(path)
    results = destination.export_batch(
        [
            payload(1, 10, {"primary id": "ada@example.com", "ltv": 900.5}, groups=["High Value"]),
            payload(2, 11, {"primary id": "bob@example.com"}, old={"primary id": "bob@old.test"},
                    old_groups=["Spanish Speakers"]),
        ],
        operations=SYNC,
    )  # fmt: skip
    assert [(r.export_id, r.success) for r in results] == [(1, True), (2, True)]
    destination.export_batch([payload(3, 10, {}, old={"primary id": "ada@example.com"}, delete=True)],
                             operations=SyncOperations.for_mode("enrich"))  # fmt: skip
    first, second, third = lines(path)
    assert set(first) == FIELDS
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert first["id"] == 10
    assert first["newRecordProperties"] == {"primary id": "ada@example.com", "ltv": 900.5}
    assert (first["oldRecordProperties"], first["newGroups"], first["toDelete"]) == (
        {},
        ["High Value"],
        False,
    )
    assert second["oldRecordProperties"] == {"primary id": "bob@old.test"}
    assert (second["oldGroups"], second["newGroups"]) == (["Spanish Speakers"], [])
    assert (third["id"], third["toDelete"]) == (10, True)


def test_concurrent_batches_never_mix_their_lines(tmp_path):
    path = tmp_path / "exports.log"
    big = "x" * 20_000

    def send(worker: int) -> None:
        destination = logger_destination(path)
        for batch in range(5):
            destination.export_batch(
                [
                    payload(worker * 100 + batch * 10 + i, worker, {"primary id": big})
                    for i in range(10)
                ],
                operations=SYNC,
            )

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(lines(path)) == 4 * 5 * 10  # every line parses


def test_stdout_echoes_the_batch(tmp_path, capsys):
    logger_destination(tmp_path / "a.log", stdout=True).export_batch(
        [payload(1, 7, {"primary id": "ada@example.com"})], operations=SYNC
    )
    out = capsys.readouterr().out
    assert out.startswith("exporting 1 records:\n ----> {")
    assert '"primary id": "ada@example.com"' in out
    logger_destination(tmp_path / "b.log", stdout="false").export_batch(
        [payload(2, 7, {"primary id": "ada@example.com"})], operations=SYNC
    )
    assert capsys.readouterr().out == ""


def test_the_file_must_be_absolute_and_its_directory_must_exist(tmp_path):
    app = registry.get_app("logger")
    assert "filename" in app.validate_options({"filename": "log.log"})
    assert app.validate_options({"filename": str(tmp_path / "log.log"), "stdout": True}) == {}
    with pytest.raises(ConnectorError) as raised:
        logger_destination(tmp_path / "missing" / "log.log").export_batch(
            [payload(1, 1, {})], operations=SYNC
        )
    assert raised.value.permanent and "does not exist" in raised.value.message


def test_testing_the_app_creates_the_file(tmp_path):
    path = tmp_path / "log.log"
    assert "confirmed" in registry.get_app("logger")({"filename": str(path)}).test_connection()
    assert path.exists() and path.read_text() == ""


def test_the_mapping_requires_a_primary_id_as_grouparoo_did(tmp_path):
    options = logger_destination(tmp_path / "a.log").mapping_options()
    assert options.required == (("primary id", "string"),) and options.allow_any


@pytest.mark.django_db
def test_grouparoo_demo_logger_config_applies_and_logs_a_sync(tmp_path):
    project = tmp_path / "project"
    (project / "logs").mkdir(parents=True)
    shop = project / "shop.sqlite3"
    with sqlite3.connect(shop) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, language TEXT)")
        conn.executemany(
            "INSERT INTO users VALUES (?, ?, ?)",
            [(1, "ada@example.com", "Spanish"), (2, "bob@example.com", "English")],
        )
    files = {
        "models/users.json": {"id": "users", "class": "Model", "name": "Users", "type": "profile"},
        "apps/shop.json": {"id": "shop", "class": "App", "name": "Shop", "type": "sqlite",
                           "options": {"file": "shop.sqlite3"}},
        # As plugins/@grouparoo/demo/config/logger/all/apps/logger.json: a relative file name.
        "logger/all/apps/logger.json": {"class": "App", "id": "logger", "name": "Logger", "type": "logger",
                                        "options": {"filename": "logs/log.log", "stdout": False}},
        "sources/users.json": [
            {"id": "users_table", "class": "Source", "name": "Users", "type": "sqlite-import-table",
             "appId": "shop", "modelId": "users", "options": {"table": "users"}, "mapping": {"id": "user_id"}},
            {"id": "users_schedule", "class": "Schedule", "name": "Users", "sourceId": "users_table",
             "recurring": False, "incremental": False},
        ],
        "properties/users.json": [
            {"id": "user_id", "class": "Property", "key": "userId", "type": "integer", "sourceId": "users_table",
             "unique": True, "options": {"column": "id"}},
            {"id": "email", "class": "Property", "key": "email", "type": "email", "sourceId": "users_table",
             "unique": True, "options": {"column": "email"}},
            {"id": "language", "class": "Property", "key": "language", "type": "string",
             "sourceId": "users_table", "options": {"column": "language"}},
        ],
        "groups/spanish_speakers.json": {"id": "spanish_speakers", "class": "Group", "modelId": "users",
                                         "name": "Spanish Speakers",
                                         "rules": [{"propertyId": "language", "op": "eq", "match": "Spanish"}]},
        # As plugins/@grouparoo/demo/config/logger/users/destinations/logger.json.
        "logger/users/destinations/logger.json": {
            "class": "Destination", "id": "logger_destination", "modelId": "users", "name": "Logger Destination",
            "type": "logger-export-records", "appId": "logger", "collection": "model", "options": {},
            "mapping": {"primary id": "email", "secondary id": "user_id"},
            "destinationGroupMemberships": {"Spanish Speakers": "spanish_speakers"},
        },
    }  # fmt: skip
    config_apply(directory=write_config(project / "config", files))
    assert m.App.objects.get(config_id="logger").options["filename"] == str(
        project / "logs" / "log.log"
    )

    run = sync(m.Schedule.objects.get(config_id="users_schedule"))
    assert run.state == "complete", run.error
    logged = {
        line["newRecordProperties"]["primary id"]: line
        for line in lines(project / "logs" / "log.log")
    }
    assert set(logged) == {"ada@example.com", "bob@example.com"}
    assert logged["ada@example.com"]["newRecordProperties"]["secondary id"] == 1
    assert logged["ada@example.com"]["newGroups"] == ["Spanish Speakers"]
    assert logged["bob@example.com"]["newGroups"] == []
