"""Reading config directories: JSON5, arrays, case-insensitive classes, `.js` files through
Node.js (and the skip when Node.js is absent), malformed files."""

from __future__ import annotations

import shutil

import pytest

from core.config.loader import load_directory
from core.config.validate import config_validate
from tests.config.conftest import FIXTURES, write_config

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


def _messages(config) -> list[str]:
    return [str(p) for p in config.problems.items]


def test_json5_comments_trailing_commas_and_unquoted_keys(tmp_path):
    write_config(
        tmp_path,
        {
            "models.json": """
            // two models in one file
            [
              { id: "users", class: "model", name: "Users", type: "profile", },
              { "id": "accounts", "class": "MODEL", "name": "Accounts", "type": "account" }, // trailing
            ]
            """
        },
    )
    config = config_validate(directory=tmp_path)
    assert config.ok, _messages(config)
    assert sorted(s.id for s in config.of_class("model")) == ["accounts", "users"]


def test_class_names_match_case_insensitively(monkeypatch):
    monkeypatch.setenv("SHOP_DB_PATH", "/tmp/shop.sqlite3")
    monkeypatch.setenv("GROUPAROO_OPTION__APP__CRM_DB_PATH", "/tmp/crm.sqlite3")
    monkeypatch.setenv("DEMO_PASSWORD", "x")
    config = config_validate(directory=FIXTURES / "sqlite_shop")
    assert config.ok, _messages(config)
    # Written "app", "destination", "teamMember", "team", "apiKey", "model" in the files.
    assert {s.cls for s in config.specs} >= {
        "app",
        "destination",
        "teammember",
        "team",
        "apikey",
        "model",
    }


def test_an_empty_file_and_empty_objects_are_skipped(tmp_path):
    write_config(tmp_path, {"empty.json": "  // nothing here\n", "objects.json": "[{}, {}]"})
    config = config_validate(directory=tmp_path)
    assert config.ok and config.specs == []


def test_invalid_json5_names_the_file(tmp_path):
    write_config(tmp_path, {"apps/broken.json": '{ "id": "x", "class": "App",, }'})
    config = config_validate(directory=tmp_path)
    [problem] = config.problems.errors
    assert problem.file == "apps/broken.json"
    assert "is not valid JSON5" in problem.message


def test_null_entries_and_non_objects_are_errors(tmp_path):
    write_config(tmp_path, {"list.json": '[null, 3, {"id": "m", "class": "Model", "name": "M"}]'})
    config = config_validate(directory=tmp_path)
    messages = [p.message for p in config.problems.errors]
    assert any("1 null or undefined top-level config object" in m for m in messages)
    assert any("entry 1 is a int, not an object" in m for m in messages)
    assert [s.id for s in config.specs] == ["m"]


def test_hidden_directories_and_node_modules_are_not_read(tmp_path):
    write_config(
        tmp_path,
        {
            ".git/config.json": "{ nonsense",
            "node_modules/pkg/package.json": '{"name": "pkg"}',
            "m.json": {"id": "m", "class": "Model", "name": "M"},
        },
    )
    loaded = load_directory(tmp_path)
    assert loaded.files == ["m.json"]


@needs_node
def test_js_files_export_objects_arrays_and_functions(tmp_path, monkeypatch):
    write_config(
        tmp_path,
        {
            "a.js": 'module.exports = { id: "a", class: "Model", name: "A" };',
            "b.js": 'exports.default = [{ id: "b", class: "Model", name: "B" }];',
            "c.js": "module.exports = async function () { return [{ id: 'c', class: 'Model', "
            "name: 'C' + (1 + 1) }]; };",
            "d.js": 'exports.default = () => ({ id: "d", class: "Model", name: process.env.D_NAME });',
        },
    )
    monkeypatch.setenv("D_NAME", "From env")
    config = config_validate(directory=tmp_path, allow_js=True)
    assert config.ok, _messages(config)
    names = {s.id: s.data["name"] for s in config.specs}
    assert names == {"a": "A", "b": "B", "c": "C2", "d": "From env"}


@needs_node
def test_a_js_file_that_throws_is_an_error_naming_it(tmp_path):
    write_config(tmp_path, {"bad.js": 'throw new Error("no secrets service");'})
    config = config_validate(directory=tmp_path, allow_js=True)
    [problem] = config.problems.errors
    assert problem.file == "bad.js"
    assert "no secrets service" in problem.message


def test_without_node_each_js_file_is_named_and_skipped(tmp_path, monkeypatch):
    write_config(
        tmp_path,
        {
            "models/a.js": 'module.exports = { id: "a", class: "Model", name: "A" };',
            "models/b.json": {"id": "b", "class": "Model", "name": "B"},
            "keys/k.js": "exports.default = [];",
        },
    )
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    config = config_validate(directory=tmp_path, allow_js=True)
    assert config.ok
    assert config.skipped_files == ["keys/k.js", "models/a.js"]
    skipped = {p.file: p.message for p in config.problems.warnings}
    assert set(skipped) == {"keys/k.js", "models/a.js"}
    assert "no `node` program was found on PATH" in skipped["models/a.js"]
    assert [s.id for s in config.specs] == ["b"]


def test_a_reference_into_a_skipped_js_file_says_so(tmp_path, monkeypatch):
    write_config(
        tmp_path,
        {
            "models.js": 'module.exports = { id: "users", class: "Model", name: "Users" };',
            "group.json": {"id": "g", "class": "Group", "name": "G", "modelId": "users"},
        },
    )
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    config = config_validate(directory=tmp_path, allow_js=True)
    [problem] = config.problems.errors
    assert (problem.file, problem.object_id, problem.key) == ("group.json", "g", "modelId")
    assert "1 .js file(s) were skipped" in problem.message


@needs_node
def test_a_js_file_may_log_and_require_its_neighbours(tmp_path):
    write_config(
        tmp_path,
        {
            "constants.js": 'module.exports = { modelId: "users" };',
            "models/users.js": 'const { modelId } = require("../constants.js");\n'
            'console.log("building", modelId);\n'
            'process.stdout.write("noise");\n'
            "exports.default = async () => [{ id: modelId, class: 'Model', name: 'Users' }];",
        },
    )
    config = config_validate(directory=tmp_path, allow_js=True)
    # constants.js exports an object without id or class: an error naming it, and nothing else.
    assert [(p.file, p.key) for p in config.problems.errors] == [("constants.js", "class")]
    assert [s.id for s in config.specs] == ["users"]


def test_tolerated_keys_warn_only_when_set(tmp_path):
    prop = {"class": "Property", "type": "string", "sourceId": "s", "options": {"column": "c"}}
    write_config(
        tmp_path,
        {
            "p.json": [
                {**prop, "id": "quiet", "key": "quiet", "identifying": False},
                {**prop, "id": "loud", "key": "loud", "identifying": True},
            ]
        },
    )
    config = config_validate(directory=tmp_path)
    assert [(p.object_id, p.key) for p in config.problems.warnings] == [("loud", "identifying")]
