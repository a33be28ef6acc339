"""Records (one per customer of a Model) and their typed Record Properties."""
from __future__ import annotations

import builtins

from django.db import models

from core.choices import RecordPropertyState, RecordState
from core.fields import TransactionNow
from core.models.base import TimeStampedModel
from core.models.models import RecordModel
from core.models.properties import Property


class Record(TimeStampedModel):
    # No database FOREIGN KEY (migration 0009): a first sync inserts a record per customer, and
    # PostgreSQL's deferred check of each cost as much as the insert itself. Deleting a model
    # deletes its records through Django's collector (tests/engine/test_no_orphans.py). The
    # (model, state) index serves lookups by model.
    model = models.ForeignKey(
        RecordModel,
        on_delete=models.CASCADE,
        related_name="records",
        db_constraint=False,
        db_index=False,
    )
    state = models.CharField(max_length=10, choices=RecordState.choices, default=RecordState.PENDING)
    invalid = models.BooleanField(default=False, help_text="At least one property value did not parse")

    class Meta:
        indexes = [models.Index(fields=["model", "state"], name="core_record_model_state")]

    def __str__(self) -> str:
        return f"{self.model} record {self.pk}"


class RecordProperty(models.Model):
    """One value of one property of one record (several rows, by position, for arrays).

    `raw_value` is what the source gave; exactly one typed column, chosen by the property's type,
    holds the parsed value. A value that does not parse keeps its raw form, no typed value, and an
    `invalid_reason`. `unique_value` is the canonical text of a unique property's value, so the
    database itself forbids two records sharing an identifier.
    """

    # Hot table (one row per value). Its primary key is (record, property, position), the key
    # every lookup and upsert of the pipeline uses (migration 0014): a surrogate id cost a
    # sequence draw, a column and a second unique index per value, about a quarter of inserting
    # one; nothing reads values by id. The FK indexes are left out: the key covers record.
    # Hot-table references carry no database FOREIGN KEY (db_constraint=False): PostgreSQL's
    # deferred checks lock every referenced parent row FOR KEY SHARE and cost two thirds of a
    # first sync's inserts. Deletes cascade through Django's collector (every parent is deleted
    # with .delete()); tests/engine/test_no_orphans.py checks that nothing is left behind.
    pk = models.CompositePrimaryKey("record", "property", "position")
    record = models.ForeignKey(
        Record, on_delete=models.CASCADE, related_name="properties", db_index=False, db_constraint=False
    )
    property = models.ForeignKey(
        Property, on_delete=models.CASCADE, related_name="record_properties", db_index=False, db_constraint=False
    )
    position = models.PositiveIntegerField(default=0)
    raw_value = models.TextField(null=True, blank=True)  # noqa: DJ001 - NULL means "no value"
    value_text = models.TextField(null=True, blank=True)  # noqa: DJ001 - NULL means "no value"
    value_number = models.FloatField(null=True, blank=True)
    value_datetime = models.DateTimeField(null=True, blank=True)
    value_boolean = models.BooleanField(null=True, blank=True)
    unique_value = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001 - NULL means "no value"
    # Database defaults (migration 0011): a first sync's COPY leaves these three to the database
    # (the batch's time is its transaction's now(), see import_batch).
    state = models.CharField(
        max_length=10,
        choices=RecordPropertyState.choices,
        default=RecordPropertyState.READY,
        db_default=RecordPropertyState.READY,
    )
    invalid_reason = models.TextField(null=True, blank=True)  # noqa: DJ001 - NULL means "no value"
    changed_at = models.DateTimeField(null=True, blank=True, db_default=TransactionNow())
    confirmed_at = models.DateTimeField(null=True, blank=True, db_default=TransactionNow())

    class Meta:
        verbose_name_plural = "record properties"
        constraints = [
            models.UniqueConstraint(
                fields=["property", "unique_value"],
                condition=models.Q(unique_value__isnull=False),
                name="core_recordproperty_unique_identifier",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(value_text__isnull=True, value_number__isnull=True, value_datetime__isnull=True)
                    | models.Q(value_text__isnull=True, value_number__isnull=True, value_boolean__isnull=True)
                    | models.Q(value_text__isnull=True, value_datetime__isnull=True, value_boolean__isnull=True)
                    | models.Q(value_number__isnull=True, value_datetime__isnull=True, value_boolean__isnull=True)
                ),
                name="core_recordproperty_at_most_one_typed_value",
            ),
        ]
        # No typed value indexes (migration 0008): group rules test a record's own rows through
        # (record, property, position), and an index per typed column made every value insert
        # about a fifth dearer while steering the per-batch rule statements into scanning every
        # matching value of the property. Exact-value lookups by unique properties use the
        # unique_value index; other exact-value lookups scan (text was never indexed: 0006).
        indexes = [
            # "Does this record hold an invalid value?" without visiting its rows: only the
            # (rare) invalid rows enter this index.
            models.Index(
                fields=["record"], name="core_rp_invalid", condition=models.Q(invalid_reason__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.property.key}={self.raw_value!r}"

    @builtins.property  # `property` is a field name in this class body
    def value(self):
        for column in ("value_text", "value_number", "value_datetime", "value_boolean"):
            value = getattr(self, column)
            if value is not None:
                return value
        return None
