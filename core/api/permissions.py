"""Who may call what.

`HasTopicPermission`: every API view declares `api_topic` (an `ApiTopic` value, or `ANY_TOPIC`
for the API root and the schema pages, which hold no data). A view without one raises
ImproperlyConfigured when the class is defined (see views.ApiViewMixin) and, for any other view,
on its first request. An API key needs the topic's `read` for reading (GET, HEAD, OPTIONS) and
its `write` for anything else; a view or action may declare `api_access = "read"` for a POST
that changes nothing (a source preview). Without a key, an active staff user's session
(SessionAuthentication enforces CSRF) may read and write what the user's Django permissions
allow in the admin (a superuser everything; see core.services.api_keys.user_grants), so the
browsable API works for admin users; anyone else gets 401 (no credentials) or 403 (credentials
without the permission).

`check_grants`: creating an API key or widening one's permissions may grant only what the caller
holds: a key its own permissions, a staff session its user's Django permissions (a superuser
anything). Anything beyond is refused with 403 naming the topics (core.services.api_keys).

`NotManagedByConfigFile`: objects whose `locked_by` names a config file are changed by that
file and `manage.py apply`, not through the API: PUT, PATCH and DELETE on them answer 409 with a
message naming the file. Rows that belong to a parent's file (an app's refresh query) follow
their parent (`core.config.locks.locked_by_of`); a view may also name another holder with
`lock_holder()`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from core.api.exceptions import Locked
from core.choices import ApiTopic
from core.models import ApiKey
from core.services.api_keys import (
    NO_GRANTS,
    Grants,
    api_key_grant_excess,
    api_key_grants,
    api_key_has_permission,
    user_grants,
)

ANY_TOPIC = "*"
LOCKED_ACTIONS = frozenset({"update", "partial_update", "destroy"})


def view_topic(view: Any) -> str:
    """The view's declared topic; raises ImproperlyConfigured when it has none (or a bad one)."""
    name = view.__name__ if isinstance(view, type) else type(view).__name__
    topic = getattr(view, "api_topic", None)
    if not topic:
        raise ImproperlyConfigured(f"{name} declares no api_topic")
    if topic != ANY_TOPIC and topic not in ApiTopic.values:
        raise ImproperlyConfigured(f"{name}.api_topic {topic!r} is not an ApiTopic")
    return topic


def needs_write(request: Request, view: Any) -> bool:
    access = getattr(view, "api_access", None)
    if access in ("read", "write"):
        return access == "write"
    return request.method not in SAFE_METHODS


class HasTopicPermission(BasePermission):
    """Reads need the topic's read permission, writes its write permission (see module doc)."""

    message = "Permission denied."

    def has_permission(self, request: Request, view: Any) -> bool:
        topic = view_topic(view)
        if isinstance(request.auth, ApiKey):
            if topic == ANY_TOPIC:
                return True
            write = needs_write(request, view)
            if api_key_has_permission(api_key=request.auth, topic=topic, write=write):
                return True
            self.message = f"This API key has no {'write' if write else 'read'} permission on {topic}."
            return False
        user = request.user
        if user is not None and user.is_authenticated:
            if not (user.is_active and user.is_staff):
                self.message = "Only active staff users may use the API with a session."
                return False
            if topic == ANY_TOPIC:
                return True
            # A staff session may do in the API what its Django permissions allow in the admin.
            write = needs_write(request, view)
            if user_grants(user).allows(topic, write=write):
                return True
            self.message = f"Your account has no {'write' if write else 'read'} permission on {topic}."
            return False
        return False  # DRF answers 401: no authenticator succeeded


def request_grants(request: Request) -> Grants:
    """What the caller may grant: its key's permissions, or its session user's."""
    if isinstance(request.auth, ApiKey):
        return api_key_grants(request.auth)
    return user_grants(request.user)


def check_grants(request: Request, *, requested: Grants, current: Grants = NO_GRANTS) -> None:
    """Raise PermissionDenied (403) naming what `requested` adds to a key's `current`
    permissions that the caller does not hold itself."""
    excess = api_key_grant_excess(
        grantor=request_grants(request), requested=requested, current=current
    )
    if excess:
        if isinstance(request.auth, ApiKey):
            lead = "This API key may grant only permissions it holds itself"
        else:
            lead = "You may grant only permissions you hold yourself"
        raise PermissionDenied(f"{lead}; not held: {', '.join(excess)}.")


def check_may_manage(request: Request, api_key: ApiKey) -> None:
    """Raise PermissionDenied (403) unless the key `api_key` holds nothing beyond what the
    caller holds: a key (or a staff session) changes or deletes only keys within its own
    permissions, so a weaker key cannot extend or remove a stronger one. (Revoking is not
    checked: it only protects.)"""
    from core.services.api_keys import grants_within

    if grants_within(api_key_grants(api_key), request_grants(request)):
        return
    who = "This API key" if isinstance(request.auth, ApiKey) else "You"
    raise PermissionDenied(
        f"{who} may change or delete only keys whose permissions are within "
        f"{'its' if who == 'This API key' else 'your'} own; “{api_key.name}” holds more "
        f"(it may still be revoked)."
    )


def check_expiry(request: Request, requested: Any) -> None:
    """Raise a 400 on `expires_at` when the caller's own key expires and `requested` (a datetime
    or None for never) would outlive it (core.services.api_keys.api_key_expiry_problem)."""
    from rest_framework.exceptions import ValidationError

    from core.services.api_keys import api_key_expiry_problem

    if not isinstance(request.auth, ApiKey):
        return
    problem = api_key_expiry_problem(
        grantor_expires_at=request.auth.expires_at, requested=requested
    )
    if problem:
        raise ValidationError({"expires_at": [f"{problem}."]})


def raise_if_locked(obj: models.Model | None) -> None:
    """Raise Locked (409) when `obj` (or, for a row edited as part of a parent, that parent) is
    managed by a config file (core.config.locks.locked_by_of)."""
    from core.config.locks import locked_by_of

    path = locked_by_of(obj)
    if path:
        raise Locked(
            f"{obj._meta.verbose_name.capitalize()} “{obj}” is managed by config file {path}; "
            f"change the file and run manage.py apply."
        )


class NotManagedByConfigFile(BasePermission):
    """Refuses PUT/PATCH/DELETE of an object (or its lock holder) that has `locked_by` set."""

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if getattr(view, "action", None) in LOCKED_ACTIONS:
            holder = view.lock_holder(obj) if hasattr(view, "lock_holder") else obj
            raise_if_locked(holder)
        return True
