"""Connector options as real form fields (NetBox's `backend_` prefix trick).

A connector declares its options (`connectors.base.Option`); the admin turns each into a form
field named `opt_<key>` and packs the cleaned values back into the model: plain values into
`options` (JSON), secret ones into `secret_options` (encrypted at rest).

**Type first, then options.** Which fields a form has depends on the connector, and the
connector on the chosen type (for a Property: on its source's type). The admin builds the form
class per request (`ConnectorOptionsAdminMixin.get_form`) for the type found in, in order: the
POSTed `type`, the `?type=` query parameter, the stored object. A hidden `options_for` field
records which type's options the page showed. When a POST names a type whose options the user
has not seen yet (the add page before a type was chosen, or a changed source), nothing is
saved: the page comes back with that type's option fields (pre-filled with their defaults) and
asks to fill them in. So `/admin/core/app/add/` shows the type; choose it and save; fill in the
options that appear; save again. `/admin/core/app/add/?type=postgres` skips the first step.

**Secrets never leave the server.** A secret option renders as an empty password input
(`render_value=False`), never gets an initial value, and its help text says only whether a value
is stored. Submitting it blank keeps the stored value. `env:NAME` is accepted and stored as typed
(resolved from the environment at connect time).

**URL options** (type "url") show their URL masked (`https://********@host/in?token=********`):
the credentials in it are stored encrypted with the secrets, and submitting the masked URL back
keeps them (only for the same scheme, host and port; see connectors.url_credentials). Secrets
a connector binds to its URL (the webhook's signing secret and Authorization value) must be
typed again when the URL moves to another scheme, host or port.

**Validation** is the connector's: `validate_options()` runs in `clean()` and each error lands
on its option's field.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from connectors import registry
from connectors.base import Option, validate_declared
from connectors.paths import file_option_errors
from connectors.url_credentials import (
    URL_OPTION_TYPE,
    mask_url,
    mask_url_options,
    moved_url_errors,
    split_url_options,
)
from core.crypto import env_reference_errors

OPTION_PREFIX = "opt_"
UPLOAD_FIELD = "upload_file"
OPTIONS_FOR_FIELD = "options_for"
KEEP_SECRET_HELP = "A value is stored: leave blank to keep the stored value."
ENV_SECRET_HELP = "env:NAME reads the value from the server's environment variable NAME."
BLANK_CHOICE = ("", "---------")


def option_field_name(key: str) -> str:
    return f"{OPTION_PREFIX}{key}"


class NumberField(forms.DecimalField):
    """A number option. Cleans to an int when whole, else a float: JSON has no Decimal."""

    def clean(self, value: Any) -> int | float | None:
        number = super().clean(value)
        if number is None:
            return None
        assert isinstance(number, Decimal)
        return int(number) if number == number.to_integral_value() else float(number)


class MaskedUrlInput(forms.TextInput):
    """A URL option's input: its credentials are never rendered, not even the ones just typed
    into a form shown again with errors (as a secret's password input is rendered blank)."""

    def format_value(self, value: Any) -> str | None:
        return super().format_value(mask_url(value) if isinstance(value, str) else value)


def option_field(option: Option) -> forms.Field:
    """The form field for one declared option (secret fields get their stored state later)."""
    common: dict[str, Any] = {
        "label": option.label,
        "help_text": option.help_text,
        "required": option.required,
    }
    if option.type == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if option.type == "number":
        return NumberField(**common)
    if option.type == "textarea":
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "cols": 80}), **common)
    if option.type == "choice":
        choices = list(option.choices)
        if not option.required:
            choices.insert(0, BLANK_CHOICE)
        return forms.ChoiceField(choices=choices, **common)
    if option.secret:
        return forms.CharField(
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            strip=False,
            **{**common, "help_text": " ".join(filter(None, [option.help_text, ENV_SECRET_HELP]))},
        )
    if option.type == URL_OPTION_TYPE:
        return forms.CharField(widget=MaskedUrlInput, **common)
    return forms.CharField(**common)


def _initial_text(value: Any) -> str | None:
    """A default as form data (for pre-filling fields the user has not seen yet)."""
    if value is None or value is False:
        return None
    if value is True:
        return "on"
    return str(value)


