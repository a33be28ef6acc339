"""Serializers shared by every resource, and those of the small aggregates: Models, Apps, App
Refresh Queries, API keys, Settings, and the logs (Runs, Imports, Exports).

Serializers validate and persist; they never start work (the views call the services that do).
Validation is the model's own: `CleanModelSerializer` runs `full_clean()` on the would-be row,
so the API refuses exactly what the admin refuses.

**Connector options** (`ConnectorOptionsSerializer`, for Apps, Sources and Destinations):
`options` holds the plain options and is replaced whole on write; `secret_options` is
write-only. On write it is *merged* into the stored secrets: a key that is absent keeps its
stored value, a key sent as null or "" clears it, any other value replaces it (`env:NAME`
is stored as typed and resolved at connect time). On read it only says, per secret option of the
connector, "set" or "not set". The merged options are checked by the connector's
`validate_options()`; each problem is reported on its field (`options.<key>` or
`secret_options.<key>`). A URL option (type "url") is a plain option whose credentials are
secret: it is read back masked (`https://********:********@host/in?token=********`), its
credentials are stored in `secret_options` (listed there as set), and sending the masked URL
back keeps them (see connectors.url_credentials). Secrets a connector binds to its URL (the
webhook's signing secret and Authorization value) must be sent again, in `secret_options`, by an
update that moves the URL to another scheme, host or port (else 400 on `options.<url key>`).

**Nested rows** (mappings, filters, rules, group memberships, permissions) are lists on their
parent. Sending the list replaces the parent's rows with it (same rows: nothing is written);
leaving it out of a PATCH keeps them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from connectors import registry
from connectors.url_credentials import mask_url_options, moved_url_errors, split_url_options
from core import models as m
from core.choices import SettingType
from core.crypto import env_reference_errors

SET = "set"
NOT_SET = "not set"


def model_errors(exc: DjangoValidationError, prefix: str = "") -> serializers.ValidationError:
    """A Django ValidationError as a DRF one (field names kept, optionally prefixed)."""
    detail = serializers.as_serializer_error(exc)
    if prefix:
        detail = {f"{prefix}.{k}" if k != "non_field_errors" else prefix: v for k, v in detail.items()}
    return serializers.ValidationError(detail)


class StrictFieldsMixin:
    """Refuses input fields the serializer does not know, naming them (400): a data tool must not
    silently ignore a typo. Read-only fields count as known, so what a GET returned may be sent
    back (ignored); on an update, a read-only field sent with another value than the object's
    is refused (400), as a change that would not happen."""

    ignored_input: ClassVar[frozenset[str]] = frozenset({"csrfmiddlewaretoken"})

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            writable = ", ".join(name for name, f in self.fields.items() if not f.read_only)
            unknown = [str(k) for k in data if k not in self.fields and k not in self.ignored_input]
            if unknown:
                raise serializers.ValidationError(
                    {name: [f"Unknown field (writable fields: {writable})."] for name in unknown}
                )
            changed = self._read_only_changes(data)
            if changed:
                raise serializers.ValidationError(
                    {name: [f"Read-only field (writable fields: {writable})."] for name in changed}
                )
        return super().to_internal_value(data)

    def _read_only_changes(self, data: Mapping) -> list[str]:
        """Read-only fields of `data` whose value differs from the instance's, as a GET shows it."""
        sent = [k for k in data if k in self.fields and self.fields[k].read_only]
        instance = getattr(self, "instance", None)
        if not sent or instance is None or isinstance(instance, list | tuple | models.QuerySet):
            return []
        current = self.to_representation(instance)
        return [str(k) for k in sent if k in current and data[k] != current[k]]


class CleanModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A ModelSerializer whose validate() runs the model's full_clean() on the row it would save.

    `create_only_fields` may be set on create and are refused on update when they differ
    (the admin shows them read-only once the object exists). Nested list fields are not model
    fields and are left to the subclass.
    """

    create_only_fields: ClassVar[tuple[str, ...]] = ()
    clean_exclude: ClassVar[tuple[str, ...]] = ()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if self.instance is not None:
            errors = {
                name: ["Cannot be changed once the object exists."]
                for name in self.create_only_fields
                if name in attrs and attrs[name] != getattr(self.instance, name)
            }
            if errors:
                raise serializers.ValidationError(errors)
        candidate = self.candidate(attrs)
        self.clean_candidate(candidate)
        return attrs

    def candidate(self, attrs: dict[str, Any]) -> models.Model:
        """An unsaved copy of the row with `attrs` applied (the instance itself is untouched)."""
        instance = copy.copy(self.instance) if self.instance is not None else self.Meta.model()
        concrete = {f.name for f in instance._meta.concrete_fields}
        for name, value in attrs.items():
            if name in concrete:
                setattr(instance, name, value)
        return instance

    def clean_candidate(self, candidate: models.Model) -> None:
        try:
            candidate.full_clean(exclude=list(self.clean_exclude) or None)
        except DjangoValidationError as exc:
            raise model_errors(exc) from exc

    def changed_fields(self, attrs: dict[str, Any]) -> set[str]:
        """Names in attrs whose value differs from the instance's (all of them on create)."""
        if self.instance is None:
            return set(attrs)
        return {name for name, value in attrs.items() if getattr(self.instance, name, object()) != value}


class ChildSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A nested row (mapping, filter, rule...): validated by its model's clean() without its
    parent (which may not exist yet); the parent checks what involves itself."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        row = self.Meta.model(**attrs)
        try:
            row.clean()
        except DjangoValidationError as exc:
            raise model_errors(exc) from exc
        return attrs


def _row_key(value: Any) -> Any:
    return value.pk if isinstance(value, models.Model) else value


def replace_children(
    *, parent: models.Model, related_name: str, rows: Iterable[dict[str, Any]] | None
) -> bool:
    """Make `parent.<related_name>` exactly `rows` (dicts of child field values). None: leave
    them. Returns True when something changed; the same rows again write nothing (idempotent).
    Rows are full_clean()ed with their parent before saving."""
    if rows is None:
        return False
    rows = list(rows)
    manager = getattr(parent, related_name)
    fk_name = manager.field.name
    existing = list(manager.all())
    own_fields = [
        f for f in manager.model._meta.concrete_fields
        if f.editable and f.name not in ("id", fk_name) and not f.auto_created
    ]

    def signature(values: Iterable[tuple[str, Any]]) -> tuple:
        return tuple(sorted((k, _row_key(v)) for k, v in values))

    before = sorted(
        (signature((f.name, getattr(o, f.attname)) for f in own_fields) for o in existing), key=repr
    )
    # A field a row leaves out takes its default, as the saved row would.
    defaults = {f.name: f.get_default() for f in own_fields}
    after = sorted((signature({**defaults, **row}.items()) for row in rows), key=repr)
    if before == after:
        return False
    manager.all().delete()
    for row in rows:
        child = manager.model(**row, **{fk_name: parent})
        child.full_clean()
        child.save()
    return True


def check_distinct(rows: list[dict[str, Any]], field: str, message: str) -> dict[str, list[str]]:
    """{"<list>.<i>.<field>": [...]} for rows repeating a value of `field` (caller prefixes)."""
    seen: set[Any] = set()
    errors: dict[str, list[str]] = {}
    for index, row in enumerate(rows):
        value = _row_key(row.get(field))
        if value in (None, ""):
            continue
        if value in seen:
            errors[f"{index}.{field}"] = [message.format(value=row.get(field))]
        seen.add(value)
    return errors


