"""Input and output serializers of the API's actions (operations that are not plain CRUD)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core import models as m
from core.api.serializers import StrictFieldsMixin
from core.api.serializers_records import RecordSerializer


class ScheduleRunInput(StrictFieldsMixin, serializers.Serializer):
    full = serializers.BooleanField(
        default=False, help_text="Read everything, ignoring the high watermark."
    )


class RetryFailedInput(StrictFieldsMixin, serializers.Serializer):
    since = serializers.DateTimeField(required=False, allow_null=True,
                                      help_text="Only exports created at or after this time.")
    until = serializers.DateTimeField(required=False, allow_null=True,
                                      help_text="Only exports created at or before this time.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since > until:
            raise serializers.ValidationError({"until": ["Must not be before since."]})
        return attrs


class RetryFailedOutput(serializers.Serializer):
    retried = serializers.IntegerField(help_text="Failed exports queued again.")


class PreviewInput(StrictFieldsMixin, serializers.Serializer):
    limit = serializers.IntegerField(default=10, min_value=1, max_value=100)


class PreviewOutput(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.DictField())


class ColumnOutput(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    filter_ops = serializers.ListField(child=serializers.CharField())


class TestConnectionOutput(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()


class RecordImportInput(StrictFieldsMixin, serializers.Serializer):
    model = serializers.PrimaryKeyRelatedField(queryset=m.RecordModel.objects.all())
    property = serializers.CharField(max_length=191, help_text="Key of a unique property.")
    value = serializers.CharField(max_length=500, trim_whitespace=False)
    export = serializers.BooleanField(default=True, help_text="Send the record's exports now.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        prop = m.Property.objects.filter(model=attrs["model"], key=attrs["property"]).first()
        if prop is None:
            raise serializers.ValidationError(
                {"property": [f"The model has no property {attrs['property']!r}."]}
            )
        if not prop.unique:
            raise serializers.ValidationError(
                {"property": [f"{prop.key!r} is not a unique property: it cannot identify a record."]}
            )
        return attrs


class RecordExportOutput(serializers.Serializer):
    record = serializers.IntegerField()
    exports = serializers.DictField(
        child=serializers.CharField(),
        help_text="Destination id -> state of the record's newest export there.",
    )


class RecordImportOutput(RecordExportOutput):
    data = RecordSerializer(help_text="The record as it is now.")


class StatusOutput(serializers.Serializer):
    models = serializers.ListField(child=serializers.DictField())
    groups = serializers.ListField(child=serializers.DictField())
    destinations = serializers.ListField(child=serializers.DictField())
    active_runs = serializers.ListField(child=serializers.DictField())


class MessageOutput(serializers.Serializer):
    message = serializers.CharField()
