"""API keys with per-topic permissions, and Settings."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.choices import ApiTopic, SettingType
from core.models.base import TimeStampedModel


class ApiKey(TimeStampedModel):
    """An API key. Only a hash is stored; the key itself is shown once, at creation."""

    name = models.CharField(max_length=191, unique=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=128, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="api_keys"
    )
    permission_all_read = models.BooleanField(default=False)
    permission_all_write = models.BooleanField(default=False)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    config_id = models.CharField(max_length=191, blank=True, default="")
    locked_by = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        verbose_name = "API key"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} (grp_{self.prefix}…)"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class ApiKeyPermission(models.Model):
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="permissions")
    topic = models.CharField(max_length=20, choices=ApiTopic.choices)
    read = models.BooleanField(default=True)
    write = models.BooleanField(default=False)

    class Meta:
        verbose_name = "API key permission"
        constraints = [
            models.UniqueConstraint(fields=["api_key", "topic"], name="core_apikeypermission_one_per_topic"),
        ]

    def __str__(self) -> str:
        access = "+".join(a for a, on in (("read", self.read), ("write", self.write)) if on) or "none"
        return f"{self.topic}: {access}"


class Setting(TimeStampedModel):
    """A runtime setting editable in the admin. Defaults live in core.settings_registry."""

    plugin = models.CharField(max_length=100, default="core")
    key = models.CharField(max_length=191)
    value = models.TextField(blank=True, default="")
    type = models.CharField(max_length=10, choices=SettingType.choices, default=SettingType.STRING)
    title = models.CharField(max_length=191, blank=True, default="")
    description = models.TextField(blank=True, default="")
    config_id = models.CharField(max_length=191, blank=True, default="")
    locked_by = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["plugin", "key"]
        constraints = [models.UniqueConstraint(fields=["plugin", "key"], name="core_setting_unique_key")]

    def __str__(self) -> str:
        return f"{self.plugin}.{self.key}"
