"""Sources, their mapping to a unique property, and Schedules (one per source) with filters."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from core.choices import ObjectState
from core.models.apps import App
from core.models.base import ConnectorOptionsMixin, TimeStampedModel
from core.models.filters import FilterBase
from core.models.models import RecordModel


class Source(ConnectorOptionsMixin, TimeStampedModel):
    name = models.CharField(max_length=191, unique=True)
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="sources")
    model = models.ForeignKey(RecordModel, on_delete=models.PROTECT, related_name="sources")
    is_primary = models.BooleanField(
        default=False, help_text="The primary source creates records; secondary sources only enrich them"
    )
    state = models.CharField(max_length=20, choices=ObjectState.choices, default=ObjectState.READY)
    config_id = models.CharField(max_length=191, blank=True, default="")
    locked_by = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["model"], condition=models.Q(is_primary=True), name="core_source_one_primary_per_model"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from connectors import registry

        try:
            connector = registry.get_source(self.type)
        except registry.UnknownConnector as exc:
            raise ValidationError({"type": str(exc)}) from exc
        if self.app_id and connector.app_key != self.app.type:
            raise ValidationError(
                {"type": f"Source type {self.type!r} does not belong to a {self.app.type!r} app."}
            )


class SourceMapping(TimeStampedModel):
    """Source column -> unique property: how a source row finds its Record."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="mappings")
    remote_key = models.CharField(max_length=191, help_text="Source column")
    property = models.ForeignKey("core.Property", on_delete=models.CASCADE, related_name="source_mappings")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "remote_key"], name="core_sourcemapping_unique_column"),
            models.UniqueConstraint(fields=["source", "property"], name="core_sourcemapping_unique_property"),
        ]

    def __str__(self) -> str:
        return f"{self.remote_key} → {self.property.key}"

    def clean(self) -> None:
        if self.source_id and self.property_id and self.property.model_id != self.source.model_id:
            raise ValidationError({"property": "The property belongs to another model than the source."})
        if self.property_id and not self.property.unique:
            raise ValidationError({"property": "A source maps to a unique property (it identifies records)."})


class Schedule(TimeStampedModel):
    source = models.OneToOneField(Source, on_delete=models.CASCADE, related_name="schedule")
    name = models.CharField(max_length=191, blank=True, default="")
    recurring = models.BooleanField(default=False)
    recurring_frequency = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds between runs (when not using cron)"
    )
    cron = models.CharField(max_length=100, blank=True, default="", help_text="Cron expression, e.g. */15 * * * *")
    incremental = models.BooleanField(default=True, help_text="Read only rows past the high watermark")
    confirm_records = models.BooleanField(
        default=False, help_text="On full runs, records missing from the source are deleted"
    )
    refresh_enabled = models.BooleanField(default=True, help_text="The app's refresh query may start this schedule")
    options = models.JSONField(default=dict, blank=True, help_text="e.g. {\"column\": \"updated_at\"}")
    high_watermark = models.JSONField(null=True, blank=True)
    watermark_signature = models.CharField(max_length=64, blank=True, default="")
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=ObjectState.choices, default=ObjectState.READY)
    config_id = models.CharField(max_length=191, blank=True, default="")
    locked_by = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(recurring=False)
                | models.Q(recurring_frequency__gte=60)
                | ~models.Q(cron=""),
                name="core_schedule_recurring_needs_frequency",
            )
        ]

    def __str__(self) -> str:
        return self.name or f"Schedule of {self.source}"

    def clean(self) -> None:
        if self.recurring and not self.cron and not self.recurring_frequency:
            raise ValidationError({"recurring_frequency": "A recurring schedule needs a frequency or a cron expression."})
        if self.recurring_frequency is not None and self.recurring_frequency < 60:
            raise ValidationError({"recurring_frequency": "The frequency is at least 60 seconds."})
        if self.cron:
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                raise ValidationError({"cron": f"{self.cron!r} is not a valid cron expression."})


class ScheduleFilter(FilterBase):
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="filters")

    class Meta(FilterBase.Meta):
        pass
