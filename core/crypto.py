"""Encryption of secrets at rest: a MultiFernet over FIELD_ENCRYPTION_KEYS (newest key first).

`encrypt`/`decrypt` are the only entry points; `rotate` re-encrypts a token under the newest key.
`resolve_secret` turns an `env:NAME` reference into the environment's value at use time, so
operators can keep credentials out of the database entirely.
"""
from __future__ import annotations

import functools
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ENV_PREFIX = "env:"


class SecretUnavailable(Exception):
    """A secret could not be decrypted or resolved. The message never contains the secret."""


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key")
    try:
        return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)"
        ) from exc


def get_fernet() -> MultiFernet:
    return _fernet(tuple(k.strip() for k in settings.FIELD_ENCRYPTION_KEYS if k.strip()))


def encrypt(plaintext: str) -> str:
    return get_fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return get_fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnavailable(
            "a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS "
            "(was a key removed before rotate_encryption_keys ran?)"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt `token` under the newest key (it may have been written with an older one)."""
    try:
        return get_fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnavailable("a stored secret cannot be decrypted for rotation") from exc


def resolve_secret(value: object, *, option: str = "") -> object:
    """Return the value to use at connect time: `env:NAME` reads NAME from the environment."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :].strip()
        if name not in os.environ:
            where = f" for option {option!r}" if option else ""
            raise SecretUnavailable(f"environment variable {name!r}{where} is not set")
        return os.environ[name]
    return value


def resolve_secrets(options: dict) -> dict:
    return {key: resolve_secret(value, option=key) for key, value in options.items()}
