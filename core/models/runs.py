"""Runs (a series of imports and exports), Imports (what a run read) and Exports (what was sent)."""
from __future__ import annotations

import builtins

from django.db import models

from core.choices import ACTIVE_RUN_STATES, ErrorLevel, ExportState, RunCreator, RunPhase, RunState
from core.fields import SnapshotJSONField
from core.models.base import TimeStampedModel


class Run(TimeStampedModel):
    """A series of imports and exports. `source` is what it reads (none for a group recompute);
    the creator (schedule, group, property, destination or a person) is kept for the history."""

    creator_type = models.CharField(max_length=20, choices=RunCreator.choices)
    source = models.ForeignKey("core.Source", on_delete=models.CASCADE, null=True, blank=True, related_name="runs")
    schedule = models.ForeignKey("core.Schedule", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    group = models.ForeignKey("core.Group", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    property = models.ForeignKey("core.Property", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    destination = models.ForeignKey(
        "core.Destination", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.PENDING)
    phase = models.CharField(max_length=12, choices=RunPhase.choices, default=RunPhase.IMPORTING)
    full = models.BooleanField(default=False, help_text="Read everything, ignoring the high watermark")
    export = models.BooleanField(default=True, help_text="Build and send exports")
    # Live counters.
    rows_read = models.PositiveBigIntegerField(default=0)
    records_created = models.PositiveBigIntegerField(default=0)
    records_updated = models.PositiveBigIntegerField(default=0)
    records_invalid = models.PositiveBigIntegerField(default=0)
    records_skipped = models.PositiveBigIntegerField(default=0)
    records_merged = models.PositiveBigIntegerField(default=0)
    records_deleted = models.PositiveBigIntegerField(default=0)
    groups_changed = models.PositiveBigIntegerField(default=0, help_text="Memberships joined or left")
    exports_created = models.PositiveBigIntegerField(default=0)
    exports_sent = models.PositiveBigIntegerField(default=0)
    exports_failed = models.PositiveBigIntegerField(default=0)
    percent_complete = models.PositiveSmallIntegerField(default=0)
    # Resume state. `starting_watermark` is what this run reads from (>=); `high_watermark` the
    # source's largest watermark when the run started, stored on the schedule when it completes;
    # `cursor` the last key of the last committed batch, so a resumed run continues after it.
    starting_watermark = models.JSONField(null=True, blank=True)
    high_watermark = models.JSONField(null=True, blank=True)
    cursor = models.JSONField(null=True, blank=True)
    # What decided the rows this run reads (core.engine.runs.watermark_signature), fixed at its
    # first batch and stored on the schedule with its watermark: a configuration changed during
    # the run makes the next run read everything again.
    source_signature = models.CharField(max_length=64, blank=True, default="")
    # A full run of the source was asked for (a property changed) while this one was active:
    # it starts when this one ends.
    follow_up_full = models.BooleanField(default=False)
    rows_total = models.PositiveBigIntegerField(null=True, blank=True)
    batches_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    errors = models.JSONField(default=dict, blank=True, help_text="Error message -> count")
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source"],
                condition=models.Q(state__in=ACTIVE_RUN_STATES, source__isnull=False),
                name="core_run_one_active_per_source",
            ),
            models.UniqueConstraint(
                fields=["group"],
                condition=models.Q(state__in=ACTIVE_RUN_STATES, group__isnull=False, source__isnull=True),
                name="core_run_one_active_per_group",
            ),
        ]
        indexes = [models.Index(fields=["state", "created_at"], name="core_run_state")]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.get_creator_type_display()}, {self.outcome})"

    # `property` is a field of this model: the decorator is the builtin one.
    @builtins.property
    def has_failed_exports(self) -> bool:
        """Some export of this run failed finally (and no newer export of its record replaced
        it: a superseded failure is not counted). Exports are sent after a run ends, so a
        complete run can gain (or, once the failures are superseded, lose) failed exports."""
        return self.exports_failed > 0

    @builtins.property
    def outcome(self) -> str:
        """The state as people read it: a run whose exports failed never reads plainly
        "complete" ("complete, 3 exports failed")."""
        n = self.exports_failed
        if not n:
            return self.state
        return f"{self.state}, {n} export{'' if n == 1 else 's'} failed"