class ConnectorOptionsForm(forms.ModelForm):
    """Base of the App, Source, Destination and Property admin forms.

    Subclasses are built per request by `connector_options_form()`, which declares one field per
    option of the chosen connector and sets the class attributes below.
    """

    # Set by connector_options_form().
    connector: ClassVar[type | None] = None
    connector_key: ClassVar[str] = ""
    declared_options: ClassVar[tuple[Option, ...]] = ()
    # The model field holding the connector type key, replaced by a choice field (None: none).
    connector_type_field: ClassVar[str | None] = "type"
    # The encrypted model field for secret options (None: the model has none).
    secret_options_field: ClassVar[str | None] = "secret_options"

    options_for = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup_type_field()
        marker = self.add_prefix(OPTIONS_FOR_FIELD)
        self.options_shown_for: str | None = None
        if self.is_bound:
            self.options_shown_for = self.data.get(marker, "")
            data = self.data.copy()
            data[marker] = self.connector_key
            if self.needs_options_round_trip():
                # Show the new type's fields with their defaults, not as blanks.
                for option in self.declared_options:
                    if not option.secret:
                        value = _initial_text(option.default)
                        if value is not None:
                            data[self.add_prefix(option_field_name(option.key))] = value
            self.data = data
        else:
            self.initial[OPTIONS_FOR_FIELD] = self.connector_key
        stored_plain = dict(self.instance.options or {})
        stored_secrets = self.stored_secrets()
        for option in self.declared_options:
            name = option_field_name(option.key)
            field = self.fields[name]
            if option.secret:
                if stored_secrets.get(option.key) not in (None, ""):
                    field.required = False
                    field.help_text = " ".join(filter(None, [KEEP_SECRET_HELP, field.help_text]))
            elif name not in self.initial:
                value = stored_plain.get(option.key, option.default)
                self.initial[name] = mask_url(value) if option.type == URL_OPTION_TYPE else value

    # -- hooks for subclasses -------------------------------------------------------------

    def type_choices(self) -> list[tuple[str, Any]]:
        """Registered connector types for the type select (grouped or flat)."""
        return []

    def validate_connector_options(self, options: dict[str, Any]) -> dict[str, str]:
        """{option key: message} from the connector's own validation."""
        assert self.connector is not None
        return self.connector.validate_options(options)

    def file_path_errors(self, plain: dict[str, Any], cleaned: dict[str, Any]) -> dict[str, str]:
        """File path options outside GROUPAROO_FILE_DIRECTORIES (connectors.paths). A source's
        or destination's path is resolved against its app's base directory."""
        is_app = not hasattr(self.instance, "app_id")
        app = None if is_app else cleaned.get("app", getattr(self.instance, "app", None))
        if self.connector_type_field is None or (app is None and not is_app):
            return {}
        app_options = None if app is None else dict(app.options or {})
        same_app = self.instance.pk and getattr(self.instance, "app_id", None) == getattr(app, "pk", None)
        unchanged = dict(self.instance.options or {}) if same_app else None
        return file_option_errors(
            self.declared_options, plain, app_options=app_options, unchanged=unchanged
        )

    # -- machinery ------------------------------------------------------------------------

    def stored_secrets(self) -> dict[str, Any]:
        if not self.secret_options_field:
            return {}
        return dict(getattr(self.instance, self.secret_options_field, None) or {})

    def needs_options_round_trip(self) -> bool:
        """True when the POST chose a type whose option fields the user has not seen."""
        return (
            self.is_bound
            and self.connector is not None
            and bool(self.declared_options)
            and self.options_shown_for != self.connector_key
        )

    def _setup_type_field(self) -> None:
        name = self.connector_type_field
        if not name or name not in self.fields:
            return
        old = self.fields[name]
        choices = list(self.type_choices())
        stored = self.initial.get(name) or getattr(self.instance, name, "")
        if stored and stored not in _choice_keys(choices):
            canonical = registry.canonical(stored)
            suffix = (
                f"alias of {canonical}" if canonical in _choice_keys(choices) else "not installed"
            )
            choices.append((stored, f"{stored} ({suffix})"))
        help_text = old.help_text
        if not self.instance.pk and self.connector is None:
            help_text = "Choose the type and save: its options then appear below to fill in."
        self.fields[name] = forms.ChoiceField(
            choices=[BLANK_CHOICE, *choices], label=old.label, help_text=help_text, required=True
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        upload = cleaned.get(UPLOAD_FIELD) if UPLOAD_FIELD in self.fields else None
        if upload:
            self._store_upload(upload, cleaned)
        if self.connector is None:
            # Unknown or not chosen yet: leave the stored options alone; the model's clean()
            # reports an unknown type.
            return cleaned
        if self.needs_options_round_trip():
            for option in self.declared_options:
                self._errors.pop(option_field_name(option.key), None)
            label = getattr(self.connector, "label", self.connector_key)
            raise ValidationError(
                f"Fill in the options of {label} below, then save again.", code="options_needed"
            )
        plain: dict[str, Any] = {}
        secret_keys = {o.key for o in self.declared_options if o.secret}
        secrets = {k: v for k, v in self.stored_secrets().items() if k in secret_keys}
        for option in self.declared_options:
            name = option_field_name(option.key)
            if name in self._errors:
                continue
            value = cleaned.get(name)
            if option.secret:
                if value not in (None, ""):
                    secrets[option.key] = value
            elif value is not None and value != "":
                plain[option.key] = value
        if self.secret_options_field:
            plain, secrets = self._split_url_options(plain, secrets)
            given = {
                o.key for o in self.declared_options
                if o.secret and cleaned.get(option_field_name(o.key)) not in (None, "")
            }
            self._check_moved_url(plain, secrets, given)
        for key, message in env_reference_errors(secrets).items():
            self.add_error(option_field_name(key), message)
        problems = {
            **self.file_path_errors(plain, cleaned),
            **self.validate_connector_options({**plain, **secrets}),
        }
        for key, message in problems.items():
            name = option_field_name(key)
            if name in self.fields:
                if name not in self._errors:
                    self.add_error(name, message)
            else:
                self.add_error(None, message)
        self.instance.options = plain
        if self.secret_options_field:
            setattr(self.instance, self.secret_options_field, secrets)
        return cleaned

    def _split_url_options(
        self, plain: dict[str, Any], secrets: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """URL options' credentials moved into the secrets (masked parts put back from the
        stored URL); a problem lands on the option's field."""
        stored = {**(self.instance.options or {}), **self.stored_secrets()}
        plain, secrets, errors = split_url_options(self.declared_options, plain, secrets, stored)
        for key, message in errors.items():
            name = option_field_name(key)
            if name not in self._errors:
                self.add_error(name, message)
        return plain, secrets

    def _check_moved_url(self, plain: dict[str, Any], secrets: dict[str, Any], given: set[str]) -> None:
        """A URL moved to another host may not keep the secrets bound to it: type them again
        (the error lands on the URL's field)."""
        if not self.instance.pk:
            return
        stored = {**(self.instance.options or {}), **self.stored_secrets()}
        bound = getattr(self.connector, "url_bound_secrets", {})
        for key, message in moved_url_errors(bound, plain, secrets, stored, given).items():
            name = option_field_name(key)
            if name not in self._errors:
                self.add_error(name, message)

    def _store_upload(self, upload: Any, cleaned: dict[str, Any]) -> None:
        """A file uploaded for a connector that reads files (the CSV source): keep it under the
        media folder and fill in the option that names its path."""
        from connectors.base import ConnectorError
        from connectors.csv_file import store_upload

        target = option_field_name(self.connector.upload_option)
        try:
            cleaned[target] = store_upload(upload)
        except ConnectorError as exc:
            self.add_error(UPLOAD_FIELD, exc.message)
            return
        self._errors.pop(target, None)


def _choice_keys(choices: Sequence[tuple[str, Any]]) -> set[str]:
    keys: set[str] = set()
    for key, label in choices:
        if isinstance(label, (list, tuple)):
            keys.update(k for k, _ in label)
        else:
            keys.add(key)
    return keys


def _grouped_by_app(choices: list[tuple[str, str]], app_key_of) -> list[tuple[str, Any]]:
    """[(app label, [(type key, label), ...]), ...]: source/destination types under their app."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, label in choices:
        groups[app_key_of(key)].append((key, label))
    grouped = []
    for app_key in sorted(groups):
        try:
            app_label = registry.get_app(app_key).label
        except registry.UnknownConnector:
            app_label = app_key
        grouped.append((app_label, groups[app_key]))
    return grouped


class AppForm(ConnectorOptionsForm):
    def type_choices(self) -> list[tuple[str, Any]]:
        return registry.app_choices()


class SourceForm(ConnectorOptionsForm):
    def type_choices(self) -> list[tuple[str, Any]]:
        return _grouped_by_app(registry.source_choices(), lambda k: registry.get_source(k).app_key)


class DestinationForm(ConnectorOptionsForm):
    def type_choices(self) -> list[tuple[str, Any]]:
        return _grouped_by_app(
            registry.destination_choices(), lambda k: registry.get_destination(k).app_key
        )


class PropertyForm(ConnectorOptionsForm):
    """A property's options are declared by its source's connector (`property_options`)."""

    connector_type_field = None
    # Property has no encrypted column; a connector should not declare secret property options.
    secret_options_field = None

    def validate_connector_options(self, options: dict[str, Any]) -> dict[str, str]:
        validate = getattr(self.connector, "validate_property_options", None)
        if callable(validate):
            return validate(options)
        return validate_declared(self.declared_options, options)


def connector_options_form(
    base: type[ConnectorOptionsForm],
    *,
    key: str,
    connector: type | None,
    options: Sequence[Option],
) -> type[ConnectorOptionsForm]:
    """A subclass of `base` declaring one `opt_<key>` field per option of `connector`."""
    attrs: dict[str, Any] = {option_field_name(o.key): option_field(o) for o in options}
    if getattr(connector, "upload_option", None):
        attrs[UPLOAD_FIELD] = forms.FileField(
            required=False,
            label="Upload a file",
            help_text="Stored under the media folder; its path fills in the option above.",
        )
    attrs.update(
        connector=connector, connector_key=key if connector else "", declared_options=tuple(options)
    )
    return type(base)(base.__name__, (base,), attrs)


class ConnectorOptionsAdminMixin:
    """Wires the connector-options form into a ModelAdmin (see the module docstring).

    Subclasses set `form` (a ConnectorOptionsForm subclass) and implement `lookup_connector`.
    """

    options_attr: ClassVar[str] = "options"  # or "property_options"

    def connector_key(self, request: HttpRequest, obj: Any) -> str:
        """The connector type to build fields for: POSTed, else ?type=, else stored."""
        params = request.POST if request.method == "POST" else request.GET
        return params.get("type") or (getattr(obj, "type", "") if obj is not None else "")

    def lookup_connector(self, key: str) -> type:
        raise NotImplementedError

    def resolve_connector(
        self, request: HttpRequest, obj: Any
    ) -> tuple[str, type | None, tuple[Option, ...]]:
        key = self.connector_key(request, obj)
        if not key:
            return "", None, ()
        try:
            connector = self.lookup_connector(key)
        except registry.UnknownConnector:
            return key, None, ()
        return key, connector, tuple(getattr(connector, self.options_attr, ()))

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        key, connector, options = self.resolve_connector(request, obj)
        kwargs["form"] = connector_options_form(
            self.form, key=key, connector=connector, options=options
        )
        return super().get_form(request, obj, change, **kwargs)

    def _can_edit(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None:
            return self.has_add_permission(request)
        return self.has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None):
        fieldsets = [(name, dict(opts)) for name, opts in super().get_fieldsets(request, obj)]
        if not self._can_edit(request, obj):
            fieldsets.append(("Options", {"fields": ["options_summary"]}))
            return fieldsets
        key, connector, options = self.resolve_connector(request, obj)
        first = fieldsets[0][1]
        first["fields"] = [*first["fields"], OPTIONS_FOR_FIELD]
        if connector is None and obj is not None:
            # The connector is not installed: show what is stored, edit nothing.
            fieldsets.append(("Options", {"fields": ["options_summary"]}))
        if options:
            label = getattr(connector, "label", key)
            names = [option_field_name(o.key) for o in options]
            if getattr(connector, "upload_option", None):
                names.append(UPLOAD_FIELD)
            fieldsets.append((f"{label} options", {"fields": names}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        if "options_summary" not in readonly:
            readonly.append("options_summary")
        return readonly

    def options_summary(self, obj: Any) -> str:
        """Plain options as `key: value` lines; secret ones only say whether they are set."""
        if obj is None:
            return "-"
        options = obj.options or {}
        try:
            declared = getattr(self.lookup_connector(obj.type), self.options_attr, ())
            options = mask_url_options(declared, options)
        except (registry.UnknownConnector, NotImplementedError, AttributeError):
            pass
        lines = [f"{k}: {v}" for k, v in sorted(options.items())]
        secrets = getattr(obj, "secret_options", None) or {}
        lines += [f"{k}: ******** (set)" for k in sorted(secrets)]
        return "\n".join(lines) or "-"

    options_summary.short_description = "Options"  # type: ignore[attr-defined]
