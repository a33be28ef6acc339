"""Admin for the logs the engine writes: Runs, Imports and Exports. All read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from core import models as m
from core.admin.base import GrouparooModelAdmin, ReadOnlyAdminMixin, admin_link, changelist_link


class FailedExportsFilter(admin.SimpleListFilter):
    """Runs some of whose exports failed (superseded failures not counted)."""

    title = "failed exports"
    parameter_name = "failed_exports"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Some failed"), ("no", "None failed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(exports_failed__gt=0)
        if self.value() == "no":
            return queryset.filter(exports_failed=0)
        return queryset


@admin.register(m.Run)
class RunAdmin(ReadOnlyAdminMixin, GrouparooModelAdmin):
    list_display = [
        "id",
        "creator_type",
        "subject",
        "outcome",
        "phase",
        "percent_complete",
        "rows_read",
        "records_created",
        "records_updated",
        "exports_created",
        "exports_failed",
        "created_at",
        "completed_at",
    ]
    list_filter = ["state", FailedExportsFilter, "phase", "creator_type", "created_at"]
    list_select_related = ["source", "group", "destination", "property"]
    search_fields = ["id__exact", "source__name", "group__name", "destination__name"]
    show_full_result_count = False
    readonly_fields = ["outcome", "subject", "imports_link", "exports_link"]
    date_hierarchy = "created_at"

    @admin.display(description="state", ordering="state")
    def outcome(self, obj: m.Run) -> str:
        """The state, and how many exports failed: a run whose exports failed is not shown as
        plainly complete."""
        if not obj.has_failed_exports:
            return obj.state
        return format_html('<strong style="color: var(--error-fg)">{}</strong>', obj.outcome)

    @admin.display(description="for")
    def subject(self, obj: m.Run) -> str:
        for related in (obj.source, obj.group, obj.destination, obj.property):
            if related is not None:
                return admin_link(related)
        return "-"

    @admin.display(description="imports")
    def imports_link(self, obj: m.Run) -> str:
        return changelist_link(m.Import, "imports of this run", run__id__exact=obj.pk)

    @admin.display(description="exports")
    def exports_link(self, obj: m.Run) -> str:
        return changelist_link(m.Export, "exports of this run", run__id__exact=obj.pk)


@admin.register(m.Import)
class ImportAdmin(ReadOnlyAdminMixin, GrouparooModelAdmin):
    list_display = [
        "id",
        "run_link",
        "source",
        "batch",
        "rows_read",
        "records_created",
        "records_updated",
        "records_skipped",
        "created_at",
    ]
    list_filter = ["source", "created_at"]
    list_select_related = ["run", "source"]
    search_fields = ["run__id__exact"]
    raw_id_fields = ["run"]
    show_full_result_count = False

    @admin.display(description="run", ordering="run_id")
    def run_link(self, obj: m.Import) -> str:
        return admin_link(obj.run)


@admin.register(m.Export)
class ExportAdmin(ReadOnlyAdminMixin, GrouparooModelAdmin):
    list_display = [
        "id",
        "destination",
        "record_link",
        "state",
        "to_delete",
        "attempts",
        "error_level",
        "error_message",
        "created_at",
        "completed_at",
    ]
    list_filter = ["state", "error_level", "to_delete", "destination", "created_at"]
    list_select_related = ["destination", "record__model"]
    search_fields = ["record__id__exact", "run__id__exact"]
    search_help_text = "Exact record id or run id."
    raw_id_fields = ["record", "run"]
    show_full_result_count = False

    @admin.display(description="record", ordering="record_id")
    def record_link(self, obj: m.Export) -> str:
        return admin_link(obj.record)
