"""API key services: create (the key is returned once, only its hash is stored), hash, revoke,
authenticate (with a throttled last-used stamp) and per-topic permission checks.

Key format: `grp_<prefix>.<secret>` where `prefix` is 8 hex characters stored in clear (it finds
the row and is shown in lists) and `secret` is `secrets.token_urlsafe(32)`. The row stores
HMAC-SHA256(API_KEY_PEPPER, key): a fast hash is right for a high-entropy key; compare with
`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.choices import ApiTopic
from core.models import ApiKey, ApiKeyPermission

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


# How stale `last_used_at` may get before a request writes it again: one UPDATE a minute per
# key at most, so a busy key costs no write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_authenticate(key: str, *, now: datetime | None = None) -> ApiKey | None:
    """The active ApiKey whose plaintext is `key`, else None.

    Unknown prefix, wrong secret, revoked and expired keys all give None (the caller answers them
    alike). The hash is always computed and compared with `hmac.compare_digest`, also when the
    prefix is unknown, so timing tells nothing. Bumps `last_used_at` (see api_key_touch).
    Read-only apart from that timestamp.
    """
    now = now or timezone.now()
    prefix = api_key_parse_prefix(key)
    hashed = api_key_hash(key)
    api_key = (
        ApiKey.objects.select_related("created_by").filter(prefix=prefix).first() if prefix else None
    )
    stored = api_key.hashed_key if api_key is not None else "0" * len(hashed)
    if not hmac.compare_digest(hashed.encode(), stored.encode()) or api_key is None:
        return None
    if api_key.revoked_at is not None or (api_key.expires_at is not None and api_key.expires_at <= now):
        return None
    api_key_touch(api_key=api_key, now=now)
    return api_key


def api_key_touch(*, api_key: ApiKey, now: datetime | None = None) -> bool:
    """Record that the key was used, at most once a minute (a conditional UPDATE, no save()).
    Returns True when it wrote. Idempotent within the minute; concurrent requests write once."""
    now = now or timezone.now()
    if api_key.last_used_at is not None and api_key.last_used_at > now - LAST_USED_RESOLUTION:
        return False
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
    written = ApiKey.objects.filter(stale, pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
    return bool(written)


def api_key_has_permission(*, api_key: ApiKey, topic: str, write: bool) -> bool:
    """Whether the key may read (write=False) or write (write=True) `topic`.

    `permission_all_read` / `permission_all_write` grant every topic; otherwise the key's
    ApiKeyPermission row for the topic decides. Writing does not imply reading: a key is given
    exactly what it lists. At most one query (none when an all-topics flag answers).
    """
    if api_key.permission_all_write if write else api_key.permission_all_read:
        return True
    flag = "write" if write else "read"
    return api_key.permissions.filter(topic=topic, **{flag: True}).exists()


def api_key_set_permissions(
    *, api_key: ApiKey, read: Iterable[str] = (), write: Iterable[str] = ()
) -> None:
    """Make the key's per-topic rows exactly `read` ∪ `write` (a topic in `write` only gets
    write without read). Unknown topics raise ValueError before anything is written.
    Idempotent: the same sets give the same rows."""
    read, write = set(read), set(write)
    unknown = sorted((read | write) - set(ApiTopic.values))
    if unknown:
        raise ValueError(f"unknown topic(s): {', '.join(unknown)} (known: {', '.join(ApiTopic.values)})")
    with transaction.atomic():
        api_key.permissions.exclude(topic__in=read | write).delete()
        for topic in sorted(read | write):
            ApiKeyPermission.objects.update_or_create(
                api_key=api_key, topic=topic, defaults={"read": topic in read, "write": topic in write}
            )
