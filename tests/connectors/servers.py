"""Scratch databases on the local servers, for connector and pipeline tests.

MariaDB (127.0.0.1:3306, root, empty password) gets one fresh database per test, dropped
afterwards. Like PostgreSQL in tests/conftest.py, a server that is down skips the test locally
and fails it under CI=true.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import MYSQL_HOST, _require

MYSQL_PORT = int(os.environ.get("TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("TEST_MYSQL_PASSWORD", "")


def mysql_connect(database: str | None = None) -> Any:
    """An autocommit PyMySQL connection to the local server (for setup and assertions)."""
    import pymysql

    return pymysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD,
        database=database, autocommit=True, connect_timeout=2, charset="utf8mb4",
        init_command="SET SESSION time_zone = '+00:00'",
    )


_mysql_up: bool | None = None


def mysql_up() -> bool:
    global _mysql_up
    if _mysql_up is None:
        try:
            mysql_connect().close()
            _mysql_up = True
        except Exception:
            _mysql_up = False
    return _mysql_up


@pytest.fixture
def scratch_mysql() -> Iterator[dict[str, Any]]:
    """A fresh, empty MariaDB/MySQL database for one test, dropped after; its connection options
    as the mysql app takes them, plus `conn`, an autocommit connection to it."""
    _require(mysql_up(), f"MariaDB/MySQL on {MYSQL_HOST}:{MYSQL_PORT}")
    name = f"gt_{uuid.uuid4().hex[:12]}"
    admin = mysql_connect()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    conn = mysql_connect(name)
    try:
        yield {
            "host": MYSQL_HOST, "port": MYSQL_PORT, "user": MYSQL_USER, "password": MYSQL_PASSWORD,
            "database": name, "conn": conn,
        }
    finally:
        conn.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
