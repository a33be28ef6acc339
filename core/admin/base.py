"""Shared pieces of the admin: the base ModelAdmin, read-only logs, count annotations, and how a
service failure becomes a message on the page.

Admin classes stay thin: they parse input and call services (`core.services.*`). Services are
imported when an action runs, not at module import, so the admin works while a service is still
being written and a broken service never takes the whole admin down.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.debug import sensitive_post_parameters

from connectors.base import ConnectorError
from core.admin.locking import ConfigLockedAdminMixin
from core.crypto import SecretUnavailable

logger = logging.getLogger(__name__)

# Model fields whose values must never be filtered on, shown or echoed by the admin.
SECRET_FIELD_NAMES = frozenset({"secret_options", "hashed_key"})


def count_of(model: type[models.Model], fk: str, **filters: Any) -> Coalesce:
    """A correlated COUNT(*) of `model` rows pointing at the outer row through `fk`.

    Subqueries, unlike `Count()` over joins, stay exact when several counts are annotated on
    the same queryset, and only run for the rows of the page being shown.
    """
    subquery = (
        model.objects.filter(**{fk: models.OuterRef("pk")}, **filters)
        .order_by()
        .values(fk)
        .annotate(n=models.Count("*"))
        .values("n")
    )
    return Coalesce(models.Subquery(subquery, output_field=models.IntegerField()), 0)


def admin_link(obj: models.Model | None, text: str | None = None) -> str | SafeString:
    """A link to `obj`'s admin change page ("-" for None)."""
    if obj is None:
        return "-"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))


def changelist_link(model: type[models.Model], text: str, **params: Any) -> SafeString:
    """A link to `model`'s changelist filtered by `params` (e.g. run__id__exact=3)."""
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return format_html('<a href="{}?{}">{}</a>', url, query, text)


class GrouparooModelAdmin(ConfigLockedAdminMixin, admin.ModelAdmin):
    """Base of every admin here: refuses lookups that touch a secret column, and shows objects
    managed by config files read-only (core.admin.locking).

    `?secret_options__contains=...` on a changelist would let anyone with view permission probe
    encrypted values (or at least their ciphertext); such a URL gets a 400.
    """

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if SECRET_FIELD_NAMES.intersection(lookup.split(LOOKUP_SEP)):
            return False
        return super().lookup_allowed(lookup, value, request)


class SensitivePostAdminMixin:
    """Marks add/change POST bodies sensitive: error reports never include the submitted secrets."""

    @method_decorator(sensitive_post_parameters())
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)


class ReadOnlyAdminMixin:
    """A log: rows are written by the engine, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@contextlib.contextmanager
def service_errors(request: HttpRequest, obj: object) -> Iterator[None]:
    """Turn a service failure about `obj` into an error message instead of a 500 page.

    Connector errors and secret errors carry messages that are safe to show by contract. Any
    other exception is logged with its traceback for operators, and the page only names its
    class: its text could hold a connection string.
    """
    try:
        yield
    except ConnectorError as exc:
        messages.error(request, f"{obj}: {exc.message}")
    except SecretUnavailable as exc:
        messages.error(request, f"{obj}: {exc}")
    except ValidationError as exc:
        messages.error(request, f"{obj}: {' '.join(exc.messages)}")
    except Exception as exc:  # an action must never show a stack trace
        logger.exception("admin action failed for %s", obj)
        messages.error(request, f"{obj}: unexpected {type(exc).__name__}; see the server log.")
