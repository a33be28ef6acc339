"""Admin for objects managed by config files: shown read-only, with a note naming the file.

`ConfigLockedAdminMixin` (part of GrouparooModelAdmin) refuses change and delete permission for
an object whose `locked_by` (or whose parent's, for inline-edited rows) names a config file, so
Django renders its change page as a read-only view — inlines included — and adds a message
saying which file owns it and how to change it. Bulk deletes skip such objects.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest

from core.config.locks import locked_by_of


def lock_note(obj: Any, path: str) -> str:
    what = obj._meta.verbose_name
    return (
        f"This {what} is managed by the config file {path}: it is read-only here. Change the "
        f"file and run manage.py apply."
    )


class ConfigLockedAdminMixin:
    """Read-only change pages (and no delete) for objects owned by a config file."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and locked_by_of(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and locked_by_of(obj):
            return False
        return super().has_delete_permission(request, obj)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ):
        obj = self.get_object(request, object_id) if object_id else None
        path = locked_by_of(obj)
        if path and request.method == "GET":
            messages.warning(request, lock_note(obj, path))
        return super().change_view(request, object_id, form_url, extra_context)

    def exclude_locked(self, request: HttpRequest, queryset):
        """`queryset` without the objects config files own (named in a warning)."""
        locked = [obj for obj in queryset if locked_by_of(obj)]
        if locked:
            messages.warning(
                request,
                f"Not deleted, managed by config files: {', '.join(str(o) for o in locked[:10])}.",
            )
            queryset = queryset.exclude(pk__in=[o.pk for o in locked])
        return queryset

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        super().delete_queryset(request, self.exclude_locked(request, queryset))
