"""Admin for Models (RecordModel), Apps and App Refresh Queries."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from connectors import registry
from core import models as m
from core.admin.base import (
    GrouparooModelAdmin,
    SensitivePostAdminMixin,
    admin_link,
    count_of,
    service_errors,
)
from core.admin.forms import AppForm, ConnectorOptionsAdminMixin
from core.admin.inlines import AppRefreshQueryInline


def connector_label(lookup, key: str) -> str:
    """The registered connector's label, or the raw key when it is not installed."""
    try:
        return lookup(key).label
    except registry.UnknownConnector:
        return f"{key} (not installed)"


@admin.register(m.RecordModel)
class RecordModelAdmin(GrouparooModelAdmin):
    list_display = [
        "name",
        "type",
        "source_count",
        "property_count",
        "group_count",
        "destination_count",
        "locked_by",
    ]
    list_filter = ["type"]
    search_fields = ["name"]
    readonly_fields = ["config_id", "locked_by", "created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_sources=count_of(m.Source, "model"),
                n_properties=count_of(m.Property, "model"),
                n_groups=count_of(m.Group, "model"),
                n_destinations=count_of(m.Destination, "model"),
            )
        )

    @admin.display(description="sources", ordering="n_sources")
    def source_count(self, obj: Any) -> int:
        return obj.n_sources

    @admin.display(description="properties", ordering="n_properties")
    def property_count(self, obj: Any) -> int:
        return obj.n_properties

    @admin.display(description="groups", ordering="n_groups")
    def group_count(self, obj: Any) -> int:
        return obj.n_groups

    @admin.display(description="destinations", ordering="n_destinations")
    def destination_count(self, obj: Any) -> int:
        return obj.n_destinations


@admin.register(m.App)
class AppAdmin(SensitivePostAdminMixin, ConnectorOptionsAdminMixin, GrouparooModelAdmin):
    form = AppForm
    fieldsets = [(None, {"fields": ["name", "type", "state"]})]
    exclude = ["options", "secret_options"]
    list_display = [
        "name",
        "type_label",
        "state",
        "source_count",
        "destination_count",
        "updated_at",
    ]
    list_filter = ["type", "state"]
    search_fields = ["name", "type"]
    inlines = [AppRefreshQueryInline]
    actions = ["test_connection"]

    def lookup_connector(self, key: str) -> type:
        return registry.get_app(key)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "type"] if obj is not None else readonly

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_sources=count_of(m.Source, "app"), n_destinations=count_of(m.Destination, "app")
            )
        )

    @admin.display(description="type", ordering="type")
    def type_label(self, obj: m.App) -> str:
        return connector_label(registry.get_app, obj.type)

    @admin.display(description="sources", ordering="n_sources")
    def source_count(self, obj: Any) -> int:
        return obj.n_sources

    @admin.display(description="destinations", ordering="n_destinations")
    def destination_count(self, obj: Any) -> int:
        return obj.n_destinations

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request: HttpRequest, queryset) -> None:
        from core.services.apps import app_test_connection

        for app in queryset:
            with service_errors(request, app):
                result = app_test_connection(app=app)
                messages.success(request, f"{app}: {result}")


@admin.register(m.AppRefreshQuery)
class AppRefreshQueryAdmin(GrouparooModelAdmin):
    list_display = [
        "__str__",
        "app_link",
        "recurring_frequency",
        "state",
        "last_checked_at",
        "last_changed_at",
    ]
    list_filter = ["state"]
    list_select_related = ["app"]
    search_fields = ["app__name", "query"]
    readonly_fields = ["value", "last_checked_at", "last_changed_at", "created_at", "updated_at"]

    @admin.display(description="app", ordering="app__name")
    def app_link(self, obj: m.AppRefreshQuery) -> str:
        return admin_link(obj.app)
