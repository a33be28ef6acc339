"""What `apply` would refuse, `validate` reports first: a relative match number past what the
rule table holds, and a logger's `stdout` that is neither true nor false."""

from __future__ import annotations

import json

import pytest

from core.config.validate import config_validate

# What the rule table holds (a PositiveIntegerField), and so what apply accepts.
MAX_RELATIVE_MATCH_NUMBER = 2_147_483_647


def _objects(tmp_path, *, number, stdout=False):
    return [
        {"class": "Model", "id": "users", "name": "Users", "type": "profile"},
        {"class": "App", "id": "shop", "name": "Shop", "type": "sqlite",
         "options": {"path": str(tmp_path / "shop.sqlite3")}},
        {"class": "Source", "id": "users_table", "name": "Users", "type": "sqlite-import-table",
         "appId": "shop", "modelId": "users", "options": {"table": "users"},
         "mapping": {"id": "user_id"}},
        {"class": "Property", "id": "user_id", "key": "user_id", "type": "integer",
         "sourceId": "users_table", "unique": True, "options": {"column": "id"}},
        {"class": "Property", "id": "signed_up", "key": "signed_up", "type": "date",
         "sourceId": "users_table", "options": {"column": "created_at"}},
        {"class": "Group", "id": "recent", "name": "Recent", "modelId": "users",
         "rules": [{"propertyId": "signed_up", "op": "relative_gt",
                    "relativeMatchNumber": number, "relativeMatchUnit": "days"}]},
        {"class": "App", "id": "log", "name": "Log", "type": "logger",
         "options": {"filename": str(tmp_path / "export.log"), "stdout": stdout}},
    ]  # fmt: skip


def _errors(tmp_path, **kw) -> list[tuple[str | None, str]]:
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "all.json").write_text(json.dumps(_objects(tmp_path, **kw)))
    config = config_validate(directory=tmp_path / "config")
    return [(p.key, p.message) for p in config.problems.errors]


@pytest.mark.parametrize("number", ["99999999999", MAX_RELATIVE_MATCH_NUMBER + 1, 2**40])
def test_a_relative_match_number_past_the_tables_range_is_an_error(tmp_path, number):
    [(key, message)] = _errors(tmp_path, number=number)
    assert key.endswith("relativeMatchNumber")
    assert f"at most {MAX_RELATIVE_MATCH_NUMBER}" in message


def test_the_largest_relative_match_number_is_valid(tmp_path):
    assert _errors(tmp_path, number=str(MAX_RELATIVE_MATCH_NUMBER)) == []


@pytest.mark.parametrize("stdout", ["maybe", 2, ["true"]])
def test_a_logger_stdout_that_is_not_a_boolean_is_an_error(tmp_path, stdout):
    [(key, message)] = _errors(tmp_path, number=30, stdout=stdout)
    assert key == "options.stdout" and "true or false" in message


@pytest.mark.parametrize("stdout", [True, "false", "yes", "0"])
def test_a_logger_stdout_given_as_a_boolean_word_is_valid(tmp_path, stdout):
    assert _errors(tmp_path, number=30, stdout=stdout) == []
