"""A number written as text with more digits than Python converts to an int (4300) is an error
naming the file and key, not a crash of validate."""

from __future__ import annotations

import json

from core.config.schema import number_value
from core.config.validate import config_validate


def test_too_many_digits_is_not_a_number():
    assert number_value("1" * 5000) is None
    assert number_value(" 60 ") == 60


def test_validate_names_a_frequency_with_too_many_digits(tmp_path):
    objects = [
        {"class": "Model", "id": "users", "name": "Users", "type": "profile"},
        {"class": "App", "id": "shop", "name": "Shop", "type": "sqlite",
         "options": {"path": str(tmp_path / "shop.sqlite3")}},
        {"class": "Source", "id": "users_table", "name": "Users", "type": "sqlite-import-table",
         "appId": "shop", "modelId": "users", "options": {"table": "users"},
         "mapping": {"id": "user_id"}},
        {"class": "Property", "id": "user_id", "key": "user_id", "type": "integer",
         "sourceId": "users_table", "unique": True, "options": {"column": "id"}},
        {"class": "Schedule", "id": "every", "name": "every", "sourceId": "users_table",
         "recurring": True, "recurringFrequency": "1" * 5000},
    ]  # fmt: skip
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "all.json").write_text(json.dumps(objects))
    config = config_validate(directory=tmp_path / "config")
    errors = [(p.file, p.key) for p in config.problems.errors]
    assert errors == [("all.json", "recurringFrequency")]
