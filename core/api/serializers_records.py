"""Serializers of Records (with their properties and groups), Groups (with rules and members)
and Destinations (with their mapping and group memberships)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import models as m
from core import values
from core.api.serializers import (
    CONFIG_READ_ONLY,
    ChildSerializer,
    CleanModelSerializer,
    ConnectorOptionsSerializer,
    OptionsField,
    SecretOptionsField,
    check_distinct,
    check_same_model,
    prefixed,
    replace_children,
)
from core.choices import ObjectState

# --- records --------------------------------------------------------------------------------


def _value(rp: m.RecordProperty) -> Any:
    return values.export_value(rp.property.type, rp.value)


@extend_schema_field(OpenApiTypes.OBJECT)
class RecordPropertiesField(serializers.Field):
    """{property key: {type, value (a list for array properties), raw_value, state,
    invalid_reason, changed_at, confirmed_at}} from the record's prefetched properties."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def get_attribute(self, instance: m.Record) -> m.Record:
        return instance

    def to_representation(self, record: m.Record) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for rp in record.properties.all():  # prefetched, ordered by property key and position
            prop = rp.property
            changed = rp.changed_at.isoformat() if rp.changed_at else None
            confirmed = rp.confirmed_at.isoformat() if rp.confirmed_at else None
            entry = out.get(prop.key)
            if entry is None:
                entry = out[prop.key] = {
                    "type": prop.type,
                    "value": [] if prop.is_array else None,
                    "raw_value": [] if prop.is_array else None,
                    "state": rp.state,
                    "invalid_reason": rp.invalid_reason,
                    "changed_at": changed,
                    "confirmed_at": confirmed,
                }
            if prop.is_array:
                entry["value"].append(_value(rp))
                entry["raw_value"].append(rp.raw_value)
                entry["invalid_reason"] = entry["invalid_reason"] or rp.invalid_reason
            else:
                entry["value"] = _value(rp)
                entry["raw_value"] = rp.raw_value
        return out


class RecordGroupSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="group.id", read_only=True)
    name = serializers.CharField(source="group.name", read_only=True)

    class Meta:
        model = m.GroupMember
        fields = ["id", "name", "joined_at"]
        read_only_fields = fields


class RecordSerializer(serializers.ModelSerializer):
    """A record with its property values and the groups it is currently in. Records are written
    by sources (see the `import` action), so every field here is read-only."""

    properties = RecordPropertiesField()
    groups = RecordGroupSerializer(source="current_memberships", many=True, read_only=True)

    class Meta:
        model = m.Record
        fields = ["id", "model", "state", "invalid", "properties", "groups", "created_at",
                  "updated_at"]
        read_only_fields = fields


class GroupMemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.GroupMember
        fields = ["id", "group", "record", "joined_at", "left_at"]
        read_only_fields = fields


# --- groups ---------------------------------------------------------------------------------


class GroupRuleSerializer(ChildSerializer):
    class Meta:
        model = m.GroupRule
        fields = ["property", "op", "match", "relative_match_number", "relative_match_unit", "position"]


