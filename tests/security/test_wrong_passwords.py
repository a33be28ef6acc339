"""A wrong database password is named as a wrong password, never shown: not the wrong one typed,
not the right one, in the connection test (API), a run's error, the logs or the database.

MariaDB checks passwords as installed here. The local PostgreSQL trusts loopback connections,
so the PostgreSQL test creates a role with a password and a database for it, and puts a
scram-sha-256 rule for exactly that role and database at the top of pg_hba.conf for the length
of the test (the server is reloaded, and restored afterwards)."""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from rest_framework.test import APIClient

from core import models as m
from core.choices import PropertyType, RunState
from core.services.api_keys import api_key_create
from tests.conftest import _require
from tests.connectors.servers import mysql_connect, mysql_up
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db

RIGHT = "Right-Horse-Battery-7731"
WRONG = "Wrong-Staple-Correct-4419"


@pytest.fixture
def pg_password_database(postgres_url):
    """A database and a role that must log in with the RIGHT password (scram-sha-256)."""
    name = f"gp_pw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        writable = hba.exists() and os.access(hba, os.W_OK)
        _require(writable, f"write access to {hba} (to require a password for one test role)")
        conn.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{RIGHT}'")
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
        original = hba.read_text()
        hba.write_text(f"host {name} {name} 127.0.0.1/32 scram-sha-256\n" + original)
        try:
            conn.execute("SELECT pg_reload_conf()")
            _wait_for_password_rule(name)
            yield {"host": "127.0.0.1", "port": 5432, "database": name, "user": name}
        finally:
            hba.write_text(original)
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def _wait_for_password_rule(name: str) -> None:
    for _ in range(50):
        try:
            psycopg.connect(host="127.0.0.1", dbname=name, user=name, password=WRONG, connect_timeout=2).close()
        except psycopg.OperationalError as exc:
            if "password authentication failed" in str(exc):
                return
        time.sleep(0.1)
    raise AssertionError("the server did not start asking for the password")


@pytest.fixture
def mysql_password_user():
    _require(mysql_up(), "MariaDB/MySQL on 127.0.0.1:3306")
    name = f"gp_pw_{uuid.uuid4().hex[:8]}"
    admin = mysql_connect()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{RIGHT}'")
        cur.execute(f"CREATE USER '{name}'@'localhost' IDENTIFIED BY '{RIGHT}'")
        cur.execute(f"GRANT SELECT ON `{name}`.* TO '{name}'@'%'")
        cur.execute(f"GRANT SELECT ON `{name}`.* TO '{name}'@'localhost'")
    try:
        yield {"host": "127.0.0.1", "port": 3306, "database": name, "user": name}
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{name}'@'%'")
            cur.execute(f"DROP USER IF EXISTS '{name}'@'localhost'")
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def _world(kind: str, options: dict) -> m.Schedule:
    model = m.RecordModel.objects.create(name="customers")
    app = m.App.objects.create(name="shop", type=kind, options=options, secret_options={"password": WRONG})
    source = m.Source.objects.create(name="customers", app=app, model=model, type=f"{kind}-table",
                                     options={"table": "customers"}, is_primary=True)
    pk = m.Property.objects.create(model=model, source=source, key="customer_id", type=PropertyType.INTEGER,
                                   unique=True, is_primary_key=True, options={"column": "id"})
    m.SourceMapping.objects.create(source=source, remote_key="id", property=pk)
    return m.Schedule.objects.create(source=source, options={})


def _assert_named_not_shown(kind: str, options: dict, caplog, expected: str) -> None:
    caplog.set_level(logging.DEBUG)
    schedule = _world(kind, options)
    _, key = api_key_create(name="ops", permission_all_read=True, permission_all_write=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    tested = api.post(f"/api/v1/apps/{schedule.source.app_id}/test/")
    run = sync(schedule)
    assert run.state == RunState.FAILED
    assert expected in run.error, run.error
    assert tested.status_code == 502 and expected in tested.content.decode(), tested.content
    seen = "\n".join([run.error, tested.content.decode(), caplog.text,
                      str(list(m.Run.objects.values_list("error", "errors")))])
    for secret in (RIGHT, WRONG):
        assert secret not in seen


def test_a_wrong_postgresql_password_is_named_and_never_shown(pg_password_database, caplog):
    _assert_named_not_shown("postgres", pg_password_database, caplog, "password authentication failed")


@pytest.mark.mysql
def test_a_wrong_mariadb_password_is_named_and_never_shown(mysql_password_user, caplog):
    _assert_named_not_shown("mysql", mysql_password_user, caplog, "Access denied")
