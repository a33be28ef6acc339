"""Admin for Records, with their property values and group memberships.

Record tables are the big ones: no full result counts, raw-id widgets for record foreign keys,
exact-match search only (it can use indexes; `icontains` over millions of rows cannot).

Values have no admin of their own: their primary key is (record, property, position) (migration
0014), and Django 5.2's admin does not register models with a composite primary key. A record's
values are a read-only table on its page (they come from sources), and the records list finds
records by an exact value or by an invalid value of a given property.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from core import models as m
from core.admin.base import GrouparooModelAdmin
from core.admin.inlines import GroupMemberInline


class InvalidValueFilter(admin.SimpleListFilter):
    """Records holding a value of the chosen property that did not parse (through the small
    core_rp_invalid index: only invalid values are in it)."""

    title = "invalid value of"
    parameter_name = "invalid_value_of"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        properties = m.Property.objects.select_related("model").order_by("model__name", "key")
        return [(str(p.pk), f"{p.model.name}: {p.key}") for p in properties]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"{self.parameter_name} must be a property id")
        invalid = m.RecordProperty.objects.filter(
            record=models.OuterRef("pk"), property_id=int(value), invalid_reason__isnull=False
        )
        return queryset.filter(models.Exists(invalid))


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
    list_filter = ["model", "state", "invalid", InvalidValueFilter]
    list_select_related = ["model"]
    search_fields = ["id__exact", "properties__unique_value__exact", "properties__raw_value__exact"]
    search_help_text = "Exact record id or exact property value (e.g. an email address)."
    show_full_result_count = False
    fields = ["model", "state", "invalid", ("created_at", "updated_at"), "values_table"]
    readonly_fields = ["created_at", "updated_at", "values_table"]
    inlines = [GroupMemberInline]

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

    @admin.display(description="values")
    def values_table(self, obj: Any) -> str:
        """The record's values, read-only (they come from sources), by property and position."""
        if obj is None or obj.pk is None:
            return "-"
        rows = m.RecordProperty.objects.filter(record=obj).select_related("property")
        rows = rows.order_by("property__key", "position")
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    rp.property.key,
                    rp.position,
                    "-" if rp.raw_value is None else rp.raw_value,
                    "-" if rp.value is None else rp.value,
                    rp.state,
                    rp.invalid_reason or "",
                    rp.changed_at or "-",
                )
                for rp in rows
            ),
        )
        if not body:
            return "-"
        return format_html(
            '<table class="record-values"><thead><tr><th>property</th><th>position</th>'
            "<th>raw value</th><th>typed value</th><th>state</th><th>invalid reason</th>"
            "<th>changed at</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )
