"""Admin for Records, with their property values and group memberships.

Record tables are the big ones: no full result counts, raw-id widgets for record foreign keys,
exact-match search only (it can use indexes; `icontains` over millions of rows cannot).

Values have no admin of their own: their primary key is (record, property, position) (migration
0014), and Django 5.2's admin does not register models with a composite primary key. A record's
values are a read-only table on its page (they come from sources), and the records list finds
records by an exact value or by an invalid value of a given property.

A record is added as in Grouparoo's UI, by a unique property value, never empty: the add page
imports the record now from the model's sources (`record_import_now`, as `POST
/api/v1/records/import/` does) and opens it; a value no source holds adds nothing. Group
memberships are read-only: recomputes keep them from the groups' rules.
"""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from connectors import registry
from connectors.base import ConnectorError
from core import models as m
from core.admin.base import GrouparooModelAdmin
from core.admin.inlines import GroupMemberInline
from core.crypto import SecretUnavailable

logger = logging.getLogger(__name__)


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


class RecordAddForm(forms.Form):
    """Which record to add: a unique property (of its model) and the value the sources hold."""

    property = forms.ModelChoiceField(
        queryset=m.Property.objects.filter(unique=True)
        .select_related("model")
        .order_by("model__name", "key"),
        help_text="A unique property (an identifier such as an email address or a user id).",
    )
    value = forms.CharField(
        max_length=500, strip=False, help_text="Its value, exactly as the source holds it."
    )
    export = forms.BooleanField(required=False, initial=True, label="Send the record's exports now")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["property"].label_from_instance = lambda p: f"{p.model}: {p.key}"

    def clean_value(self) -> str:
        value = self.cleaned_data["value"]
        if not value.strip():
            raise forms.ValidationError("Enter the value that identifies the record.")
        return value


def import_record(form: RecordAddForm) -> m.Record | None:
    """Import the form's record now; None, with the reason as a form error, when it cannot."""
    from core.engine.single import RecordNotFound, record_import_now

    prop = form.cleaned_data["property"]
    try:
        return record_import_now(
            model=prop.model,
            property_key=prop.key,
            value=form.cleaned_data["value"],
            export=form.cleaned_data["export"],
        )
    except RecordNotFound as exc:
        form.add_error("value", f"{exc} Nothing was added.")
    except (ValueError, m.Property.DoesNotExist) as exc:
        form.add_error("property", str(exc))
    except ConnectorError as exc:
        form.add_error(None, exc.message)
    except (SecretUnavailable, registry.UnknownConnector) as exc:
        form.add_error(None, str(exc))
    except Exception as exc:  # a form error, never a stack trace (its text could hold secrets)
        logger.exception("adding a record by %s failed", prop.key)
        form.add_error(None, f"unexpected {type(exc).__name__}; see the server log.")
    return None


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

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        """Add a record by a unique value: it is imported now from the model's sources."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RecordAddForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            record = import_record(form)
            if record is not None:
                messages.success(request, format_html("{} imported from its sources.", record))
                return HttpResponseRedirect(reverse("admin:core_record_change", args=[record.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Add a record by a unique value",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/core/record/add.html", context)

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
