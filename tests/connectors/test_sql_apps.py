"""App-level calls of the SQL connectors: App Refresh Queries, on both dialects."""
from __future__ import annotations

import pytest

from connectors.base import ConnectorError


def test_refresh_query_returns_the_first_value_as_text(world):
    app = world.app()
    assert app.refresh_query("SELECT MAX(version) FROM users") == "5"
    assert app.refresh_query("SELECT email FROM users WHERE id = -1") is None
    world.run("UPDATE users SET version = 9 WHERE id = 1")
    assert app.refresh_query("SELECT MAX(version) FROM users") == "9"


def test_refresh_query_is_read_only(world):
    with pytest.raises(ConnectorError):
        world.app().refresh_query("DELETE FROM users")
    assert world.run("SELECT COUNT(*) FROM users") == [(8,)]
