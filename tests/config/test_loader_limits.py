"""Large config files and `.js` files. Plain JSON is read by the standard library's parser, JSON5
only when that fails; files over the size limit (5 MB, GROUPAROO_CONFIG_MAX_FILE_BYTES) are an
error naming the file and the limit; `.js` files are run only when allowed (`--allow-js` or
GROUPAROO_CONFIG_ALLOW_JS), since running one runs a program."""

from __future__ import annotations

import json
import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core import models as m
from core.config import loader
from core.config.validate import config_validate
from tests.config.conftest import write_config

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")

HEAD = [
    {"id": "users", "class": "Model", "name": "Users", "type": "profile"},
    {"id": "shop", "class": "App", "name": "Shop", "type": "sqlite",
     "options": {"path": "/tmp/shop.sqlite3"}},
    {"id": "users_table", "class": "Source", "name": "Users", "type": "sqlite-table",
     "appId": "shop", "modelId": "users", "options": {"table": "users"},
     "mapping": {"id": "user_id"}},
    {"id": "user_id", "class": "Property", "key": "user_id", "type": "integer", "unique": True,
     "sourceId": "users_table", "options": {"column": "id"}},
]  # fmt: skip


def properties(n: int) -> list[dict]:
    return HEAD + [
        {"id": f"prop_{i}", "class": "Property", "key": f"prop_{i}", "type": "string",
         "sourceId": "users_table", "options": {"column": f"column_{i}"}}
        for i in range(n)
    ]  # fmt: skip


@pytest.fixture
def json5_calls(monkeypatch) -> list[int]:
    """Counts calls of the JSON5 parser (still called through)."""
    calls: list[int] = []
    real = loader.json5.loads

    def counting(text, *args, **kwargs):
        calls.append(len(text))
        return real(text, *args, **kwargs)

    monkeypatch.setattr(loader.json5, "loads", counting)
    return calls


def test_a_multi_megabyte_plain_json_file_is_read_by_the_standard_parser(tmp_path, json5_calls):
    (tmp_path / "properties.json").write_text(json.dumps(properties(14_000), indent=4))
    assert (tmp_path / "properties.json").stat().st_size > 3_000_000
    config = config_validate(directory=tmp_path)
    assert config.ok, [str(p) for p in config.problems.errors][:5]
    assert len(config.of_class("property")) == 14_001
    assert json5_calls == []


def test_a_small_json5_file_is_still_read_as_json5(tmp_path, json5_calls):
    write_config(tmp_path, {"models.json": '// a comment\n{ id: "m", class: "Model", name: "M", }'})
    config = config_validate(directory=tmp_path)
    assert config.ok and [s.id for s in config.specs] == ["m"]
    assert len(json5_calls) == 1


def test_a_file_over_the_size_limit_is_an_error_naming_it_and_the_limit(tmp_path, json5_calls):
    text = json.dumps(HEAD[0]) + " " * (5 * 1024 * 1024)  # plain JSON, just over 5 MB
    write_config(tmp_path, {"models/huge.json": text, "models/small.json": HEAD[0] | {"id": "s"}})
    config = config_validate(directory=tmp_path)
    [problem] = config.problems.errors
    assert problem.file == "models/huge.json"
    assert "over the 5.0 MB (5,242,880 bytes) limit for a config file" in problem.message
    assert "GROUPAROO_CONFIG_MAX_FILE_BYTES" in problem.message
    assert [s.id for s in config.specs] == ["s"]
    assert json5_calls == []


def test_the_size_limit_is_settable(tmp_path, settings, monkeypatch):
    write_config(tmp_path, {"m.json": HEAD[0]})
    monkeypatch.setenv("GROUPAROO_CONFIG_MAX_FILE_BYTES", "20")
    [problem] = config_validate(directory=tmp_path).problems.errors
    assert problem.file == "m.json" and "over the 20 bytes limit" in problem.message
    settings.GROUPAROO_CONFIG_MAX_FILE_BYTES = 10_000  # a Django setting wins over the variable
    assert config_validate(directory=tmp_path).ok


def test_a_large_file_that_is_not_plain_json_is_refused_without_parsing_it_as_json5(
    tmp_path, json5_calls
):
    text = "// generated\n" + json.dumps(properties(6_000), indent=4)
    write_config(tmp_path, {"properties.json": text})
    [problem] = config_validate(directory=tmp_path).problems.errors
    assert problem.file == "properties.json"
    assert "is not plain JSON" in problem.message
    assert "over the 65,536 bytes limit for JSON5" in problem.message
    assert json5_calls == []


JS_FILE = (
    'require("fs").writeFileSync(__dirname + "/ran.txt", "x");\n'
    'module.exports = { id: "js_model", class: "Model", name: "From JS" };'
)


@pytest.mark.django_db
def test_js_files_are_not_run_unless_allowed(tmp_path, capsys):
    write_config(tmp_path, {"models/m.js": JS_FILE, "models/users.json": HEAD[0]})
    config = config_validate(directory=tmp_path)
    [problem] = config.problems.errors
    assert problem.file == "models/m.js"
    assert "--allow-js" in problem.message and "GROUPAROO_CONFIG_ALLOW_JS=true" in problem.message
    with pytest.raises(CommandError):
        call_command("validate", str(tmp_path))
    assert "models/m.js: is a .js config file" in capsys.readouterr().err
    with pytest.raises(CommandError):
        call_command("apply", str(tmp_path))
    assert not (tmp_path / "models/ran.txt").exists()
    assert not m.RecordModel.objects.exists()


@needs_node
@pytest.mark.django_db
def test_js_files_run_with_the_flag_or_the_variable(tmp_path, monkeypatch):
    write_config(tmp_path, {"models/m.js": JS_FILE})
    call_command("validate", str(tmp_path), "--allow-js")
    assert (tmp_path / "models/ran.txt").exists()
    (tmp_path / "models/ran.txt").unlink()

    monkeypatch.setenv("GROUPAROO_CONFIG_ALLOW_JS", "true")
    call_command("apply", str(tmp_path))
    assert (tmp_path / "models/ran.txt").exists()
    assert m.RecordModel.objects.get(config_id="js_model").name == "From JS"
