"""The Model (RecordModel): the shape of a kind of Record (customers, leads, accounts...)."""
from __future__ import annotations

from django.db import models

from core.choices import RecordModelType
from core.models.base import TimeStampedModel


class RecordModel(TimeStampedModel):
    name = models.CharField(max_length=191, unique=True)
    type = models.CharField(max_length=20, choices=RecordModelType.choices, default=RecordModelType.PROFILE)
    config_id = models.CharField(max_length=191, blank=True, default="", help_text="id in config files")
    locked_by = models.CharField(max_length=500, blank=True, default="", help_text="Config file that owns this object")

    class Meta:
        verbose_name = "model"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
