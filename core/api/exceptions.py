"""One error body for the whole API, and the exceptions the API raises itself.

Every error is JSON with a human `message`; validation errors add `errors`, a flat mapping of
field -> [messages]. Nested fields are dotted (`options.path`, `mappings.0.property`), errors
that concern no one field are under `non_field_errors`:

    {"message": "name: This field is required.", "errors": {"name": ["This field is required."]}}
    {"message": "Not found."}

Django's own ValidationError (from a model's clean() or a service), ProtectedError (deleting
something still in use) and IntegrityError (a race on a unique constraint) become 400, 409 and
409. A delete refused because something uses the object (core.services.usage.InUse) is a 409
whose `users` lists each user: {kind, object, id, name, detail, url}. Any other exception is logged with its traceback and answered with a 500 whose message
names nothing but its class: its text could hold a connection string.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, parsers, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

logger = logging.getLogger(__name__)

NON_FIELD = "non_field_errors"
UNAUTHENTICATED_MESSAGE = (
    "Authentication required: send a valid API key as 'Authorization: Bearer <key>'."
)


class Locked(exceptions.APIException):
    """The object is managed by a config file: change the file and run `manage.py apply`."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "locked"
    default_detail = "This object is managed by a config file."


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The request body is too large."


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with JSON nested too deeply for the parser a 400 instead of a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


class BadGateway(exceptions.APIException):
    """A connector could not reach (or was refused by) the service it talks to."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "connector_error"
    default_detail = "The remote service failed."


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {dotted field: [messages]}."""
    out: dict[str, list[str]] = {}

    def add(key: str, message: Any) -> None:
        out.setdefault(key or NON_FIELD, []).append(str(message))

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for name, inner in value.items():
                name = str(name)
                if name == NON_FIELD and key:
                    walk(inner, key)
                else:
                    walk(inner, f"{key}.{name}" if key else name)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, (dict, list, tuple)):
                    if item:
                        walk(item, f"{key}.{index}" if key else str(index))
                else:
                    add(key, item)
        else:
            add(key, value)

    walk(detail, prefix)
    return out


def validation_body(detail: Any) -> dict[str, Any]:
    errors = flatten_errors(detail)
    if not errors:
        return {"message": "Invalid input.", "errors": {}}
    field, messages = next(iter(errors.items()))
    message = messages[0] if field == NON_FIELD else f"{field}: {messages[0]}"
    return {"message": message, "errors": errors}


def _protected_message(exc: ProtectedError | RestrictedError) -> str:
    objects = list(getattr(exc, "protected_objects", None) or getattr(exc, "restricted_objects", ()))
    if not objects:
        return "Cannot delete: other objects still use it."
    names = ", ".join(f"{o._meta.verbose_name} “{o}”" for o in objects[:5])
    more = f" and {len(objects) - 5} more" if len(objects) > 5 else ""
    return f"Cannot delete: still used by {names}{more}. Delete or change those first."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error as {"message", ["errors"]}."""
    # Imported here: rest_framework.views imports the authentication classes, which import us.
    from rest_framework.views import set_rollback

    from core.services.usage import InUse

    if isinstance(exc, InUse):
        set_rollback()
        body = {"message": str(exc), "users": [u.as_dict() for u in exc.users]}
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, (ProtectedError, RestrictedError)):
        exc = Conflict(_protected_message(exc))
    elif isinstance(exc, RequestDataTooBig):  # Django stops reading at the limit: memory stays bounded
        exc = PayloadTooLarge(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes, the most this "
            "server accepts (DATA_UPLOAD_MAX_MEMORY_SIZE)."
        )
    elif isinstance(exc, IntegrityError):
        exc = Conflict("The change conflicts with existing data (a duplicate or a missing reference).")

    if not isinstance(exc, exceptions.APIException):
        view = context.get("view")
        logger.exception("API error in %s", type(view).__name__ if view else "?")
        set_rollback()
        return Response(
            {"message": f"Internal error ({type(exc).__name__}); see the server log."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        body = validation_body(exc.detail)
    elif isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        # One body for a missing, unknown, wrong, revoked or expired key: nothing to probe.
        body = {"message": UNAUTHENTICATED_MESSAGE}
    elif isinstance(exc.detail, (list, dict)):
        body = validation_body(exc.detail)
    else:
        body = {"message": str(exc.detail)}
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


class BadRequest(exceptions.APIException):
    """A request that is well-formed but cannot be carried out as configured (a secret that
    cannot be resolved, a connector that is not installed)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request cannot be carried out."
