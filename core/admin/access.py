"""Admin for API keys (generated on add, shown once), their permissions, and Settings.

A staff user may grant a key only what they hold themselves (core.services.api_keys.user_grants:
everything for a superuser, otherwise the topics their Django permissions cover): the key's
all-topics flags, its permission rows inline and the standalone permission rows are checked
against that, on add and whenever they widen what the key already has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.utils import timezone

from core import models as m
from core.admin.base import GrouparooModelAdmin, count_of, service_errors
from core.admin.inlines import ApiKeyPermissionInline

if TYPE_CHECKING:
    from core.services.api_keys import Grants

NOT_HELD = "You may grant only permissions you hold yourself; not held: {}."


def _excess(grantor: Grants, api_key_id: int | None, requested: Grants) -> str | None:
    """The error for what `requested` adds to the saved key (nothing for a key being added)
    beyond what `grantor` holds, or None."""
    from core.services.api_keys import NO_GRANTS, api_key_grant_excess, api_key_grants

    current = NO_GRANTS
    if api_key_id is not None:
        current = api_key_grants(m.ApiKey.objects.prefetch_related("permissions").get(pk=api_key_id))
    excess = api_key_grant_excess(grantor=grantor, requested=requested, current=current)
    return NOT_HELD.format(", ".join(excess)) if excess else None


STRONGER = (
    "You may change or delete only keys whose permissions are within your own; this key holds "
    "more (you may still revoke it)."
)


def _within(api_key: m.ApiKey, grantor: Grants) -> bool:
    """Whether the saved key holds nothing beyond `grantor`."""
    from core.services.api_keys import api_key_grants, grants_within

    saved = m.ApiKey.objects.prefetch_related("permissions").get(pk=api_key.pk)
    return grants_within(api_key_grants(saved), grantor)


def _with_grantor(cls: type, request: HttpRequest, *bases: type) -> type:
    """`cls` (a form or formset class made for this request) knowing what the user may grant."""
    from core.services.api_keys import user_grants

    return type(cls.__name__, (*bases, cls), {"grantor": user_grants(request.user)})


class ApiKeyForm(forms.ModelForm):
    """The all-topics flags may be turned on only by a user who holds them."""

    grantor: ClassVar[Grants]

    class Meta:
        model = m.ApiKey
        fields = ["name", "permission_all_read", "permission_all_write", "expires_at", "revoked_at"]

    def clean(self) -> dict[str, Any]:
        from core.services.api_keys import Grants

        data = super().clean()
        if self.instance.pk is not None and not _within(self.instance, self.grantor):
            raise ValidationError(STRONGER)
        for field in ("permission_all_read", "permission_all_write"):
            if field not in self.fields or not data.get(field):
                continue
            requested = Grants(**{field.replace("permission_", ""): True})
            error = _excess(self.grantor, self.instance.pk, requested)
            if error:
                self.add_error(field, error)
        return data


class GrantCheckedFormSet:
    """Mixed into the permissions inline: rows that widen the key need the user to hold them."""

    grantor: ClassVar[Grants]

    def clean(self) -> None:
        from core.services.api_keys import grants_of

        super().clean()
        if any(self.errors):
            return
        rows = [
            f.cleaned_data
            for f in self.forms
            if f.cleaned_data and f.cleaned_data.get("topic") and not f.cleaned_data.get("DELETE")
        ]
        requested = grants_of(all_read=False, all_write=False, rows=rows)
        error = _excess(self.grantor, self.instance.pk, requested)
        if error:
            raise ValidationError(error)


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
    form = ApiKeyForm

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        return _with_grantor(super().get_form(request, obj, change, **kwargs), request)

    def get_formsets_with_inlines(self, request: HttpRequest, obj: Any = None):
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            if isinstance(inline, ApiKeyPermissionInline):
                formset = _with_grantor(formset, request, GrantCheckedFormSet)
            yield formset, inline

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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A key stronger than the user is not deleted (it may be revoked)."""
        from core.services.api_keys import user_grants

        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or _within(obj, user_grants(request.user))

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        from core.services.api_keys import user_grants

        grantor = user_grants(request.user)
        stronger = [k.name for k in queryset if not _within(k, grantor)]
        if stronger:  # a 403 page: nothing is deleted
            raise PermissionDenied(f"{STRONGER} ({', '.join(stronger)})")
        super().delete_queryset(request, queryset)

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


class ApiKeyPermissionForm(forms.ModelForm):
    """A permission row may widen its key only within what the user holds."""

    grantor: ClassVar[Grants]

    class Meta:
        model = m.ApiKeyPermission
        fields = ["api_key", "topic", "read", "write"]

    def clean(self) -> dict[str, Any]:
        from core.services.api_keys import grants_of

        data = super().clean()
        if data.get("api_key") is None or not data.get("topic"):
            return data
        requested = grants_of(all_read=False, all_write=False, rows=[data])
        error = _excess(self.grantor, data["api_key"].pk, requested)
        if error:
            raise ValidationError(error)
        return data


@admin.register(m.ApiKeyPermission)
class ApiKeyPermissionAdmin(GrouparooModelAdmin):
    form = ApiKeyPermissionForm

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        return _with_grantor(super().get_form(request, obj, change, **kwargs), request)

    list_display = ["__str__", "api_key", "topic", "read", "write"]
    list_filter = ["topic", "read", "write"]
    list_select_related = ["api_key"]
    search_fields = ["api_key__name", "topic"]


class SettingForm(forms.ModelForm):
    """Only a setting's value is edited here; it must not be empty, and a registered setting's
    value must be within its bounds (core.settings_registry)."""

    class Meta:
        model = m.Setting
        fields = ["value"]

    def clean(self) -> dict[str, Any]:
        from core.settings_registry import setting_problem

        data = super().clean()
        if "value" not in self.fields or "value" not in data:
            return data
        problem = setting_problem(self.instance.key, data["value"], self.instance.plugin)
        if problem:
            self.add_error("value", f"{problem[0].upper()}{problem[1:]}.")
        return data


@admin.register(m.Setting)
class SettingAdmin(GrouparooModelAdmin):
    """Settings come from the data migration and config files: the admin changes their value
    only, and neither adds nor deletes them (a renamed or deleted row would silently bring back
    the default)."""

    form = SettingForm
    fields = ["plugin", "key", "value", "type", "title", "description", "config_id", "locked_by",
              "created_at", "updated_at"]
    list_display = ["key", "plugin", "value", "type", "title", "locked_by"]
    list_filter = ["plugin", "type"]
    search_fields = ["key", "title", "description"]
    readonly_fields = ["plugin", "key", "type", "title", "description", "config_id", "locked_by",
                       "created_at", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
