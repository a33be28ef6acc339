"""`manage.py ensure_admin`: creates the admin once, prints a random password once, then no-ops."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_admin_env(monkeypatch):
    for name in ("GROUPAROO_ADMIN_USERNAME", "GROUPAROO_ADMIN_PASSWORD", "GROUPAROO_ADMIN_EMAIL"):
        monkeypatch.delenv(name, raising=False)


def run() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_creates_a_superuser_and_prints_a_working_random_password_once():
    first = run()
    password = re.search(r"password: (\S+)", first).group(1)

    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff
    assert authenticate(username="admin", password=password) == user

    second = run()
    assert password not in second
    assert "already exists" in second
    assert get_user_model().objects.count() == 1


def test_a_second_run_leaves_the_password_alone():
    password = re.search(r"password: (\S+)", run()).group(1)
    run()
    assert authenticate(username="admin", password=password) is not None


def test_username_and_password_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GROUPAROO_ADMIN_USERNAME", "ops")
    monkeypatch.setenv("GROUPAROO_ADMIN_PASSWORD", "a-long-given-passphrase")

    out = run()

    assert "a-long-given-passphrase" not in out
    assert "GROUPAROO_ADMIN_PASSWORD" in out
    assert authenticate(username="ops", password="a-long-given-passphrase") is not None
    assert not get_user_model().objects.filter(username="admin").exists()


def test_two_random_passwords_differ():
    first = re.search(r"password: (\S+)", run()).group(1)
    get_user_model().objects.all().delete()
    second = re.search(r"password: (\S+)", run()).group(1)
    assert first != second
    assert len(second) >= 12
