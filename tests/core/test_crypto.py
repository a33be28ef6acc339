"""Secrets at rest: Fernet encryption, env: references, key rotation, and no leaks in reprs."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from django.core import serializers
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from core import crypto
from core import models as m
from core.fields import SecretDict
from tests.factories import make_app, make_destination

SECRET = "hunter2-unique"


@pytest.fixture(autouse=True)
def _fresh_fernet_cache():
    crypto._fernet.cache_clear()
    yield
    crypto._fernet.cache_clear()


def new_key() -> str:
    return Fernet.generate_key().decode()


def raw_column(model, pk: int, column: str = "secret_options") -> str:
    table = connection.ops.quote_name(model._meta.db_table)
    col = connection.ops.quote_name(column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {col} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_encrypt_then_decrypt_gives_back_the_plaintext():
    token = crypto.encrypt("s3cr3t ünïcode")
    assert token != "s3cr3t ünïcode"
    assert "s3cr3t" not in token
    assert crypto.decrypt(token) == "s3cr3t ünïcode"


def test_two_encryptions_of_the_same_value_differ():
    assert crypto.encrypt("same") != crypto.encrypt("same")


@pytest.mark.django_db
def test_app_secret_column_never_holds_the_plaintext():
    app = make_app(secret_options={"password": SECRET})

    raw = raw_column(m.App, app.pk)
    assert SECRET not in raw
    assert "password" not in raw  # the keys are encrypted too
    assert json.loads(crypto.decrypt(raw)) == {"password": SECRET}
    assert m.App.objects.get(pk=app.pk).secret_options == {"password": SECRET}


@pytest.mark.django_db
def test_destination_secret_column_never_holds_the_plaintext():
    destination = make_destination(secret_options={"api_key": SECRET})

    assert SECRET not in raw_column(m.Destination, destination.pk)
    assert m.Destination.objects.get(pk=destination.pk).secret_options == {"api_key": SECRET}


@pytest.mark.django_db
def test_serialization_keeps_the_ciphertext():
    app = make_app(secret_options={"password": SECRET})

    dumped = serializers.serialize("json", [app])
    assert SECRET not in dumped


@pytest.mark.django_db
def test_secret_dict_repr_and_str_never_show_values():
    app = make_app(secret_options={"password": SECRET})
    app = m.App.objects.get(pk=app.pk)

    assert isinstance(app.secret_options, SecretDict)
    for text in (
        repr(app.secret_options),
        str(app.secret_options),
        f"{app.secret_options}",
        repr([app.secret_options]),
        repr(app),
        str(app),
    ):
        assert SECRET not in text
    assert "password" in repr(app.secret_options)  # the key names stay visible, for debugging


@pytest.mark.django_db
def test_env_reference_is_resolved_at_connect_time(monkeypatch):
    app = make_app(secret_options={"password": "env:GROUPAROO_TEST_DB_PASSWORD"})
    monkeypatch.setenv("GROUPAROO_TEST_DB_PASSWORD", "from-the-environment")

    app = m.App.objects.get(pk=app.pk)
    # Stored as the reference, resolved only when handed to a connector.
    assert app.secret_options == {"password": "env:GROUPAROO_TEST_DB_PASSWORD"}
    assert app.connector_options()["password"] == "from-the-environment"


@pytest.mark.django_db
def test_missing_env_variable_names_the_variable_and_leaks_nothing(monkeypatch):
    monkeypatch.delenv("GROUPAROO_TEST_MISSING", raising=False)
    app = make_app(
        options={"path": ":memory:"},
        secret_options={"password": "env:GROUPAROO_TEST_MISSING", "token": "tok-unique-777"},
    )

    with pytest.raises(crypto.SecretUnavailable) as excinfo:
        m.App.objects.get(pk=app.pk).connector_options()

    message = str(excinfo.value)
    assert "GROUPAROO_TEST_MISSING" in message
    assert "password" in message
    assert "tok-unique-777" not in message


def test_non_reference_values_pass_through_unchanged():
    assert crypto.resolve_secret("plain") == "plain"
    assert crypto.resolve_secret(42) == 42


def test_rotation_re_encrypts_under_the_newest_key(settings):
    old, new = new_key(), new_key()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt(SECRET)

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == SECRET  # still readable during the rotation
    rotated = crypto.rotate(token)
    assert rotated != token

    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key is gone
    assert crypto.decrypt(rotated) == SECRET
    with pytest.raises(crypto.SecretUnavailable) as excinfo:
        crypto.decrypt(token)
    assert SECRET not in str(excinfo.value)


def test_a_token_from_an_unknown_key_is_refused_without_leaking(settings):
    settings.FIELD_ENCRYPTION_KEYS = [new_key()]
    token = crypto.encrypt(SECRET)
    settings.FIELD_ENCRYPTION_KEYS = [new_key()]

    with pytest.raises(crypto.SecretUnavailable) as excinfo:
        crypto.decrypt(token)
    assert SECRET not in str(excinfo.value)
    assert token not in str(excinfo.value)


@pytest.mark.parametrize("keys", [[], ["not-a-fernet-key"]])
def test_missing_or_malformed_keys_fail_loudly(settings, keys):
    settings.FIELD_ENCRYPTION_KEYS = keys
    with pytest.raises(ImproperlyConfigured) as excinfo:
        crypto.encrypt("x")
    assert "not-a-fernet-key" not in str(excinfo.value)
