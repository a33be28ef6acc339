"""Connector plugins: a package with a `grouparoo.connectors` entry point, once installed, is a
connector like a built-in one (the example in tests/plugin_example is installed with pip; the
contract suites run it too, and tests/engine/test_connectors_pipeline.py syncs through it)."""
from __future__ import annotations

import importlib.metadata
import logging
import textwrap

import pytest

from connectors import registry


def test_the_example_is_installed_as_a_distribution(example_plugin):
    dist = importlib.metadata.distribution("grouparoo-jsonl")
    assert [(ep.name, ep.value) for ep in dist.entry_points if ep.group == registry.ENTRY_POINT_GROUP] == [
        ("jsonl", "grouparoo_jsonl.connector")
    ]
    assert example_plugin.__file__.startswith(str(dist.locate_file("")))  # imported from the install


def test_its_connectors_are_registered_like_builtins(example_plugin):
    assert ("jsonl", "JSON Lines files") in registry.app_choices()
    assert registry.source_choices("jsonl") == [("jsonl-file", "JSON Lines file")]
    assert registry.destination_choices("jsonl") == [("jsonl-export", "JSON Lines file export")]
    assert registry.get_app("jsonl").validate_options({}) == {"directory": "Directory is required."}
    assert "jsonl" not in registry.plugin_errors


@pytest.mark.django_db
def test_it_appears_in_the_admin(example_plugin, admin_client):
    page = admin_client.get("/admin/core/app/add/").content.decode()
    assert 'value="jsonl"' in page and "JSON Lines files" in page
    page = admin_client.get("/admin/core/app/add/?type=jsonl").content.decode()
    assert 'name="opt_directory"' in page


def test_a_plugin_cannot_take_a_registered_type_and_a_broken_one_is_isolated(tmp_path, monkeypatch, caplog):
    (tmp_path / "gt_evil_plugin.py").write_text(textwrap.dedent('''
        from connectors.registry import register
        from connectors.sqlite import SqliteApp

        @register
        class EvilApp(SqliteApp):
            key = "postgres"  # a built-in type: refused

        @register
        class FineApp(SqliteApp):
            key = "gt-fine"
            aliases = ("sqlite",)  # an alias that is a built-in key: refused too
    '''))
    (tmp_path / "gt_broken_plugin.py").write_text("raise RuntimeError('this plugin is broken')\n")
    (tmp_path / "gt_good_plugin.py").write_text(textwrap.dedent('''
        from connectors.registry import register
        from connectors.sqlite import SqliteApp

        @register
        class GoodApp(SqliteApp):
            key = "gt-good"
            label = "Good plugin app"
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [importlib.metadata.EntryPoint(name, f"gt_{name}_plugin", registry.ENTRY_POINT_GROUP)
              for name in ("evil", "broken", "good")]
    monkeypatch.setattr(registry, "entry_points", lambda group: points)
    monkeypatch.setattr(registry, "plugin_errors", {})
    postgres_app = registry.get_app("postgres")
    with caplog.at_level(logging.ERROR, logger="connectors.registry"):
        registry.load_entry_points()
    try:
        assert registry.get_app("postgres") is postgres_app
        assert registry.get_app("sqlite").__module__ == "connectors.sqlite"
        assert "gt-fine" not in dict(registry.app_choices())
        assert registry.get_app("gt-good").label == "Good plugin app"
        assert set(registry.plugin_errors) == {"evil", "broken"}
        assert "'postgres' already taken" in registry.plugin_errors["evil"]
        assert "this plugin is broken" in registry.plugin_errors["broken"]
        assert "could not load connector plugin broken" in caplog.text
    finally:
        registry.unregister(registry.get_app("gt-good"))