def check_same_model(
    rows: list[dict[str, Any]], field: str, model_id: int | None, message: str
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for index, row in enumerate(rows):
        related = row.get(field)
        if related is not None and model_id is not None and related.model_id != model_id:
            errors[f"{index}.{field}"] = [message.format(value=related)]
    return errors


def prefixed(name: str, errors: dict[str, list[str]]) -> dict[str, list[str]]:
    return {f"{name}.{key}": value for key, value in errors.items()}


# --- connector options ----------------------------------------------------------------------


@extend_schema_field({
    "type": "object",
    "additionalProperties": {"type": "string", "nullable": True},
    "example": {"password": "set"},
})
class SecretOptionsField(serializers.Field):
    """Write: {key: value | null | ""} merged into the stored secrets. Read: {key: "set" | "not
    set"} for every secret option the connector declares (and any other stored key)."""

    default_error_messages = {"invalid": "Expected an object of option values."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Write-only secrets, merged: absent keys are kept, null or "
                                       "\"\" clears one. Read back as \"set\" / \"not set\".")
        super().__init__(**kwargs)

    def get_attribute(self, instance: Any) -> Any:
        return instance

    def to_representation(self, instance: Any) -> dict[str, str]:
        stored = dict(getattr(instance, "secret_options", None) or {})
        connector = self.parent.connector_for(getattr(instance, "type", ""))
        keys = [o.key for o in getattr(connector, "options", ()) if o.secret] if connector else []
        keys += [k for k in sorted(stored) if k not in keys]
        return {k: SET if stored.get(k) not in (None, "") else NOT_SET for k in keys}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("invalid")
        out: dict[str, Any] = {}
        for key, value in data.items():
            if value is not None and not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise serializers.ValidationError({key: ["A secret is a string."]})
            out[str(key)] = None if value in (None, "") else str(value)
        return out


class OptionsField(serializers.JSONField):
    """The plain options, an object of scalar values."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object of option values.")
        for key, value in data.items():
            if isinstance(value, (dict, list)):
                raise serializers.ValidationError({key: ["An option value is a string, number or boolean."]})
        return data


class ConnectorOptionsSerializer(CleanModelSerializer):
    """Apps, Sources and Destinations: `type` picks the connector that validates the options."""

    connector_kind: ClassVar[str] = "app"  # "app", "source" or "destination"
    has_secrets: ClassVar[bool] = True

    def connector_for(self, key: str) -> type | None:
        lookup = {"app": registry.get_app, "source": registry.get_source,
                  "destination": registry.get_destination}[self.connector_kind]
        try:
            return lookup(key) if key else None
        except registry.UnknownConnector:
            return None

    def validate_type(self, value: str) -> str:
        if self.connector_for(value) is None:
            known = ", ".join(k for k, _ in self.type_choices()) or "none"
            raise serializers.ValidationError(f"Unknown {self.connector_kind} type {value!r} (known: {known}).")
        return registry.canonical(value)

    def type_choices(self) -> list[tuple[str, str]]:
        return {"app": registry.app_choices, "source": registry.source_choices,
                "destination": registry.destination_choices}[self.connector_kind]()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        type_key = attrs.get("type", getattr(self.instance, "type", ""))
        connector = self.connector_for(type_key)
        touched = "options" in attrs or "secret_options" in attrs or self.instance is None
        if connector is not None and touched:
            attrs = self.merge_options(connector, attrs)
        return super().validate(attrs)

    def merge_options(self, connector: type, attrs: dict[str, Any]) -> dict[str, Any]:
        secret_keys = {o.key for o in connector.options if o.secret}
        plain = dict(attrs.get("options", getattr(self.instance, "options", None) or {}))
        errors: dict[str, list[str]] = {}
        for key in sorted(secret_keys & set(plain)):
            errors[f"options.{key}"] = ["A secret option: send it in secret_options."]
        secrets = {}
        if self.has_secrets:
            secrets = dict(getattr(self.instance, "secret_options", None) or {})
            for key, value in (attrs.get("secret_options") or {}).items():
                if key not in secret_keys:
                    errors[f"secret_options.{key}"] = ["Not a secret option of this connector."]
                elif value is None:
                    secrets.pop(key, None)
                else:
                    secrets[key] = value
            secrets = {k: v for k, v in secrets.items() if k in secret_keys}
            plain, secrets = self.split_url_options(connector, plain, secrets, errors)
            given = {k for k, v in (attrs.get("secret_options") or {}).items() if v is not None}
            self.check_moved_url(connector, plain, secrets, given, errors)
            for key, message in env_reference_errors(secrets).items():
                errors.setdefault(f"secret_options.{key}", []).append(message)
        if not errors:
            for key, message in connector.validate_options({**plain, **secrets}).items():
                field = "secret_options" if key in secret_keys else "options"
                errors.setdefault(f"{field}.{key}", []).append(message)
        if errors:
            raise serializers.ValidationError(errors)
        attrs = {**attrs, "options": plain}
        if self.has_secrets:
            attrs["secret_options"] = secrets
        return attrs

    def split_url_options(self, connector: type, plain: dict[str, Any], secrets: dict[str, Any],
                          errors: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """URL options' credentials moved into the secrets; masked parts put back from the
        stored URL (errors on `options.<key>`)."""
        stored = {**(getattr(self.instance, "options", None) or {}),
                  **(getattr(self.instance, "secret_options", None) or {})}
        plain, secrets, url_errors = split_url_options(connector.options, plain, secrets, stored)
        for key, message in url_errors.items():
            errors.setdefault(f"options.{key}", []).append(message)
        return plain, secrets

    def check_moved_url(self, connector: type, plain: dict[str, Any], secrets: dict[str, Any],
                        given: set[str], errors: dict[str, list[str]]) -> None:
        """A URL moved to another host may not keep the secrets bound to it (errors on
        `options.<key>`; see connectors.url_credentials.moved_url_errors)."""
        if self.instance is None:
            return
        stored = {**(self.instance.options or {}), **(self.instance.secret_options or {})}
        bound = getattr(connector, "url_bound_secrets", {})
        for key, message in moved_url_errors(bound, plain, secrets, stored, given).items():
            errors.setdefault(f"options.{key}", []).append(message)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        connector = self.connector_for(getattr(instance, "type", ""))
        if connector is not None and isinstance(data.get("options"), dict):
            # Rows stored before URL credentials were split out still hold whole URLs.
            data["options"] = mask_url_options(connector.options, data["options"])
        return data

    def changed_fields(self, attrs: dict[str, Any]) -> set[str]:
        changed = super().changed_fields(attrs)
        if self.instance is not None and "secret_options" in attrs:
            if dict(attrs["secret_options"]) == dict(self.instance.secret_options or {}):
                changed.discard("secret_options")
        return changed


CONFIG_READ_ONLY = ["id", "config_id", "locked_by", "created_at", "updated_at"]


class RecordModelSerializer(CleanModelSerializer):
    class Meta:
        model = m.RecordModel
        fields = ["id", "name", "type", "config_id", "locked_by", "created_at", "updated_at"]
        read_only_fields = CONFIG_READ_ONLY


class AppSerializer(ConnectorOptionsSerializer):
    connector_kind = "app"
    create_only_fields = ("type",)
    options = OptionsField(required=False)
    secret_options = SecretOptionsField()
    refresh_query = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = m.App
        fields = ["id", "name", "type", "options", "secret_options", "state", "refresh_query",
                  "config_id", "locked_by", "created_at", "updated_at"]
        read_only_fields = CONFIG_READ_ONLY


class AppRefreshQuerySerializer(CleanModelSerializer):
    create_only_fields = ("app",)

    class Meta:
        model = m.AppRefreshQuery
        fields = ["id", "app", "query", "recurring_frequency", "state", "value", "last_checked_at",
                  "last_changed_at", "created_at", "updated_at"]
        read_only_fields = ["id", "value", "last_checked_at", "last_changed_at", "created_at", "updated_at"]


# --- API keys and settings ------------------------------------------------------------------


class ApiKeyPermissionSerializer(ChildSerializer):
    class Meta:
        model = m.ApiKeyPermission
        fields = ["topic", "read", "write"]


class ApiKeySerializer(CleanModelSerializer):
    """An API key without its secret: only the prefix is shown. Creating one answers with the
    plaintext `key` once (see ApiKeyViewSet.create)."""

    clean_exclude = ("prefix", "hashed_key")
    permissions = ApiKeyPermissionSerializer(many=True, required=False)
    key_prefix = serializers.SerializerMethodField()
    is_active = serializers.BooleanField(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = m.ApiKey
        fields = ["id", "name", "key_prefix", "permission_all_read", "permission_all_write",
                  "permissions", "expires_at", "revoked_at", "is_active", "last_used_at",
                  "created_by", "config_id", "locked_by", "created_at", "updated_at"]
        read_only_fields = [*CONFIG_READ_ONLY, "revoked_at", "last_used_at"]

    def get_key_prefix(self, obj: m.ApiKey) -> str:
        return f"grp_{obj.prefix}"

    def to_internal_value(self, data: Any) -> Any:
        """`revoked_at` is set only by revoking; a revoked key is never restored (its secret may
        have leaked), and saying so beats a 200 that changes nothing (checked before the
        generic refusal of a changed read-only field, to say why)."""
        revoked = self.instance is not None and self.instance.revoked_at is not None
        if revoked and isinstance(data, Mapping) and "revoked_at" in data and data["revoked_at"] is None:
            raise serializers.ValidationError(
                {"revoked_at": ["A revoked key cannot be restored; create a new key."]}
            )
        return super().to_internal_value(data)

    def validate_permissions(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        errors = check_distinct(rows, "topic", "Topic “{value}” is listed twice.")
        if errors:
            raise serializers.ValidationError(errors)
        return rows

    def update(self, instance: m.ApiKey, validated_data: dict[str, Any]) -> m.ApiKey:
        rows = validated_data.pop("permissions", None)
        instance = super().update(instance, validated_data)
        replace_children(parent=instance, related_name="permissions", rows=rows)
        return instance


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """The answer to creating a key: the only time its plaintext is ever shown."""

    key = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class SettingSerializer(CleanModelSerializer):
    class Meta:
        model = m.Setting
        fields = ["id", "plugin", "key", "value", "type", "title", "description", "config_id",
                  "locked_by", "created_at", "updated_at"]
        read_only_fields = [*CONFIG_READ_ONLY, "plugin", "key", "type", "title", "description"]

    def validate_value(self, value: str) -> str:
        """Registered settings must be within their bounds (core.settings_registry); others are
        checked against their declared type. No setting may be empty."""
        from core.settings_registry import plain_number, setting_problem

        plugin, key = getattr(self.instance, "plugin", "core"), getattr(self.instance, "key", "")
        problem = setting_problem(key, value, plugin)
        if problem:
            raise serializers.ValidationError(f"{problem[0].upper()}{problem[1:]}.")
        kind = getattr(self.instance, "type", SettingType.STRING)
        if kind == SettingType.NUMBER and plain_number(value) is None:
            raise serializers.ValidationError(
                "Expected a finite number written with ASCII digits (such as 30, -2.5 or 1e3)."
            )
        if kind == SettingType.BOOLEAN and value not in ("true", "false"):
            raise serializers.ValidationError("Expected true or false.")
        return value


# --- logs -----------------------------------------------------------------------------------


class RunSerializer(serializers.ModelSerializer):
    has_failed_exports = serializers.BooleanField(
        read_only=True,
        help_text="Some export of the run failed (exports_failed says how many; a failure that a "
        "newer export of the same record replaced is not counted).",
    )
    outcome = serializers.CharField(
        read_only=True,
        help_text='The state as shown to people: "complete, 3 exports failed" when exports failed.',
    )

    class Meta:
        model = m.Run
        fields = ["id", "creator_type", "source", "schedule", "group", "property", "destination",
                  "state", "outcome", "has_failed_exports", "phase", "full", "export", "rows_read",
                  "records_created", "records_updated", "records_invalid", "records_skipped",
                  "records_merged", "records_deleted", "groups_changed", "exports_created",
                  "exports_sent", "exports_failed", "percent_complete", "rows_total", "batches_done",
                  "starting_watermark", "high_watermark", "error", "errors", "started_at",
                  "completed_at", "heartbeat_at", "created_at", "updated_at"]
        read_only_fields = fields


class ImportSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.Import
        fields = ["id", "run", "source", "batch", "rows_read", "records_created", "records_updated",
                  "records_skipped", "record_ids", "watermark_from", "watermark_to", "created_at"]
        read_only_fields = fields


class ExportSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.Export
        fields = ["id", "destination", "record", "run", "old_properties", "new_properties",
                  "old_groups", "new_groups", "to_delete", "state", "attempts", "error_message",
                  "error_level", "send_after", "started_at", "completed_at", "created_at",
                  "updated_at"]
        read_only_fields = fields

