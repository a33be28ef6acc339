"""Admin for API keys (generated on add, shown once), their permissions, and Settings."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone

from core import models as m
from core.admin.base import GrouparooModelAdmin, count_of, service_errors
from core.admin.inlines import ApiKeyPermissionInline


@admin.register(m.ApiKey)
class ApiKeyAdmin(GrouparooModelAdmin):
    fields = [
        "name",
        ("permission_all_read", "permission_all_write"),
        ("expires_at", "revoked_at"),
        ("prefix", "hashed_key"),
        ("created_by", "created_at", "last_used_at"),
    ]
    readonly_fields = ["prefix", "hashed_key", "created_by", "created_at", "last_used_at"]
    list_display = [
        "name",
        "key_prefix",
        "is_active",
        "permission_all_read",
        "permission_all_write",
        "permission_count",
        "created_by",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = [
        "permission_all_read",
        "permission_all_write",
        ("revoked_at", admin.EmptyFieldListFilter),
    ]
    list_select_related = ["created_by"]
    search_fields = ["name", "=prefix"]
    inlines = [ApiKeyPermissionInline]
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(n_permissions=count_of(m.ApiKeyPermission, "api_key"))
        )

    def save_model(self, request: HttpRequest, obj: m.ApiKey, form: Any, change: bool) -> None:
        """On add, the key is minted by the service and shown once; on change, a plain save."""
        if change:
            super().save_model(request, obj, form, change)
            return
        from core.services.api_keys import api_key_create

        _, key = api_key_create(name=obj.name, created_by=request.user, api_key=obj)
        messages.success(
            request,
            f"The API key “{obj.name}” is {key} — copy it now: it is stored only as a hash and "
            f"will never be shown again.",
        )

    @admin.display(description="key")
    def key_prefix(self, obj: m.ApiKey) -> str:
        return f"grp_{obj.prefix}…"

    @admin.display(description="active", boolean=True)
    def is_active(self, obj: m.ApiKey) -> bool:
        return obj.is_active

    @admin.display(description="topic permissions", ordering="n_permissions")
    def permission_count(self, obj: Any) -> int:
        return obj.n_permissions

    @admin.action(description="Revoke", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset) -> None:
        from core.services.api_keys import api_key_revoke

        now = timezone.now()
        revoked = 0
        for api_key in queryset:
            with service_errors(request, api_key):
                revoked += api_key_revoke(api_key=api_key, at=now)
        messages.success(request, f"{revoked} key(s) revoked.")


@admin.register(m.ApiKeyPermission)
class ApiKeyPermissionAdmin(GrouparooModelAdmin):
    list_display = ["__str__", "api_key", "topic", "read", "write"]
    list_filter = ["topic", "read", "write"]
    list_select_related = ["api_key"]
    search_fields = ["api_key__name", "topic"]


class SettingForm(forms.ModelForm):
    """A registered setting's value must be within its bounds (core.settings_registry)."""

    class Meta:
        model = m.Setting
        fields = ["plugin", "key", "value", "type", "title", "description"]

    def clean(self) -> dict[str, Any]:
        from core.settings_registry import setting_problem

        data = super().clean()
        plugin = data.get("plugin", getattr(self.instance, "plugin", "core"))
        key = data.get("key", getattr(self.instance, "key", ""))
        problem = setting_problem(key, data.get("value", ""), plugin)
        if problem and "value" in self.fields:
            self.add_error("value", f"{problem[0].upper()}{problem[1:]}.")
        return data


@admin.register(m.Setting)
class SettingAdmin(GrouparooModelAdmin):
    form = SettingForm
    list_display = ["key", "plugin", "value", "type", "title", "locked_by"]
    list_filter = ["plugin", "type"]
    search_fields = ["key", "title", "description"]
    readonly_fields = ["config_id", "locked_by", "created_at", "updated_at"]
