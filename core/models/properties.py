"""Properties: how a Record Property is pulled from a Source, typed, and whether it identifies."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from core.choices import VALUE_KIND_BY_TYPE, AggregationMethod, ObjectState, PropertyType
from core.models.base import TimeStampedModel
from core.models.filters import FilterBase
from core.models.models import RecordModel
from core.models.sources import Source


class Property(TimeStampedModel):
    model = models.ForeignKey(RecordModel, on_delete=models.CASCADE, related_name="properties")
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="properties")
    key = models.CharField(max_length=191, help_text="Name of the property, unique within its model")
    type = models.CharField(max_length=20, choices=PropertyType.choices, default=PropertyType.STRING)
    unique = models.BooleanField(default=False, help_text="Identifies records (e.g. email, user id)")
    is_array = models.BooleanField(default=False, help_text="Holds several values")
    is_primary_key = models.BooleanField(default=False, help_text="The model's primary key")
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Table sources: column, aggregationMethod, sortColumn. Query sources: query.",
    )
    state = models.CharField(max_length=20, choices=ObjectState.choices, default=ObjectState.READY)
    config_id = models.CharField(max_length=191, blank=True, default="")
    locked_by = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        verbose_name_plural = "properties"
        ordering = ["model", "key"]
        constraints = [
            models.UniqueConstraint(fields=["model", "key"], name="core_property_unique_key_per_model"),
            models.UniqueConstraint(
                fields=["model"], condition=models.Q(is_primary_key=True), name="core_property_one_primary_key_per_model"
            ),
            models.CheckConstraint(
                condition=models.Q(is_primary_key=False) | models.Q(unique=True, is_array=False),
                name="core_property_primary_key_unique_scalar",
            ),
            models.CheckConstraint(
                condition=models.Q(unique=False) | models.Q(is_array=False),
                name="core_property_unique_not_array",
            ),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def value_kind(self) -> str:
        return VALUE_KIND_BY_TYPE[self.type]

    @property
    def aggregation_method(self) -> str:
        return (self.options or {}).get("aggregationMethod", AggregationMethod.EXACT)

    def clean(self) -> None:
        if self.source_id and self.model_id and self.source.model_id != self.model_id:
            raise ValidationError({"source": "The source belongs to another model."})
        if self.is_primary_key and (not self.unique or self.is_array):
            raise ValidationError({"is_primary_key": "The primary key must be unique and not an array."})
        if self.unique and self.is_array:
            raise ValidationError({"is_array": "A unique property cannot be an array."})


class PropertyFilter(FilterBase):
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="filters")

    class Meta(FilterBase.Meta):
        pass
