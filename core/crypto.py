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
# The server's own secrets and connection strings, which an `env:` reference may never name: an
# app's secret options are sent to the app's host, so anyone who may edit an app could
# otherwise have the server send them its encryption keys or database URL.
SERVER_VARIABLES = frozenset(
    {
        "SECRET_KEY",
        "FIELD_ENCRYPTION_KEYS",
        "API_KEY_PEPPER",
        "DATABASE_URL",
        "GROUPAROO_ADMIN_PASSWORD",
        "TEST_POSTGRES_URL",
    }
)


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
        problem = env_reference_problem(name)
        if problem:
            raise SecretUnavailable(problem)
        if name not in os.environ:
            where = f" for option {option!r}" if option else ""
            raise SecretUnavailable(f"environment variable {name!r}{where} is not set")
        return os.environ[name]
    return value


def env_reference_problem(name: str) -> str | None:
    """Why `env:<name>` may not be used for an app's secret, or None."""
    upper = name.upper()
    if upper in SERVER_VARIABLES or upper.startswith("DJANGO_"):
        return f"environment variable {name!r} is the server's own configuration and cannot be an app's secret"
    return None


def env_reference_errors(secrets: dict) -> dict[str, str]:
    """{option: message} for secret values that are `env:` references the server refuses."""
    out = {}
    for key, value in secrets.items():
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            problem = env_reference_problem(value[len(ENV_PREFIX) :].strip())
            if problem:
                out[key] = problem[0].upper() + problem[1:] + "."
    return out


def resolve_secrets(options: dict) -> dict:
    return {key: resolve_secret(value, option=key) for key, value in options.items()}
