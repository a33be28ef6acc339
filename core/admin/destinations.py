"""Admin for Destinations (mappings and group memberships inline, export counts, "Retry failed
exports") and their mapping rows."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html

from connectors import registry
from core import models as m
from core.admin.apps import connector_label
from core.admin.base import (
    GrouparooModelAdmin,
    SensitivePostAdminMixin,
    admin_link,
    changelist_link,
    count_of,
    service_errors,
)
from core.admin.forms import ConnectorOptionsAdminMixin, DestinationForm
from core.admin.inlines import DestinationGroupMembershipInline, DestinationMappingInline
from core.choices import ExportState


@admin.register(m.Destination)
class DestinationAdmin(SensitivePostAdminMixin, ConnectorOptionsAdminMixin, GrouparooModelAdmin):
    form = DestinationForm
    fieldsets = [
        (None, {"fields": ["name", "app", "model", "type", "state"]}),
        ("What it tracks", {"fields": ["sync_mode", "collection", "group"]}),
    ]
    exclude = ["options", "secret_options"]
    list_display = [
        "name",
        "type_label",
        "app_link",
        "model",
        "sync_mode",
        "collection",
        "group",
        "mapping_count",
        "pending_exports",
        "failed_exports",
        "state",
    ]
    list_filter = ["model", "app", "sync_mode", "collection", "state", "type"]
    list_select_related = ["app", "model", "group"]
    search_fields = ["name", "type", "app__name"]
    inlines = [DestinationMappingInline, DestinationGroupMembershipInline]
    actions = ["retry_failed_exports"]

    def lookup_connector(self, key: str) -> type:
        return registry.get_destination(key)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "model", "type"] if obj is not None else readonly

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change, **kwargs)
        group = form.base_fields.get("group")
        if obj is not None and group is not None:  # the class is per request: safe to narrow
            group.queryset = group.queryset.filter(model_id=obj.model_id)
        return form

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_mappings=count_of(m.DestinationMapping, "destination"),
                n_pending=count_of(m.Export, "destination", state=ExportState.PENDING),
                n_failed=count_of(m.Export, "destination", state=ExportState.FAILED),
            )
        )

    @admin.display(description="type", ordering="type")
    def type_label(self, obj: m.Destination) -> str:
        return connector_label(registry.get_destination, obj.type)

    @admin.display(description="app", ordering="app__name")
    def app_link(self, obj: m.Destination) -> str:
        return admin_link(obj.app)

    @admin.display(description="mappings", ordering="n_mappings")
    def mapping_count(self, obj: Any) -> int:
        return obj.n_mappings

    @admin.display(description="pending exports", ordering="n_pending")
    def pending_exports(self, obj: Any) -> str:
        return changelist_link(
            m.Export,
            str(obj.n_pending),
            destination__id__exact=obj.pk,
            state__exact=ExportState.PENDING,
        )

    @admin.display(description="failed exports", ordering="n_failed")
    def failed_exports(self, obj: Any) -> str:
        return changelist_link(
            m.Export,
            str(obj.n_failed),
            destination__id__exact=obj.pk,
            state__exact=ExportState.FAILED,
        )

    @admin.action(description="Retry failed exports", permissions=["change"])
    def retry_failed_exports(self, request: HttpRequest, queryset) -> None:
        from core.services.exports import exports_retry_failed

        for destination in queryset:
            with service_errors(request, destination):
                count = exports_retry_failed(destination=destination)
                messages.success(request, f"{destination}: {count} failed export(s) queued again.")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """A changed mapping, group list or tracked collection re-exports what differs."""
        super().save_related(request, form, formsets, change)
        if form.has_changed() or any(fs.has_changed() for fs in formsets):
            from core.services.destinations import destination_resync_enqueue

            with service_errors(request, form.instance):
                run = destination_resync_enqueue(destination=form.instance)
                messages.info(
                    request, format_html("Re-export run {} started.", admin_link(run, f"#{run.pk}"))
                )


@admin.register(m.DestinationMapping)
class DestinationMappingAdmin(GrouparooModelAdmin):
    list_display = ["property", "remote_key", "destination"]
    list_filter = ["destination"]
    list_select_related = ["destination", "property"]
    search_fields = ["remote_key", "property__key", "destination__name"]


@admin.register(m.DestinationGroupMembership)
class DestinationGroupMembershipAdmin(GrouparooModelAdmin):
    list_display = ["group", "remote_key", "destination"]
    list_filter = ["destination"]
    list_select_related = ["destination", "group"]
    search_fields = ["remote_key", "group__name", "destination__name"]
