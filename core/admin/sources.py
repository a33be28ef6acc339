"""Admin for Sources (with mappings, schedule, preview page), Schedules and their filters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from connectors import registry
from connectors.base import ConnectorError
from core import models as m
from core.admin.apps import connector_label
from core.admin.base import (
    GrouparooModelAdmin,
    SensitivePostAdminMixin,
    admin_link,
    count_of,
    service_errors,
)
from core.admin.forms import ConnectorOptionsAdminMixin, SourceForm
from core.admin.inlines import ScheduleFilterInline, ScheduleInline, SourceMappingInline
from core.admin.usage import InUseAdminMixin
from core.crypto import SecretUnavailable

PREVIEW_LIMIT = 10


def enqueue_runs(request: HttpRequest, schedules: list[tuple[Any, m.Schedule | None]]) -> None:
    """Start a run for each (object, schedule) pair through the runs service."""
    from core.services.runs import run_enqueue

    for obj, schedule in schedules:
        if schedule is None:
            messages.warning(request, f"{obj} has no schedule: add one to run it.")
            continue
        with service_errors(request, obj):
            run = run_enqueue(schedule=schedule, full=False)
            messages.success(
                request, format_html("{}: run {} started.", obj, admin_link(run, f"#{run.pk}"))
            )


@admin.register(m.Source)
class SourceAdmin(
    InUseAdminMixin, SensitivePostAdminMixin, ConnectorOptionsAdminMixin, GrouparooModelAdmin
):
    form = SourceForm
    fieldsets = [(None, {"fields": ["name", "app", "model", "type", "is_primary", "state"]})]
    exclude = ["options", "secret_options"]
    list_display = [
        "name",
        "type_label",
        "app_link",
        "model",
        "is_primary",
        "property_count",
        "mapping_count",
        "schedule_summary",
        "state",
    ]
    list_filter = ["model", "app", "is_primary", "state", "type"]
    list_select_related = ["app", "model", "schedule"]
    search_fields = ["name", "type", "app__name"]
    inlines = [SourceMappingInline, ScheduleInline]
    actions = ["run_now"]

    def lookup_connector(self, key: str) -> type:
        return registry.get_source(key)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "model", "type"] if obj is not None else readonly

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_properties=count_of(m.Property, "source"),
                n_mappings=count_of(m.SourceMapping, "source"),
            )
        )

    @admin.display(description="type", ordering="type")
    def type_label(self, obj: m.Source) -> str:
        return connector_label(registry.get_source, obj.type)

    @admin.display(description="app", ordering="app__name")
    def app_link(self, obj: m.Source) -> str:
        return admin_link(obj.app)

    @admin.display(description="properties", ordering="n_properties")
    def property_count(self, obj: Any) -> int:
        return obj.n_properties

    @admin.display(description="mappings", ordering="n_mappings")
    def mapping_count(self, obj: Any) -> int:
        return obj.n_mappings

    @admin.display(description="schedule")
    def schedule_summary(self, obj: m.Source) -> str:
        schedule = getattr(obj, "schedule", None)
        if schedule is None:
            return "-"
        if not schedule.recurring:
            return admin_link(schedule, "manual")
        every = schedule.cron or f"every {schedule.recurring_frequency}s"
        return admin_link(schedule, every)

    @admin.action(description="Run now", permissions=["change"])
    def run_now(self, request: HttpRequest, queryset) -> None:
        enqueue_runs(
            request,
            [(s, getattr(s, "schedule", None)) for s in queryset.select_related("schedule")],
        )

    # --- the preview page ------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name=f"{info[0]}_{info[1]}_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A few rows of the source, read through its connector (source_preview service).
        Staff who may only view sources may open it: the preview runs the source's SQL on a
        read-only connection, one statement at a time, as a run does (connectors/sql.py)."""
        source = self.get_object(request, unquote(object_id))
        if source is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, source):
            raise PermissionDenied
        rows: list[dict[str, Any]] = []
        from core.services.sources import source_preview

        try:
            rows = source_preview(source=source, limit=PREVIEW_LIMIT)
        except ConnectorError as exc:
            messages.error(request, exc.message)
        except SecretUnavailable as exc:
            messages.error(request, str(exc))
        except registry.UnknownConnector as exc:
            messages.error(request, str(exc))
        columns: list[str] = []
        for row in rows:
            columns.extend(c for c in row if c not in columns)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview of {source}",
            "subtitle": None,
            "opts": self.opts,
            "original": source,
            "columns": columns,
            "rows": [[row.get(c) for c in columns] for row in rows],
            "limit": PREVIEW_LIMIT,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/core/source/preview.html", context)


@admin.register(m.SourceMapping)
class SourceMappingAdmin(GrouparooModelAdmin):
    list_display = ["remote_key", "property", "source"]
    list_filter = ["source"]
    list_select_related = ["source", "property"]
    search_fields = ["remote_key", "property__key", "source__name"]


@admin.register(m.Schedule)
class ScheduleAdmin(GrouparooModelAdmin):
    list_display = [
        "__str__",
        "source_link",
        "recurring",
        "recurring_frequency",
        "cron",
        "incremental",
        "next_run_at",
        "last_run_at",
        "state",
        "filter_count",
    ]
    list_filter = ["recurring", "incremental", "state"]
    list_select_related = ["source"]
    search_fields = ["name", "source__name"]
    readonly_fields = [
        "high_watermark",
        "watermark_signature",
        "next_run_at",
        "last_run_at",
        "created_at",
        "updated_at",
    ]
    fields = [
        "source",
        "name",
        ("recurring", "recurring_frequency", "cron"),
        ("incremental", "confirm_records", "refresh_enabled"),
        "options",
        "state",
        ("next_run_at", "last_run_at"),
        ("high_watermark", "watermark_signature"),
    ]
    inlines = [ScheduleFilterInline]
    actions = ["run_now"]

    def get_queryset(self, request: HttpRequest):
        return (
            super().get_queryset(request).annotate(n_filters=count_of(m.ScheduleFilter, "schedule"))
        )

    @admin.display(description="source", ordering="source__name")
    def source_link(self, obj: m.Schedule) -> str:
        return admin_link(obj.source)

    @admin.display(description="filters", ordering="n_filters")
    def filter_count(self, obj: Any) -> int:
        return obj.n_filters

    @admin.action(description="Run now", permissions=["change"])
    def run_now(self, request: HttpRequest, queryset) -> None:
        enqueue_runs(request, [(s, s) for s in queryset.select_related("source")])


@admin.register(m.ScheduleFilter)
class ScheduleFilterAdmin(GrouparooModelAdmin):
    list_display = ["__str__", "schedule", "key", "op", "match", "position"]
    list_filter = ["op"]
    list_select_related = ["schedule__source"]
    search_fields = ["key", "match"]
