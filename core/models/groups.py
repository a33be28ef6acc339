"""Groups of records defined by rules, and their members (with joined and left times)."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from core.choices import (
    RELATIVE_RULE_OPS,
    RULE_OPS_BY_KIND,
    VALUELESS_RULE_OPS,
    GroupMatchType,
    ObjectState,
    RelativeUnit,
    RuleOp,
)
from core.models.base import TimeStampedModel
from core.models.models import RecordModel
from core.models.properties import Property
from core.models.records import Record


class Group(TimeStampedModel):
    model = models.ForeignKey(RecordModel, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=191)
    match_type = models.CharField(max_length=5, choices=GroupMatchType.choices, default=GroupMatchType.ALL)
    state = models.CharField(max_length=20, choices=ObjectState.choices, default=ObjectState.READY)
    member_count = models.PositiveIntegerField(default=0)
    calculated_at = models.DateTimeField(null=True, blank=True)
    next_calculate_at = models.DateTimeField(
        null=True, blank=True, help_text="Groups with relative-date rules are recomputed on a clock"
    )
    config_id = models.CharField(max_length=191, blank=True, default="")
    locked_by = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["model", "name"], name="core_group_unique_name_per_model"),
        ]

    def __str__(self) -> str:
        return self.name


class GroupRule(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="rules")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="group_rules")
    op = models.CharField(max_length=20, choices=RuleOp.choices)
    match = models.TextField(blank=True, default="", help_text="For 'is one of', a comma-separated list")
    relative_match_number = models.PositiveIntegerField(null=True, blank=True)
    relative_match_unit = models.CharField(max_length=10, choices=RelativeUnit.choices, blank=True, default="")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        if self.op in RELATIVE_RULE_OPS:
            return f"{self.property.key} {self.get_op_display()} {self.relative_match_number} {self.relative_match_unit}"
        return f"{self.property.key} {self.get_op_display()} {self.match}".strip()

    def clean(self) -> None:
        if not self.property_id:
            return
        if self.group_id and self.property.model_id != self.group.model_id:
            raise ValidationError({"property": "The property belongs to another model than the group."})
        allowed = RULE_OPS_BY_KIND[self.property.value_kind]
        if self.op not in allowed:
            raise ValidationError(
                {
                    "op": f"{RuleOp(self.op).label!r} does not suit {self.property.key!r}, a "
                    f"{self.property.get_type_display().lower()} property."
                }
            )
        if self.op in RELATIVE_RULE_OPS:
            if not self.relative_match_number or not self.relative_match_unit:
                raise ValidationError(
                    {"relative_match_number": "'in the last / in the next' needs a number and a unit."}
                )
        elif self.op not in VALUELESS_RULE_OPS and self.match == "":
            raise ValidationError({"match": "This operation needs a value to compare with."})
        if self.op not in RELATIVE_RULE_OPS and self.op not in VALUELESS_RULE_OPS:
            from core.values import coerce_match

            try:
                coerce_match(self.property.type, self.match, many=self.op == RuleOp.IN)
            except ValueError as exc:
                raise ValidationError({"match": str(exc)}) from exc


class GroupMember(models.Model):
    """Membership of a record in a group. A current member has `left_at` NULL."""

    # FK indexes left out: (group, record) and (record, group) cover both directions.
    # No database FOREIGN KEY on this hot table: see RecordProperty.record.
    group = models.ForeignKey(
        Group, on_delete=models.CASCADE, related_name="members", db_index=False, db_constraint=False
    )
    record = models.ForeignKey(
        Record, on_delete=models.CASCADE, related_name="memberships", db_index=False, db_constraint=False
    )
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "record"], name="core_groupmember_one_per_record"),
        ]
        indexes = [models.Index(fields=["record", "group"], name="core_groupmember_record")]

    def __str__(self) -> str:
        return f"{self.record_id} in {self.group_id}"
