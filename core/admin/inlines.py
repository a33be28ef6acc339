"""Inline editors: mappings, filters, group rules, destination group memberships, permissions,
and a record's properties and memberships.

Single-row rules live in the models' `clean()` (inline ModelForms call it). Rules that span rows
live in `CrossRowFormSet.clean()`: a value that must not repeat within the parent, and a related
property or group that must belong to the parent's model (on an add page the parent has no id
yet, so the models' own check cannot run). Each error is attached to the offending row's field.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.db import models
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from core import models as m

logger = logging.getLogger(__name__)


class RemoteChoicesInline:
    """Offers the live columns (or destination fields) as choices for `remote_field`.

    The connector is asked once per request and parent; when it cannot answer (unreachable,
    missing table), the field stays free text and the page still renders. Values already stored
    stay selectable even if the column has gone.
    """

    remote_field: ClassVar[str] = "remote_key"

    def remote_names(self, parent: Any) -> list[str] | None:
        return None

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any):
        formset = super().get_formset(request, obj, **kwargs)
        names = _cached_remote_names(request, self, obj) if obj is not None and obj.pk else None
        if names:
            stored = list(
                self.model.objects.filter(**{formset.fk.name: obj}).values_list(
                    self.remote_field, flat=True
                )
            )
            options = sorted(set(names) | {v for v in stored if v})
            field = formset.form.base_fields[self.remote_field]
            field.widget = forms.Select(choices=[("", "---------"), *((n, n) for n in options)])
            field.help_text = "Columns read from the connector."
        return formset


def _cached_remote_names(
    request: HttpRequest, inline: RemoteChoicesInline, parent: Any
) -> list[str] | None:
    cache = request.__dict__.setdefault("_grouparoo_remote_names", {})
    key = (type(inline).__name__, parent._meta.label, parent.pk)
    if key not in cache:
        try:
            cache[key] = inline.remote_names(parent)
        except Exception:  # unreachable, missing table, bad secret...: a text box, never a 500
            logger.info("no column listing for %s %s", parent._meta.label, parent.pk, exc_info=True)
            cache[key] = None
    return cache[key]


def _source_columns(source: Any) -> list[str]:
    from core.services.sources import source_list_columns

    return [c.name for c in source_list_columns(source=source)]


class CrossRowFormSet(BaseInlineFormSet):
    """An inline formset checking rules across its rows.

    distinct_fields: field -> message (with `{value}`) for values that must not repeat.
    same_model_fields: field -> message for a related object (property, group) that must belong
      to the parent's model.
    """

    distinct_fields: ClassVar[dict[str, str]] = {}
    same_model_fields: ClassVar[dict[str, str]] = {}

    def live_forms(self) -> Iterator[forms.ModelForm]:
        """Forms that will be saved: filled in and not marked for deletion."""
        for form in self.forms:
            if not hasattr(form, "cleaned_data"):
                continue
            if not form.instance.pk and not form.has_changed():
                continue
            if self.can_delete and self._should_delete_form(form):
                continue
            yield form

    def clean(self) -> None:
        seen: dict[str, set[Any]] = {name: set() for name in self.distinct_fields}
        parent_model_id = getattr(self.instance, "model_id", None)
        for form in self.live_forms():
            for name, message in self.distinct_fields.items():
                value = form.cleaned_data.get(name)
                if value in (None, ""):
                    continue
                marker = value.pk if isinstance(value, models.Model) else value
                if marker in seen[name]:
                    form.add_error(name, message.format(value=value))
                else:
                    seen[name].add(marker)
            for name, message in self.same_model_fields.items():
                value = form.cleaned_data.get(name)
                if value is not None and parent_model_id and value.model_id != parent_model_id:
                    form.add_error(name, message.format(value=value))
        # The database's unique constraints, checked across rows (Django's validate_unique).
        super().clean()


class ModelScopedInline(admin.TabularInline):
    """Limits the choices of `scoped_fields` (property, group) to the parent's model.

    On an add page the parent has no model yet: every choice is offered, labelled with its
    model, and `CrossRowFormSet` rejects one of another model once the parent's is known.
    """

    extra = 0
    scoped_fields: ClassVar[tuple[str, ...]] = ()
    scoped_filters: ClassVar[dict[str, Any]] = {}

    def parent_model_id(self, request: HttpRequest, obj: Any) -> int | None:
        return getattr(obj, "model_id", None) if obj is not None else None

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any):
        formset = super().get_formset(request, obj, **kwargs)
        model_id = self.parent_model_id(request, obj)
        # The form class is new on every call, so changing its base fields is request-local.
        for name in self.scoped_fields:
            field = formset.form.base_fields.get(name)
            if field is None:
                continue
            queryset = field.queryset.filter(**self.scoped_filters.get(name, {}))
            if model_id is not None:
                field.queryset = queryset.filter(model_id=model_id)
                field.error_messages["invalid_choice"] = (
                    f"Choose a {name} of the model “{obj.model}”: "
                    f"the chosen one belongs to another model or does not exist."
                )
            else:
                field.queryset = queryset.select_related("model")
                field.label_from_instance = lambda o: f"{o} ({o.model})"
        return formset


# --- sources and schedules ---------------------------------------------------------------


class SourceMappingFormSet(CrossRowFormSet):
    distinct_fields = {
        "remote_key": "Column “{value}” is mapped twice.",
        "property": "Property “{value}” is mapped twice.",
    }
    same_model_fields = {"property": "Property “{value}” belongs to another model than the source."}


class SourceMappingInline(RemoteChoicesInline, ModelScopedInline):
    model = m.SourceMapping
    formset = SourceMappingFormSet
    fields = ["remote_key", "property"]
    scoped_fields = ("property",)
    scoped_filters = {"property": {"unique": True}}
    verbose_name = "mapping (source column → unique property)"
    verbose_name_plural = "mappings (source column → unique property)"

    def remote_names(self, parent: Any) -> list[str] | None:
        return _source_columns(parent)


class ScheduleInline(admin.StackedInline):
    """The source's schedule (one per source); filters are edited on the schedule's page."""

    model = m.Schedule
    extra = 0
    max_num = 1
    fields = [
        "name",
        ("recurring", "recurring_frequency", "cron"),
        ("incremental", "confirm_records", "refresh_enabled"),
        "options",
        ("next_run_at", "last_run_at", "high_watermark"),
    ]
    readonly_fields = ["next_run_at", "last_run_at", "high_watermark"]
    show_change_link = True


class FilterFormSet(CrossRowFormSet):
    pass


class ScheduleFilterInline(RemoteChoicesInline, admin.TabularInline):
    model = m.ScheduleFilter
    remote_field = "key"
    formset = FilterFormSet
    extra = 0
    fields = [
        "key",
        "op",
        "match",
        "relative_match_number",
        "relative_match_unit",
        "relative_match_direction",
        "position",
    ]

    def remote_names(self, parent: Any) -> list[str] | None:
        return _source_columns(parent.source)


class PropertyFilterInline(ScheduleFilterInline):
    model = m.PropertyFilter

    def remote_names(self, parent: Any) -> list[str] | None:
        return _source_columns(parent.source)


# --- groups --------------------------------------------------------------------------------


class GroupRuleFormSet(CrossRowFormSet):
    same_model_fields = {"property": "Property “{value}” belongs to another model than the group."}


class GroupRuleInline(ModelScopedInline):
    model = m.GroupRule
    formset = GroupRuleFormSet
    fields = ["property", "op", "match", "relative_match_number", "relative_match_unit", "position"]
    scoped_fields = ("property",)


# --- destinations --------------------------------------------------------------------------


class DestinationMappingFormSet(CrossRowFormSet):
    distinct_fields = {"remote_key": "Destination field “{value}” is mapped twice."}
    same_model_fields = {
        "property": "Property “{value}” belongs to another model than the destination."
    }


class DestinationMappingInline(RemoteChoicesInline, ModelScopedInline):
    model = m.DestinationMapping
    formset = DestinationMappingFormSet
    fields = ["property", "remote_key"]
    scoped_fields = ("property",)
    verbose_name = "mapping (property → destination field)"
    verbose_name_plural = "mappings (property → destination field)"

    def remote_names(self, parent: Any) -> list[str] | None:
        from core.services.destinations import destination_mapping_options

        options = destination_mapping_options(destination=parent)
        if options.allow_any and not options.known:
            return None  # free-form fields (e.g. a webhook): keep the text box
        return [name for name, _type in (*options.required, *options.known)]


class DestinationGroupMembershipFormSet(CrossRowFormSet):
    distinct_fields = {
        "group": "Group “{value}” is listed twice.",
        "remote_key": "The remote name “{value}” is used for two groups.",
    }
    same_model_fields = {"group": "Group “{value}” belongs to another model than the destination."}


class DestinationGroupMembershipInline(ModelScopedInline):
    model = m.DestinationGroupMembership
    formset = DestinationGroupMembershipFormSet
    fields = ["group", "remote_key"]
    scoped_fields = ("group",)
    verbose_name = "group membership (group → remote list or tag)"
    verbose_name_plural = "group memberships (group → remote list or tag)"


# --- records -------------------------------------------------------------------------------


class GroupMemberInline(admin.TabularInline):
    """A record's group memberships, read-only: group recomputes keep them, from the rules."""

    model = m.GroupMember
    extra = 0
    fields = ["group", "joined_at", "left_at"]
    readonly_fields = fields
    verbose_name = "group membership"
    verbose_name_plural = "group memberships (kept by group recomputes)"

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("group")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- apps and access -----------------------------------------------------------------------


class AppRefreshQueryInline(admin.StackedInline):
    model = m.AppRefreshQuery
    extra = 0
    max_num = 1
    fields = [
        "query",
        "recurring_frequency",
        "state",
        ("value", "last_checked_at", "last_changed_at"),
    ]
    readonly_fields = ["value", "last_checked_at", "last_changed_at"]


class ApiKeyPermissionFormSet(CrossRowFormSet):
    distinct_fields = {"topic": "Topic “{value}” is listed twice."}


class ApiKeyPermissionInline(admin.TabularInline):
    model = m.ApiKeyPermission
    formset = ApiKeyPermissionFormSet
    extra = 0
    fields = ["topic", "read", "write"]
