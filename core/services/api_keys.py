"""API key services: create (the key is returned once, only its hash is stored), hash, revoke,
authenticate (with a throttled last-used stamp), per-topic permission checks, and what a caller
may grant.

Nobody hands out more than they hold: a key creating or widening a key may grant only what it
has itself, a staff user only what their Django permissions give them (`user_grants`), a
superuser anything. `api_key_grant_excess` says what a request would grant beyond that.

Key format: `grp_<prefix>.<secret>` where `prefix` is 8 hex characters stored in clear (it finds
the row and is shown in lists) and `secret` is `secrets.token_urlsafe(32)`. The row stores
HMAC-SHA256(API_KEY_PEPPER, key): a fast hash is right for a high-entropy key; compare with
`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


# Prefixes of keys that are not in our format (Grouparoo's keys, given in config files) start
# with this: it cannot start one of ours, which are letters and digits only.
OTHER_KEY_PREFIX = "gr-"
MAX_PREFIX = 16


def api_key_prefix(key: str) -> str:
    """The prefix that finds `key`'s row: ours for `grp_<prefix>.<secret>` (letters and digits,
    at most 16), and for a key of any other form (a Grouparoo key from a config file)
    OTHER_KEY_PREFIX and the start of its hash, so such a key is found without a scan."""
    prefix = api_key_parse_prefix(key)
    if prefix is not None and len(prefix) <= MAX_PREFIX and prefix.isascii() and prefix.isalnum():
        return prefix
    return OTHER_KEY_PREFIX + api_key_hash(key)[: MAX_PREFIX - len(OTHER_KEY_PREFIX)]


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
    prefix = api_key_prefix(key)
    hashed = api_key_hash(key)
    api_key = ApiKey.objects.select_related("created_by").filter(prefix=prefix).first()
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


@dataclass(frozen=True)
class Grants:
    """What a key holds, or a caller may hand out: every topic's read or write (`all_read`,
    `all_write`) and the topics listed in `read` and `write`."""

    all_read: bool = False
    all_write: bool = False
    read: frozenset[str] = frozenset()
    write: frozenset[str] = frozenset()

    def allows(self, topic: str, *, write: bool) -> bool:
        if write:
            return self.all_write or topic in self.write
        return self.all_read or topic in self.read


NO_GRANTS = Grants()
ALL_GRANTS = Grants(all_read=True, all_write=True)


def grants_of(*, all_read: bool, all_write: bool, rows: Iterable[Mapping[str, Any]]) -> Grants:
    """Grants from the two all-topics flags and permission rows ({topic, read, write}; a row
    without `read` reads, as the model's default does)."""
    rows = list(rows)
    return Grants(
        all_read=bool(all_read),
        all_write=bool(all_write),
        read=frozenset(r["topic"] for r in rows if r.get("read", True)),
        write=frozenset(r["topic"] for r in rows if r.get("write", False)),
    )


def api_key_grants_after(
    *,
    api_key: ApiKey | None,
    all_read: bool | None = None,
    all_write: bool | None = None,
    rows: Iterable[Mapping[str, Any]] | None = None,
) -> Grants:
    """What a key will hold once created (`api_key` None) or updated with the given values;
    None leaves that part as the saved key has it (nothing for a new key)."""
    current = api_key_grants(api_key) if api_key is not None else NO_GRANTS
    all_read = current.all_read if all_read is None else all_read
    all_write = current.all_write if all_write is None else all_write
    if rows is None:
        return Grants(all_read=all_read, all_write=all_write, read=current.read, write=current.write)
    return grants_of(all_read=all_read, all_write=all_write, rows=rows)


def api_key_grants(api_key: ApiKey) -> Grants:
    """What the saved key holds (its stored flags and permission rows). One query, none when
    the rows are prefetched."""
    return grants_of(
        all_read=api_key.permission_all_read,
        all_write=api_key.permission_all_write,
        rows=({"topic": p.topic, "read": p.read, "write": p.write} for p in api_key.permissions.all()),
    )


def user_grants(user: Any) -> Grants:
    """What a signed-in user may grant: everything for an active superuser; for other active
    staff, a topic's read when they may view all of its models and its write when they may
    add, change and delete them (the topic-to-models map config Teams use); nothing else."""
    if user is None or not (user.is_active and user.is_staff):
        return NO_GRANTS
    if user.is_superuser:
        return ALL_GRANTS
    from core.config.schema import TEAM_TOPIC_ALIASES, TEAM_TOPIC_MODELS

    held = user.get_all_permissions()

    def may(topic: str, actions: tuple[str, ...]) -> bool:
        models = TEAM_TOPIC_MODELS[TEAM_TOPIC_ALIASES.get(topic, "system")]
        return all(
            f"{label.split('.')[0]}.{action}_{label.split('.')[1]}" in held
            for label in models
            for action in actions
        )

    return Grants(
        read=frozenset(t for t in ApiTopic.values if may(t, ("view",))),
        write=frozenset(t for t in ApiTopic.values if may(t, ("add", "change", "delete"))),
    )


def api_key_grant_excess(
    *, grantor: Grants, requested: Grants, current: Grants = NO_GRANTS
) -> list[str]:
    """What `requested` would give a key beyond what it holds now (`current`; nothing for a new
    key) and beyond what `grantor` holds, in words ("write on apps", "read on every topic").
    Empty when the request is within bounds: narrowing a key and keeping what it has are always
    allowed. Pure."""
    excess: list[str] = []
    for write, flag in ((False, "read"), (True, "write")):
        wants_all = requested.all_write if write else requested.all_read
        has_all = current.all_write if write else current.all_read
        may_all = grantor.all_write if write else grantor.all_read
        if wants_all and not has_all and not may_all:
            excess.append(f"{flag} on every topic")
        for topic in sorted(requested.write if write else requested.read):
            if not current.allows(topic, write=write) and not grantor.allows(topic, write=write):
                excess.append(f"{flag} on {topic}")
    return excess


def grants_within(inner: Grants, outer: Grants) -> bool:
    """Whether everything `inner` holds is held by `outer` too. Pure."""
    return not api_key_grant_excess(grantor=outer, requested=inner)


def api_key_expiry_problem(
    *, grantor_expires_at: datetime | None, requested: datetime | None
) -> str | None:
    """Why a grantor whose own key expires at `grantor_expires_at` (None: never, or a staff
    session) may not give a key the expiry `requested` (None: never), or None when it may. A key
    that expires may set expiries no later than its own, and "never" only when it never expires
    itself, so no key outlives the key that made or extended it. Pure."""
    if grantor_expires_at is None:
        return None
    if requested is None:
        return (
            f"This API key expires ({grantor_expires_at.isoformat()}), so it may not give a key "
            f"no expiry: set expires_at no later than its own"
        )
    if requested > grantor_expires_at:
        return (
            f"This API key may set expiries no later than its own "
            f"({grantor_expires_at.isoformat()})"
        )
    return None
