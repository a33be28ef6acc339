"""`manage.py rotate_encryption_keys`: every encrypted value moves to the newest key; counts only."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from core import crypto
from core import models as m
from core.management.commands.rotate_encryption_keys import encrypted_fields
from tests.factories import make_app, make_destination

pytestmark = pytest.mark.django_db

APP_SECRET = "app-pass-unique-31337"
DEST_SECRET = "dest-token-unique-4242"


@pytest.fixture(autouse=True)
def _fresh_fernet_cache():
    crypto._fernet.cache_clear()
    yield
    crypto._fernet.cache_clear()


def key() -> str:
    return Fernet.generate_key().decode()


def raw(obj) -> str:
    table = connection.ops.quote_name(obj._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret_options FROM {table} WHERE id = %s", [obj.pk])
        return cursor.fetchone()[0]


def rotate() -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    return out.getvalue()


def test_finds_every_encrypted_field_generically():
    found = {(model._meta.label, field.name) for model, field in encrypted_fields()}
    assert {("core.App", "secret_options"), ("core.Destination", "secret_options")} <= found


def test_rotation_moves_every_secret_to_the_new_key(settings):
    old, new = key(), key()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    app = make_app(secret_options={"password": APP_SECRET})
    destination = make_destination(secret_options={"token": DEST_SECRET})
    before = raw(app), raw(destination)

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out = rotate()

    assert (raw(app), raw(destination)) != before
    for secret_or_token in (APP_SECRET, DEST_SECRET, *before, raw(app), raw(destination)):
        assert secret_or_token not in out
    assert "core.App.secret_options: 2 re-encrypted" in out  # the factory's destination app too
    assert "core.Destination.secret_options: 1 re-encrypted" in out

    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key is retired
    assert m.App.objects.get(pk=app.pk).secret_options == {"password": APP_SECRET}
    assert m.Destination.objects.get(pk=destination.pk).secret_options == {"token": DEST_SECRET}


def test_running_twice_is_harmless(settings):
    settings.FIELD_ENCRYPTION_KEYS = [key()]
    app = make_app(secret_options={"password": APP_SECRET})
    rotate()
    rotate()
    assert m.App.objects.get(pk=app.pk).secret_options == {"password": APP_SECRET}


def test_an_unreadable_row_stops_the_rotation_and_changes_nothing(settings):
    old, lost, new = key(), key(), key()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    readable = make_app(name="a-readable", secret_options={"password": APP_SECRET})
    settings.FIELD_ENCRYPTION_KEYS = [lost]
    make_app(name="b-unreadable", secret_options={"password": "written-with-a-lost-key"})
    before = raw(readable)

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    with pytest.raises(CommandError) as excinfo:
        rotate()

    assert "written-with-a-lost-key" not in str(excinfo.value)
    assert "core.App.secret_options" in str(excinfo.value)
    assert raw(readable) == before  # rolled back
