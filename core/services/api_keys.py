"""API key services: create (the key is returned once, only its hash is stored), hash, revoke.

Key format: `grp_<prefix>.<secret>` where `prefix` is 8 hex characters stored in clear (it finds
the row and is shown in lists) and `secret` is `secrets.token_urlsafe(32)`. The row stores
HMAC-SHA256(API_KEY_PEPPER, key): a fast hash is right for a high-entropy key; compare with
`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.models import ApiKey

KEY_PREFIX = "grp_"


def api_key_hash(key: str) -> str:
    """HMAC-SHA256 of the full key under the server's pepper, as hex."""
    return hmac.new(settings.API_KEY_PEPPER.encode(), key.encode(), hashlib.sha256).hexdigest()


def api_key_parse_prefix(key: str) -> str | None:
    """The prefix of a well-formed key (`grp_<prefix>.<secret>`), else None."""
    if not key.startswith(KEY_PREFIX) or "." not in key:
        return None
    prefix = key[len(KEY_PREFIX) :].split(".", 1)[0]
    return prefix or None


def _new_prefix() -> str:
    while True:
        prefix = secrets.token_hex(4)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            return prefix


def api_key_create(
    *,
    name: str,
    created_by: Any = None,
    api_key: ApiKey | None = None,
    **fields: Any,
) -> tuple[ApiKey, str]:
    """Create an API key; return (row, key). The key is never stored or retrievable again.

    api_key: an unsaved ApiKey whose other fields are already set (the admin passes its form's
      instance, so inlines saved afterwards attach to it); by default a new one.
    fields: other ApiKey fields (permission_all_read, expires_at, ...).
    Not idempotent by nature (every call mints a new key); the unique `name` makes a repeated
    call with the same name fail validation instead of creating a second key.
    """
    api_key = api_key if api_key is not None else ApiKey()
    api_key.name = name
    if created_by is not None:
        api_key.created_by = created_by
    for field, value in fields.items():
        setattr(api_key, field, value)
    with transaction.atomic():
        api_key.prefix = _new_prefix()
        key = f"{KEY_PREFIX}{api_key.prefix}.{secrets.token_urlsafe(32)}"
        api_key.hashed_key = api_key_hash(key)
        api_key.full_clean()
        api_key.save()
    return api_key, key


def api_key_revoke(*, api_key: ApiKey, at: datetime | None = None) -> bool:
    """Revoke the key. Idempotent: returns False (and changes nothing) if already revoked."""
    return bool(
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=at or timezone.now(), updated_at=timezone.now()
        )
    )
