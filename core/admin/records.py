"""Admin for Records (with their properties and group memberships) and Record Properties.

Record tables are the big ones: no full result counts, raw-id widgets for record foreign keys,
exact-match search only (it can use indexes; `icontains` over millions of rows cannot).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from core import models as m
from core.admin.base import GrouparooModelAdmin, admin_link
from core.admin.inlines import GroupMemberInline, RecordPropertyInline


@admin.register(m.Record)
class RecordAdmin(GrouparooModelAdmin):
    list_display = [
        "id",
        "model",
        "primary_key_value",
        "state",
        "invalid",
        "created_at",
        "updated_at",
    ]
    list_filter = ["model", "state", "invalid"]
    list_select_related = ["model"]
    search_fields = ["id__exact", "properties__unique_value__exact", "properties__raw_value__exact"]
    search_help_text = "Exact record id or exact property value (e.g. an email address)."
    show_full_result_count = False
    fields = ["model", "state", "invalid", ("created_at", "updated_at")]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [RecordPropertyInline, GroupMemberInline]

    def get_queryset(self, request: HttpRequest):
        primary_key = (
            m.RecordProperty.objects.filter(
                record=models.OuterRef("pk"), property__is_primary_key=True
            )
            .order_by("position")
            .values("raw_value")[:1]
        )
        return super().get_queryset(request).annotate(pk_value=models.Subquery(primary_key))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "model"] if obj is not None else readonly

    @admin.display(description="primary key", ordering="pk_value")
    def primary_key_value(self, obj: Any) -> str:
        return obj.pk_value if obj.pk_value is not None else "-"


@admin.register(m.RecordProperty)
class RecordPropertyAdmin(GrouparooModelAdmin):
    list_display = [
        "id",
        "record_link",
        "property",
        "position",
        "raw_value",
        "state",
        "invalid_reason",
        "changed_at",
    ]
    list_filter = ["state", "property__model", "property"]
    list_select_related = ["property", "record__model"]
    search_fields = ["raw_value__exact", "record__id__exact"]
    search_help_text = "Exact raw value or exact record id."
    raw_id_fields = ["record"]
    show_full_result_count = False

    @admin.display(description="record", ordering="record_id")
    def record_link(self, obj: m.RecordProperty) -> str:
        return admin_link(obj.record)