class GroupSerializer(CleanModelSerializer):
    """A group and its rules. `member_count` and `calculated_at` are the last recompute's."""

    create_only_fields = ("model",)
    rules = GroupRuleSerializer(many=True, required=False)

    class Meta:
        model = m.Group
        fields = ["id", "model", "name", "match_type", "state", "rules", "member_count",
                  "calculated_at", "next_calculate_at", "config_id", "locked_by", "created_at",
                  "updated_at"]
        read_only_fields = [*CONFIG_READ_ONLY, "member_count", "calculated_at", "next_calculate_at"]

    def validate_state(self, value: str) -> str:
        # "deleted" would freeze the group's memberships while it still exists: a group is
        # deleted with DELETE.
        if value == ObjectState.DELETED and getattr(self.instance, "state", None) != value:
            raise serializers.ValidationError(
                'A group is deleted with DELETE; its state may be "draft" or "ready".'
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        rows = attrs.get("rules")
        if rows is not None:
            model = attrs.get("model", getattr(self.instance, "model", None))
            errors = check_same_model(rows, "property", getattr(model, "pk", None),
                                      "Property “{value}” belongs to another model than the group.")
            if errors:
                raise serializers.ValidationError(prefixed("rules", errors))
        return attrs

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> m.Group:
        rows = validated_data.pop("rules", None)
        group = super().create(validated_data)
        replace_children(parent=group, related_name="rules", rows=rows)
        self.changed = True
        return group

    @transaction.atomic
    def update(self, instance: m.Group, validated_data: dict[str, Any]) -> m.Group:
        rows = validated_data.pop("rules", None)
        changed = bool(self.changed_fields(validated_data))
        group = super().update(instance, validated_data)
        self.changed = replace_children(parent=group, related_name="rules", rows=rows) or changed
        return group


# --- destinations ---------------------------------------------------------------------------


class DestinationMappingSerializer(ChildSerializer):
    class Meta:
        model = m.DestinationMapping
        fields = ["property", "remote_key"]


class DestinationGroupMembershipSerializer(ChildSerializer):
    class Meta:
        model = m.DestinationGroupMembership
        fields = ["group", "remote_key"]


class DestinationSerializer(ConnectorOptionsSerializer):
    """A destination, its mapping (property -> destination field) and its group memberships
    (group -> remote list or tag name)."""

    connector_kind = "destination"
    create_only_fields = ("type", "model")
    options = OptionsField(required=False)
    secret_options = SecretOptionsField()
    mappings = DestinationMappingSerializer(many=True, required=False)
    group_memberships = DestinationGroupMembershipSerializer(many=True, required=False)

    class Meta:
        model = m.Destination
        fields = ["id", "name", "app", "model", "type", "options", "secret_options", "sync_mode",
                  "collection", "group", "state", "mappings", "group_memberships", "config_id",
                  "locked_by", "created_at", "updated_at"]
        read_only_fields = CONFIG_READ_ONLY

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        model = attrs.get("model", getattr(self.instance, "model", None))
        model_id = getattr(model, "pk", None)
        errors: dict[str, list[str]] = {}
        rows = attrs.get("mappings")
        if rows is not None:
            errors.update(prefixed("mappings", {
                **check_distinct(rows, "remote_key", "Destination field “{value}” is mapped twice."),
                **check_same_model(rows, "property", model_id,
                                   "Property “{value}” belongs to another model than the destination."),
            }))
        rows = attrs.get("group_memberships")
        if rows is not None:
            errors.update(prefixed("group_memberships", {
                **check_distinct(rows, "group", "Group “{value}” is listed twice."),
                **check_distinct(rows, "remote_key", "The remote name “{value}” is used for two groups."),
                **check_same_model(rows, "group", model_id,
                                   "Group “{value}” belongs to another model than the destination."),
            }))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def _save_children(self, destination: m.Destination, mappings: Any, memberships: Any) -> bool:
        a = replace_children(parent=destination, related_name="mappings", rows=mappings)
        b = replace_children(parent=destination, related_name="group_memberships", rows=memberships)
        return a or b

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> m.Destination:
        mappings = validated_data.pop("mappings", None)
        memberships = validated_data.pop("group_memberships", None)
        destination = super().create(validated_data)
        self._save_children(destination, mappings, memberships)
        self.changed = True
        return destination

    @transaction.atomic
    def update(self, instance: m.Destination, validated_data: dict[str, Any]) -> m.Destination:
        mappings = validated_data.pop("mappings", None)
        memberships = validated_data.pop("group_memberships", None)
        changed = bool(self.changed_fields(validated_data))
        destination = super().update(instance, validated_data)
        self.changed = self._save_children(destination, mappings, memberships) or changed
        return destination