class Import(models.Model):
    """What one batch of a run read: keys, records, watermark span. One row per batch."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="imports")
    source = models.ForeignKey("core.Source", on_delete=models.SET_NULL, null=True, related_name="imports")
    batch = models.PositiveIntegerField()
    rows_read = models.PositiveIntegerField(default=0)
    records_created = models.PositiveIntegerField(default=0)
    records_updated = models.PositiveIntegerField(default=0)
    records_skipped = models.PositiveIntegerField(default=0)
    record_ids = models.JSONField(default=list, blank=True)
    watermark_from = models.JSONField(null=True, blank=True)
    watermark_to = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["run", "batch"]
        constraints = [models.UniqueConstraint(fields=["run", "source", "batch"], name="core_import_one_per_batch")]

    def __str__(self) -> str:
        return f"Import {self.run_id}/{self.batch}"


class Export(TimeStampedModel):
    """What one record looks like to one destination, and the state of sending it.

    Hot table: every index here is written on each state change (claim, outcome), so it keeps
    only the indexes the pipeline reads through; foreign keys are covered by composite ones.
    """

    # Not indexed on its own: the admin orders by id, which is the same order.
    created_at = models.DateTimeField(auto_now_add=True)
    # No database FOREIGN KEY on this hot table: see RecordProperty.record.
    destination = models.ForeignKey(
        "core.Destination", on_delete=models.CASCADE, related_name="exports", db_index=False, db_constraint=False
    )
    record = models.ForeignKey(
        "core.Record", on_delete=models.CASCADE, related_name="exports", db_index=False, db_constraint=False
    )
    run = models.ForeignKey(
        Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="exports", db_constraint=False
    )
    old_properties = SnapshotJSONField(default=dict, blank=True)
    new_properties = SnapshotJSONField(default=dict, blank=True)
    old_groups = SnapshotJSONField(default=list, blank=True)
    new_groups = SnapshotJSONField(default=list, blank=True)
    to_delete = models.BooleanField(default=False)
    state = models.CharField(max_length=12, choices=ExportState.choices, default=ExportState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error_message = models.TextField(blank=True, default="")
    error_level = models.CharField(max_length=5, choices=ErrorLevel.choices, blank=True, default="")
    send_after = models.DateTimeField(null=True, blank=True, help_text="Retry or throttle delay")
    started_at = models.DateTimeField(null=True, blank=True, help_text="Lease start while processing")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # A newer change supersedes (cancels) the queued export; only the newest is ever sent.
            models.UniqueConstraint(
                fields=["destination", "record"],
                condition=models.Q(state=ExportState.PENDING),
                name="core_export_one_pending",
            ),
            # At most one export of a record is being sent to a destination at any moment.
            models.UniqueConstraint(
                fields=["destination", "record"],
                condition=models.Q(state=ExportState.PROCESSING),
                name="core_export_one_processing",
            ),
        ]
        indexes = [
            # The send queue: a destination's pending exports in claim order (send_after, id),
            # which claims walk (core.engine.exports._due). Ordering by id alone let PostgreSQL
            # walk the primary key instead, past every completed export (see migration 0012).
            models.Index(
                fields=["destination", "send_after", "id"],
                name="core_export_queue",
                condition=models.Q(state=ExportState.PENDING),
            ),
            # A record's exports (diffing against the last one; record deletes cascade through it).
            models.Index(fields=["record", "destination"], name="core_export_record"),
            # Open work per destination (status, admin counts); completed rows stay out of it.
            models.Index(
                fields=["destination", "state"], name="core_export_dest_open",
                condition=models.Q(state__in=[ExportState.PENDING, ExportState.PROCESSING, ExportState.FAILED]),
            ),
        ]

    def __str__(self) -> str:
        return f"Export {self.pk} → {self.destination_id} ({self.state})"
