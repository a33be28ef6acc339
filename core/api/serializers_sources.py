"""Serializers of Sources (with their mapping), Properties (with filters) and Schedules (with
filters). See core.api.serializers for the conventions (options, secrets, nested rows)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import serializers

from connectors import registry
from connectors.base import validate_declared
from core import models as m
from core.api.serializers import (
    CONFIG_READ_ONLY,
    ChildSerializer,
    CleanModelSerializer,
    ConnectorOptionsSerializer,
    OptionsField,
    check_distinct,
    check_same_model,
    prefixed,
    replace_children,
)

FILTER_FIELDS = ["key", "op", "match", "relative_match_number", "relative_match_unit",
                 "relative_match_direction", "position"]


class SourceMappingSerializer(ChildSerializer):
    class Meta:
        model = m.SourceMapping
        fields = ["remote_key", "property"]


class SourceSerializer(ConnectorOptionsSerializer):
    """A source and its mapping (source column -> the unique property that finds the record)."""

    connector_kind = "source"
    has_secrets = False
    create_only_fields = ("type", "model")
    options = OptionsField(required=False)
    mappings = SourceMappingSerializer(many=True, required=False)
    schedule = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = m.Source
        fields = ["id", "name", "app", "model", "type", "options", "is_primary", "state", "mappings",
                  "schedule", "config_id", "locked_by", "created_at", "updated_at"]
        read_only_fields = CONFIG_READ_ONLY

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        rows = attrs.get("mappings")
        if rows is not None:
            model = attrs.get("model", getattr(self.instance, "model", None))
            errors = {
                **check_distinct(rows, "remote_key", "Column “{value}” is mapped twice."),
                **check_distinct(rows, "property", "Property “{value}” is mapped twice."),
                **check_same_model(rows, "property", getattr(model, "pk", None),
                                   "Property “{value}” belongs to another model than the source."),
            }
            if errors:
                raise serializers.ValidationError(prefixed("mappings", errors))
        return attrs

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> m.Source:
        rows = validated_data.pop("mappings", None)
        source = super().create(validated_data)
        replace_children(parent=source, related_name="mappings", rows=rows)
        return source

    @transaction.atomic
    def update(self, instance: m.Source, validated_data: dict[str, Any]) -> m.Source:
        rows = validated_data.pop("mappings", None)
        source = super().update(instance, validated_data)
        replace_children(parent=source, related_name="mappings", rows=rows)
        return source


class PropertyFilterSerializer(ChildSerializer):
    class Meta:
        model = m.PropertyFilter
        fields = FILTER_FIELDS


class PropertySerializer(CleanModelSerializer):
    """A property: its options are declared by its source's connector (`property_options`).
    `model` is its source's model."""

    options = OptionsField(required=False)
    filters = PropertyFilterSerializer(many=True, required=False)

    class Meta:
        model = m.Property
        fields = ["id", "model", "source", "key", "type", "unique", "is_array", "is_primary_key",
                  "options", "state", "filters", "config_id", "locked_by", "created_at", "updated_at"]
        read_only_fields = [*CONFIG_READ_ONLY, "model"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        source = attrs.get("source", getattr(self.instance, "source", None))
        if source is not None:
            if self.instance is None:
                attrs["model"] = source.model
            elif source.model_id != self.instance.model_id:
                raise serializers.ValidationError({"source": ["The source belongs to another model."]})
            if "options" in attrs or "source" in attrs or self.instance is None:
                self.check_options(source, attrs.get("options", getattr(self.instance, "options", {})))
        return super().validate(attrs)

    def check_options(self, source: m.Source, options: dict[str, Any]) -> None:
        try:
            connector = registry.get_source(source.type)
        except registry.UnknownConnector:
            return  # not installed: nothing to check against (the source reports it)
        validate = getattr(connector, "validate_property_options", None)
        if callable(validate):
            problems = validate(options)
        else:
            problems = validate_declared(tuple(connector.property_options), options)
        if problems:
            raise serializers.ValidationError({f"options.{k}": [v] for k, v in problems.items()})

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> m.Property:
        rows = validated_data.pop("filters", None)
        prop = super().create(validated_data)
        replace_children(parent=prop, related_name="filters", rows=rows)
        self.changed = True
        return prop

    @transaction.atomic
    def update(self, instance: m.Property, validated_data: dict[str, Any]) -> m.Property:
        rows = validated_data.pop("filters", None)
        changed = bool(self.changed_fields(validated_data))
        prop = super().update(instance, validated_data)
        self.changed = replace_children(parent=prop, related_name="filters", rows=rows) or changed
        return prop


class ScheduleFilterSerializer(ChildSerializer):
    class Meta:
        model = m.ScheduleFilter
        fields = FILTER_FIELDS


class ScheduleSerializer(CleanModelSerializer):
    """A source's schedule (one per source) with its filters. The watermark and run times are
    the engine's."""

    create_only_fields = ("source",)
    filters = ScheduleFilterSerializer(many=True, required=False)

    class Meta:
        model = m.Schedule
        fields = ["id", "source", "name", "recurring", "recurring_frequency", "cron", "incremental",
                  "confirm_records", "refresh_enabled", "options", "state", "filters",
                  "high_watermark", "next_run_at", "last_run_at", "config_id", "locked_by",
                  "created_at", "updated_at"]
        read_only_fields = [*CONFIG_READ_ONLY, "high_watermark", "next_run_at", "last_run_at"]

    def validate_options(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object.")
        return value

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> m.Schedule:
        rows = validated_data.pop("filters", None)
        schedule = super().create(validated_data)
        replace_children(parent=schedule, related_name="filters", rows=rows)
        return schedule

    @transaction.atomic
    def update(self, instance: m.Schedule, validated_data: dict[str, Any]) -> m.Schedule:
        rows = validated_data.pop("filters", None)
        schedule = super().update(instance, validated_data)
        replace_children(parent=schedule, related_name="filters", rows=rows)
        return schedule
