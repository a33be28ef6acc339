"""Shared fixtures. Plain factory functions live in tests/factories.py."""
from __future__ import annotations

import os

import pytest

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_HOST = os.environ.get("TEST_MYSQL_HOST", "127.0.0.1")


def _postgres_up() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=2):
            return True
    except Exception:
        return False


def _require(up: bool, what: str) -> None:
    # A newcomer's laptop may lack the service; CI (CI=true) must have it.
    if not up:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is required in CI but is not reachable")
        pytest.skip(f"{what} is not reachable")


@pytest.fixture(scope="session", autouse=True)
def _pytest_tmp_file_directories(tmp_path_factory):
    """Tests make file-based apps through the admin and the API in pytest's temporary
    directories: allow those (GROUPAROO_FILE_DIRECTORIES keeps its default otherwise)."""
    from django.conf import settings
    from django.test import override_settings

    allowed = [*settings.GROUPAROO_FILE_DIRECTORIES, str(tmp_path_factory.getbasetemp())]
    with override_settings(GROUPAROO_FILE_DIRECTORIES=allowed):
        yield


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the local PostgreSQL server's maintenance database (skips when absent locally)."""
    _require(_postgres_up(), "PostgreSQL on 127.0.0.1:5432")
    return PG_URL


@pytest.fixture
def scratch_pg(postgres_url):
    """A fresh, empty PostgreSQL database for one test (a source or destination), dropped after."""
    import uuid

    import psycopg

    name = f"gt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_url.rsplit("/", 1)[0]
    yield {"url": f"{base}/{name}", "host": "127.0.0.1", "port": 5432, "user": "postgres", "database": name}
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
