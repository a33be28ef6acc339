"""Admin for Properties (options declared by their source's connector) and their filters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from connectors import registry
from core import models as m
from core.admin.base import GrouparooModelAdmin, admin_link, count_of, service_errors
from core.admin.forms import ConnectorOptionsAdminMixin, PropertyForm
from core.admin.inlines import PropertyFilterInline
from core.admin.usage import InUseAdminMixin


@admin.register(m.Property)
class PropertyAdmin(InUseAdminMixin, ConnectorOptionsAdminMixin, GrouparooModelAdmin):
    form = PropertyForm
    options_attr = "property_options"
    fieldsets = [
        (None, {"fields": ["model", "source", "key", "type", "state"]}),
        ("Identity", {"fields": ["unique", "is_primary_key", "is_array"]}),
    ]
    exclude = ["options"]
    list_display = [
        "key",
        "model",
        "source_link",
        "type",
        "unique",
        "is_primary_key",
        "is_array",
        "filter_count",
        "state",
    ]
    list_filter = ["model", "type", "unique", "is_primary_key", "state", "source"]
    list_select_related = ["model", "source"]
    search_fields = ["key", "source__name"]
    inlines = [PropertyFilterInline]

    def connector_key(self, request: HttpRequest, obj: Any) -> str:
        """A property's options come from its source's connector: the POSTed, ?source= or
        stored source decides."""
        params = request.POST if request.method == "POST" else request.GET
        source_id = params.get("source") or (obj.source_id if obj is not None else None)
        if not source_id:
            return ""
        try:
            key = m.Source.objects.filter(pk=source_id).values_list("type", flat=True).first()
        except (ValueError, TypeError, ValidationError):
            return ""
        return key or ""

    def lookup_connector(self, key: str) -> type:
        return registry.get_source(key)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "model"] if obj is not None else readonly

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change, **kwargs)
        source = form.base_fields.get("source")
        if obj is not None and source is not None:  # the class is per request: safe to narrow
            source.queryset = source.queryset.filter(model_id=obj.model_id)
        return form

    def get_queryset(self, request: HttpRequest):
        return (
            super().get_queryset(request).annotate(n_filters=count_of(m.PropertyFilter, "property"))
        )

    @admin.display(description="source", ordering="source__name")
    def source_link(self, obj: m.Property) -> str:
        return admin_link(obj.source)

    @admin.display(description="filters", ordering="n_filters")
    def filter_count(self, obj: Any) -> int:
        return obj.n_filters

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """A new or changed property starts a full run of its source, so every record gets it."""
        super().save_related(request, form, formsets, change)
        if form.has_changed() or any(fs.has_changed() for fs in formsets):
            from core.services.sources import property_changed

            with service_errors(request, form.instance):
                property_changed(prop=form.instance)
                messages.info(
                    request,
                    f"A full run of {form.instance.source} was started to compute {form.instance.key}.",
                )


@admin.register(m.PropertyFilter)
class PropertyFilterAdmin(GrouparooModelAdmin):
    list_display = ["__str__", "property", "key", "op", "match", "position"]
    list_filter = ["op"]
    list_select_related = ["property"]
    search_fields = ["key", "match", "property__key"]
