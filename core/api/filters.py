"""django-filter FilterSets of the list endpoints.

Every list of timestamped rows filters by `created_after` / `created_before` (and
`updated_after` / `updated_before`), ISO 8601, inclusive. Foreign keys filter by id (`model`,
`source`, `destination`, `group`, `run`, `record`...), choices by value (`state`...).

Records also filter by a property value: `?property=email&value=a@b.c` keeps records having that
exact value, compared on the property's typed column (so `?property=ltv&value=100` matches
100.0) or, for a unique property, its canonical identifier. With `model` the property key is
looked up in that model; without, in every model that has the key. The test is one EXISTS
subquery per matching property, on the (property, value) indexes.
"""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from rest_framework import serializers

from core import models as m
from core import values
from core.choices import (
    VALUE_KIND_BY_TYPE,
    DestinationCollection,
    ErrorLevel,
    ExportState,
    GroupMatchType,
    ObjectState,
    PropertyType,
    RecordModelType,
    RecordState,
    RunCreator,
    RunPhase,
    RunState,
    SettingType,
    SyncMode,
    ValueKind,
)


class CreatedRangeFilterSet(df.FilterSet):
    created_after = df.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = df.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")


class TimeRangeFilterSet(CreatedRangeFilterSet):
    updated_after = df.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    updated_before = df.IsoDateTimeFilter(field_name="updated_at", lookup_expr="lte")


class RecordModelFilter(TimeRangeFilterSet):
    type = df.ChoiceFilter(choices=RecordModelType.choices)
    name = df.CharFilter()

    class Meta:
        model = m.RecordModel
        fields = ["type", "name"]


class AppFilter(TimeRangeFilterSet):
    state = df.ChoiceFilter(choices=ObjectState.choices)
    type = df.CharFilter()
    name = df.CharFilter()

    class Meta:
        model = m.App
        fields = ["state", "type", "name"]


class AppRefreshQueryFilter(TimeRangeFilterSet):
    state = df.ChoiceFilter(choices=ObjectState.choices)

    class Meta:
        model = m.AppRefreshQuery
        fields = ["app", "state"]


class SourceFilter(TimeRangeFilterSet):
    state = df.ChoiceFilter(choices=ObjectState.choices)
    type = df.CharFilter()

    class Meta:
        model = m.Source
        fields = ["app", "model", "state", "type", "is_primary"]


class PropertyFilterSet(TimeRangeFilterSet):
    state = df.ChoiceFilter(choices=ObjectState.choices)
    type = df.ChoiceFilter(choices=PropertyType.choices)
    key = df.CharFilter()

    class Meta:
        model = m.Property
        fields = ["model", "source", "state", "type", "key", "unique", "is_array", "is_primary_key"]


class ScheduleFilterSet(TimeRangeFilterSet):
    state = df.ChoiceFilter(choices=ObjectState.choices)
    model = df.NumberFilter(field_name="source__model")

    class Meta:
        model = m.Schedule
        fields = ["source", "model", "state", "recurring", "incremental"]


class GroupFilter(TimeRangeFilterSet):
    state = df.ChoiceFilter(choices=ObjectState.choices)
    match_type = df.ChoiceFilter(choices=GroupMatchType.choices)
    name = df.CharFilter()

    class Meta:
        model = m.Group
        fields = ["model", "state", "match_type", "name"]


class GroupMemberFilter(df.FilterSet):
    current = df.BooleanFilter(field_name="left_at", lookup_expr="isnull",
                               label="Only current members (true) or only former ones (false)")

    class Meta:
        model = m.GroupMember
        fields = ["current", "record"]


class DestinationFilter(TimeRangeFilterSet):
    state = df.ChoiceFilter(choices=ObjectState.choices)
    sync_mode = df.ChoiceFilter(choices=SyncMode.choices)
    collection = df.ChoiceFilter(choices=DestinationCollection.choices)
    type = df.CharFilter()

    class Meta:
        model = m.Destination
        fields = ["app", "model", "group", "state", "sync_mode", "collection", "type"]


def _typed_match(prop: m.Property, raw: str) -> Q | None:
    """Q on RecordProperty for `prop` holding `raw`, or None when raw does not parse."""
    try:
        value = values.coerce(prop.type, raw)
    except ValueError:
        return None
    if value is None:
        return None
    if prop.unique:
        return Q(property_id=prop.pk, unique_value=values.canonical(prop.type, value))
    column = {
        ValueKind.TEXT: "value_text",
        ValueKind.NUMBER: "value_number",
        ValueKind.DATETIME: "value_datetime",
        ValueKind.BOOLEAN: "value_boolean",
    }[VALUE_KIND_BY_TYPE[prop.type]]
    return Q(property_id=prop.pk, **{column: value})


