"""Fixtures for the config-as-code tests: the SQLite shop the `sqlite_shop` fixture directory
points at (through environment variables, as a deployment would), and helpers to copy fixture
directories and write small config directories."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

USERS = [
    # id, email, first_name, ltv, country, updated_at
    (1, "ada@example.com", "Ada", 900.0, "GB", "2026-01-01T00:00:00"),
    (2, "bob@example.com", "Bob", 100.0, "US", "2026-01-02T00:00:00"),
    (3, "cy@example.com", "Cy", 600.0, "DE", "2026-01-02T00:00:00"),
    (4, "dee@example.com", "Dee", 50.0, "XX", "2026-01-03T00:00:00"),
]
PURCHASES = [
    (1, 1, 10.0, "2026-01-05T00:00:00"),
    (2, 1, 30.0, "2026-01-07T00:00:00"),
    (3, 2, 25.0, "2026-01-06T00:00:00"),
]
COMPANIES = [(1, "Acme"), (2, "Globex")]


@dataclass
class ShopFiles:
    shop: Path
    crm: Path

    def crm_rows(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.crm) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM crm ORDER BY id")]

    def crm_groups(self) -> set[tuple[str, str]]:
        with sqlite3.connect(self.crm) as conn:
            return set(conn.execute("SELECT contact_id, group_name FROM crm_groups"))


@pytest.fixture
def shop_files(tmp_path, monkeypatch) -> ShopFiles:
    """The shop and CRM SQLite files, with the environment variables the fixture uses."""
    shop, crm = tmp_path / "shop.sqlite3", tmp_path / "crm.sqlite3"
    with sqlite3.connect(shop) as conn:
        conn.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, ltv REAL, "
            "country TEXT, updated_at TEXT)"
        )
        conn.execute(
            "CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount REAL, "
            "purchased_at TEXT)"
        )
        conn.execute("CREATE TABLE companies (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", USERS)
        conn.executemany("INSERT INTO purchases VALUES (?, ?, ?, ?)", PURCHASES)
        conn.executemany("INSERT INTO companies VALUES (?, ?)", COMPANIES)
    with sqlite3.connect(crm) as conn:
        conn.execute(
            "CREATE TABLE crm (id TEXT PRIMARY KEY, email TEXT, first_name TEXT, ltv REAL, "
            "purchase_count INTEGER, total_spend REAL, last_purchase_at TEXT)"
        )
        conn.execute(
            "CREATE TABLE crm_groups (contact_id TEXT, group_name TEXT, "
            "PRIMARY KEY (contact_id, group_name))"
        )
    monkeypatch.setenv("SHOP_DB_PATH", str(shop))
    monkeypatch.setenv("GROUPAROO_OPTION__APP__CRM_DB_PATH", str(crm))
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-1")
    return ShopFiles(shop=shop, crm=crm)


@pytest.fixture
def fixture_dir(tmp_path):
    """Copy a fixture directory into tmp_path (so a test may change it) and return the copy."""

    def copy(name: str) -> Path:
        target = tmp_path / "config" / name
        shutil.copytree(FIXTURES / name, target)
        return target

    return copy


def write_config(directory: Path, files: dict[str, Any]) -> Path:
    """Write {relative path: object or array (dumped as JSON) or text} under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return directory
