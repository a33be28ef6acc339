"""Apps (a connection to a service) and their App Refresh Query."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from core.choices import ObjectState
from core.fields import EncryptedJSONField
from core.models.base import ConnectorOptionsMixin, TimeStampedModel


class App(ConnectorOptionsMixin, TimeStampedModel):
    name = models.CharField(max_length=191, unique=True)
    secret_options = EncryptedJSONField()
    state = models.CharField(max_length=20, choices=ObjectState.choices, default=ObjectState.READY)
    config_id = models.CharField(max_length=191, blank=True, default="")
    locked_by = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from connectors import registry

        try:
            registry.get_app(self.type)
        except registry.UnknownConnector as exc:
            raise ValidationError({"type": str(exc)}) from exc


class AppRefreshQuery(TimeStampedModel):
    """When `query`'s single value changes, the app's refresh-enabled schedules start a run."""

    app = models.OneToOneField(App, on_delete=models.CASCADE, related_name="refresh_query")
    query = models.TextField()
    value = models.TextField(blank=True, null=True)  # noqa: DJ001 - NULL means "no value"
    recurring_frequency = models.PositiveIntegerField(default=60, help_text="Seconds between checks")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_changed_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=ObjectState.choices, default=ObjectState.READY)

    class Meta:
        verbose_name = "app refresh query"
        verbose_name_plural = "app refresh queries"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(recurring_frequency__gte=1),
                name="core_apprefreshquery_frequency_positive",
            )
        ]

    def __str__(self) -> str:
        return f"Refresh query of {self.app}"