class RecordFilter(TimeRangeFilterSet):
    state = df.ChoiceFilter(choices=RecordState.choices)
    group = df.NumberFilter(method="filter_group", label="Current member of this group (id)")
    property = df.CharFilter(method="filter_noop", label="Property key, with `value`")
    value = df.CharFilter(method="filter_noop", label="Exact value of `property`")

    class Meta:
        model = m.Record
        fields = ["model", "state", "invalid", "group", "property", "value"]

    def filter_noop(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset  # property/value are applied together in filter_queryset

    def filter_group(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        members = m.GroupMember.objects.filter(record=OuterRef("pk"), group_id=value, left_at__isnull=True)
        return queryset.filter(Exists(members))

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        key = self.form.cleaned_data.get("property")
        raw = self.form.cleaned_data.get("value")
        if not key and raw in (None, ""):
            return queryset
        if not key or raw is None or ("value" not in self.data):
            raise serializers.ValidationError(
                {"property" if not key else "value": ["Filter by property needs both `property` and `value`."]}
            )
        props = m.Property.objects.filter(key=key)
        model = self.form.cleaned_data.get("model")
        if model is not None:
            props = props.filter(model=model)
        matches = [q for q in (_typed_match(prop, raw) for prop in props) if q is not None]
        if not matches:
            return queryset.none()  # no such property, or the value cannot be one of its values
        condition = matches[0]
        for match in matches[1:]:
            condition |= match
        rows = m.RecordProperty.objects.filter(condition, record=OuterRef("pk"))
        return queryset.filter(Exists(rows))


class RunFilter(TimeRangeFilterSet):
    state = df.ChoiceFilter(choices=RunState.choices)
    phase = df.ChoiceFilter(choices=RunPhase.choices)
    creator_type = df.ChoiceFilter(choices=RunCreator.choices)
    active = df.BooleanFilter(method="filter_active", label="Pending or running (true) or finished (false)")
    has_failed_exports = df.BooleanFilter(
        method="filter_has_failed_exports", label="Some export failed (true) or none did (false)"
    )

    class Meta:
        model = m.Run
        fields = ["state", "phase", "creator_type", "source", "schedule", "group", "property",
                  "destination", "active", "has_failed_exports"]

    def filter_has_failed_exports(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        return queryset.filter(exports_failed__gt=0) if value else queryset.filter(exports_failed=0)

    def filter_active(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        active = Q(state__in=[RunState.PENDING, RunState.RUNNING])
        return queryset.filter(active if value else ~active)


def imports_of_record(queryset: QuerySet, record_id: int) -> QuerySet:
    """Imports whose record_ids JSON list holds record_id (SQLite has no JSON containment)."""
    if connection.vendor == "sqlite":
        return queryset.filter(pk__in=RawSQL(
            "SELECT i.id FROM core_import i, json_each(i.record_ids) j WHERE j.value = %s",
            [record_id],
        ))
    return queryset.filter(record_ids__contains=[record_id])


class ImportFilter(CreatedRangeFilterSet):
    record = df.NumberFilter(method="filter_record", label="Imports that read this record (id)")

    class Meta:
        model = m.Import
        fields = ["run", "source", "record"]

    def filter_record(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        try:
            record_id = int(value)
        except (TypeError, ValueError, OverflowError):
            return queryset.none()
        if abs(record_id) >= 2**63:
            return queryset.none()
        return imports_of_record(queryset, record_id)


class ExportFilter(TimeRangeFilterSet):
    state = df.ChoiceFilter(choices=ExportState.choices)
    error_level = df.ChoiceFilter(choices=ErrorLevel.choices)

    class Meta:
        model = m.Export
        fields = ["destination", "record", "run", "state", "error_level", "to_delete"]


class ApiKeyFilter(TimeRangeFilterSet):
    active = df.BooleanFilter(method="filter_active", label="Neither revoked nor expired")

    class Meta:
        model = m.ApiKey
        fields = ["active", "permission_all_read", "permission_all_write"]

    def filter_active(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        from django.utils import timezone

        active = Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        return queryset.filter(active if value else ~active)


class SettingFilter(TimeRangeFilterSet):
    type = df.ChoiceFilter(choices=SettingType.choices)

    class Meta:
        model = m.Setting
        fields = ["plugin", "key", "type"]

