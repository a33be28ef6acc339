"""manage.py create_api_key: prints the key once, stores its hash and the asked permissions."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core import models as m
from core.services.api_keys import api_key_authenticate, api_key_hash

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_the_key_once_and_stores_only_its_hash():
    out, err = run("ci", "--read", "records", "groups", "--write", "records")
    key = out.strip()
    assert out.count("grp_") == 1 and key.startswith("grp_")
    assert key not in err and "never be shown again" in err
    api_key = m.ApiKey.objects.get(name="ci")
    assert api_key.hashed_key == api_key_hash(key) and key not in api_key.hashed_key
    assert key.startswith(f"grp_{api_key.prefix}.")
    assert api_key_authenticate(key) == api_key
    rows = {p.topic: (p.read, p.write) for p in api_key.permissions.all()}
    assert rows == {"records": (True, True), "groups": (True, False)}
    assert not api_key.permission_all_read and not api_key.permission_all_write


def test_all_flags_and_expiry():
    run("admin-key", "--all-read", "--all-write", "--expires-in-days", "30")
    api_key = m.ApiKey.objects.get(name="admin-key")
    assert api_key.permission_all_read and api_key.permission_all_write
    assert api_key.expires_at is not None and api_key.permissions.count() == 0


def test_write_only_topic_gets_no_read():
    run("writer", "--write", "apiKeys")
    assert [(p.topic, p.read, p.write) for p in m.ApiKey.objects.get(name="writer").permissions.all()] == [
        ("apiKeys", False, True)
    ]


def test_unknown_topic_is_refused_and_creates_nothing():
    with pytest.raises(CommandError, match="Unknown topic.*nope"):
        run("bad", "--read", "records", "nope")
    assert not m.ApiKey.objects.exists()


def test_duplicate_name_is_a_command_error():
    run("twice")
    with pytest.raises(CommandError, match="already exists"):
        run("twice")
    assert m.ApiKey.objects.count() == 1


def test_repeated_options_add_up_and_the_permissions_are_printed():
    out, err = run("etl", "--read", "records", "--read", "apiKeys", "--write", "groups",
                   "--write", "records")  # fmt: skip
    api_key = m.ApiKey.objects.get(name="etl")
    rows = {p.topic: (p.read, p.write) for p in api_key.permissions.all()}
    assert rows == {"records": (True, True), "apiKeys": (True, False), "groups": (False, True)}
    assert "It holds: read on apiKeys, records; write on groups, records." in err
    assert out.count("grp_") == 1
    _, err = run("reader", "--all-read")
    assert "It holds: read on every topic." in err
