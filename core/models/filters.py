"""The abstract Filter shared by property filters and schedule filters."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from core.choices import FilterOp, RelativeUnit


class FilterBase(models.Model):
    """`key` (a source column) `op` `match`: rows not matching are left out of the source read."""

    key = models.CharField(max_length=191, help_text="Source column")
    op = models.CharField(max_length=20, choices=FilterOp.choices)
    match = models.TextField(blank=True, default="", help_text="For 'in', a comma-separated list")
    relative_match_number = models.PositiveIntegerField(null=True, blank=True)
    relative_match_unit = models.CharField(max_length=10, choices=RelativeUnit.choices, blank=True, default="")
    relative_match_direction = models.CharField(
        max_length=10, choices=[("subtract", "ago"), ("add", "from now")], blank=True, default=""
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.key} {self.op} {self.match}".strip()

    def clean(self) -> None:
        if self.op not in (FilterOp.EXISTS, FilterOp.NOT_EXISTS):
            if self.match == "" and self.relative_match_number is None:
                raise ValidationError({"match": f"Operation {self.op!r} needs a value to compare with."})
        if (self.relative_match_number is None) != (not self.relative_match_unit):
            raise ValidationError(
                {"relative_match_unit": "A relative match needs both a number and a unit."}
            )

    def as_spec(self) -> dict:
        """The plain form connectors receive (no ORM objects cross into connectors)."""
        spec = {"key": self.key, "op": self.op, "match": self.match}
        if self.relative_match_number is not None:
            spec["relative_match"] = {
                "number": self.relative_match_number,
                "unit": self.relative_match_unit,
                "direction": self.relative_match_direction or "subtract",
            }
        return spec
