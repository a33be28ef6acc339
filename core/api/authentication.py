"""API-key authentication: `Authorization: Bearer grp_<prefix>.<secret>` (or `X-Api-Key: ...`).

A request without a key falls through to the next authenticator (the admin session, with CSRF),
so a logged-in staff user can use the browsable API. A request *with* a key is answered by the
key alone: unknown prefix, wrong secret, revoked and expired keys all fail with the same 401
body (`core.api.exceptions.UNAUTHENTICATED_MESSAGE`). `authenticate_header()` makes DRF answer
401 (with `WWW-Authenticate: Bearer`) rather than 403 when authentication is missing or fails.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from core.api.exceptions import UNAUTHENTICATED_MESSAGE
from core.models import ApiKey
from core.services.api_keys import api_key_authenticate

KEYWORD = "Bearer"
HEADER = "X-Api-Key"


class ApiKeyAuthentication(BaseAuthentication):
    """Returns (owner user or AnonymousUser, ApiKey); `request.auth` is the ApiKey.

    The user is the key's creator when that account is still active, so `request.user` is never
    None; permissions come from the key's topics, never from that user (see permissions.py).
    Bumps the key's `last_used_at` at most once a minute.
    """

    def get_key(self, request: Request) -> str | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header:
            scheme, _, credentials = header.strip().partition(" ")
            if scheme.lower() == KEYWORD.lower():
                credentials = credentials.strip()
                if not credentials or " " in credentials:
                    raise exceptions.AuthenticationFailed(UNAUTHENTICATED_MESSAGE)
                return credentials
        value = request.META.get("HTTP_X_API_KEY")
        if value is not None:
            value = value.strip()
            if not value:
                raise exceptions.AuthenticationFailed(UNAUTHENTICATED_MESSAGE)
            return value
        return None  # no key: let the session authenticator try

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        key = self.get_key(request)
        if key is None:
            return None
        api_key = api_key_authenticate(key)
        if api_key is None:
            raise exceptions.AuthenticationFailed(UNAUTHENTICATED_MESSAGE)
        owner = api_key.created_by
        user = owner if owner is not None and owner.is_active else AnonymousUser()
        return user, api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="api"'
