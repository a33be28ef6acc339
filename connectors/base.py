"""The contracts every connector implements. Connectors never touch the ORM: they take plain
option dicts and data, and return data.

Three kinds of class, each registered under a type key in `connectors.registry`:

- `AppConnector` (e.g. "postgres"): connection options and `test_connection()`.
- `SourceConnector` (e.g. "postgres-table"): reads rows and computes property values.
- `DestinationConnector` (e.g. "postgres-export"): writes records and group memberships.

Errors are raised as `ConnectorError`. Its message must be safe to show a user: it never
contains a secret, a connection string with a password, or a stack trace.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

OPTION_TYPES = ("text", "textarea", "number", "boolean", "choice", "secret", "url")


@dataclass(frozen=True)
class Option:
    """A connector option, rendered as a real form field in the admin.

    type "secret": stored encrypted, never shown. type "url": a plain option whose credentials
    (user info, token-like query values) are stored encrypted and shown masked
    (connectors.url_credentials)."""

    key: str
    label: str
    type: str = "text"
    required: bool = False
    help_text: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    default: Any = None
    # The option names a file or directory on the server. A config file may give it relative to
    # the project directory, as Grouparoo's plugins read it (core.config.validate).
    file_path: bool = False

    @property
    def secret(self) -> bool:
        return self.type == "secret"


class ConnectorError(Exception):
    """A failure talking to a source or destination.

    permanent: retrying will not help (bad credentials, missing table, 4xx).
    retry_after: seconds the remote asked us to wait (throttling); not counted as an attempt.
    """

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class Column:
    """A column (or field) of a source, with the filter operations it allows."""

    name: str
    type: str
    filter_ops: tuple[str, ...]


@dataclass
class Batch:
    """One page of source rows.

    rows: dicts keyed by column name, values as Python values (str, int, float, Decimal, datetime,
      date, bool, None).
    cursor: JSON-serialisable key of the last row, to pass back as `after` for the next page;
      None when `rows` is empty.
    """

    rows: list[dict[str, Any]]
    cursor: Any | None


@dataclass(frozen=True)
class PropertySpec:
    """What a source connector needs to compute one property for a batch of keys.

    key: the property key; results are keyed by it.
    options: the property's options (table: column, aggregationMethod, sortColumn;
      query: query, with {{{ name }}} placeholders that become bound parameters).
    filters: filter specs {"key", "op", "match"} restricting the rows aggregated.
    is_array: return every value (ordered) instead of one.
    """

    key: str
    options: dict[str, Any]
    filters: tuple[dict[str, Any], ...] = ()
    is_array: bool = False


class AppConnector(abc.ABC):
    key: ClassVar[str]
    label: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = ()
    # Limits the engine respects.
    max_concurrency: ClassVar[int] = 4
    preferred_batch_size: ClassVar[int] = 5000

    def __init__(self, options: dict[str, Any]):
        self.app_options = dict(options)

    @classmethod
    def secret_option_keys(cls) -> tuple[str, ...]:
        return tuple(o.key for o in cls.options if o.secret)

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, str]:
        """Return {option key: error message} for missing required or unknown options."""
        return validate_declared(cls.options, options)

    @abc.abstractmethod
    def test_connection(self) -> str:
        """Connect and run a trivial request. Return a short success message; raise ConnectorError."""

    def refresh_query(self, query: str) -> str | None:
        """Run an App Refresh Query and return its single value as text (None for no row).
        Apps without queries do not support refresh queries."""
        raise ConnectorError(f"{self.label} apps do not support refresh queries.", permanent=True)


class SourceConnector(abc.ABC):
    key: ClassVar[str]
    app_key: ClassVar[str]
    label: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = ()
    property_options: ClassVar[tuple[Option, ...]] = ()
    # A source computed from the records' own properties (connectors.calculated): the engine
    # hands it a reader of the records with `bind_records(reader)` before reading it, reads it
    # on the run's own thread, and does not use it to enrich other sources' new records.
    reads_records: ClassVar[bool] = False

    def __init__(self, app_options: dict[str, Any], source_options: dict[str, Any]):
        self.app_options = dict(app_options)
        self.source_options = dict(source_options)

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, str]:
        return validate_declared(cls.options, options)

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release connections. Safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @abc.abstractmethod
    def preview(self, limit: int = 10) -> list[dict[str, Any]]:
        """A few rows, as read_batch would return them."""

    @abc.abstractmethod
    def list_columns(self) -> list[Column]:
        """The columns rows have, with the filter operations each allows."""

    @abc.abstractmethod
    def read_batch(
        self,
        *,
        key_column: str,
        columns: list[str] | None,
        watermark_column: str | None,
        since: Any | None,
        after: Any | None,
        limit: int,
        filters: list[dict[str, Any]],
        distinct_keys: bool = False,
    ) -> Batch:
        """Read the next page of rows, ordered by key_column (keyset pagination).

        columns: the columns to return (None: all); key_column is always included.
        watermark_column/since: only rows with watermark_column >= since. `since` is the high
          watermark stored when the previous run started; `>=` so rows sharing the value at the
          edge are never lost. None: no watermark condition (full read).
        after: the `cursor` of the previous page (the last key); rows with key_column > after.
        filters: schedule filters, pushed down into the source query.
        distinct_keys: return one row per distinct key, holding only key_column (a secondary
          source, where many rows share a key, reads which keys changed).
        Rows whose key is NULL are never returned.
        """

    @abc.abstractmethod
    def max_watermark(self, *, watermark_column: str, filters: list[dict[str, Any]]) -> Any | None:
        """The largest watermark value now (JSON-serialisable), taken when a run starts."""

    @abc.abstractmethod
    def count(self, *, watermark_column: str | None, since: Any | None, filters: list[dict[str, Any]]) -> int:
        """How many rows read_batch would return in all (for percent complete)."""

    @abc.abstractmethod
    def aggregate(
        self, *, properties: list[PropertySpec], key_column: str, key_property: str, keys: list[Any]
    ) -> dict[Any, dict[str, Any]]:
        """Compute properties for a batch of keys in the source database, in one query per call
        where the source allows it. Returns {key: {property key: value (or list if is_array)}};
        keys with no rows may be missing. key_property is the name of the mapped property, the
        placeholder query properties use for the key ({{{ key_property }}})."""


@dataclass
class ExportPayload:
    """One record to send. Properties are keyed by destination field, groups by remote name.

    old_properties/old_groups: what this destination last received for the record (empty when
      nothing was delivered yet); new_properties/new_groups: the record now.
    Groups: a destination may share its lists, tags or groups table with other destinations,
      people and tools, so an export removes only the groups this destination wrote before and
      no longer sends (old_groups minus new_groups) and adds the new_groups; it never removes a
      group that is not in old_groups.
    to_delete: the record left the destination's collection (or was deleted). When the sync
      mode deletes (operations.delete), delete it; otherwise (additive, enrich) update it with
      new_properties, its current values, like any other record, and remove its old_groups.
    """

    export_id: int
    record_id: int
    old_properties: dict[str, Any]
    new_properties: dict[str, Any]
    old_groups: list[str]
    new_groups: list[str]
    to_delete: bool


@dataclass
class ExportResult:
    export_id: int
    success: bool
    error: str = ""
    # "error": retried with backoff; "info": final, not retried (e.g. not created in enrich mode).
    level: str = "error"
    retry_after: float | None = None
    skipped: bool = False
    # The connector never sent this record (an earlier request of the batch failed): it is
    # retried when the failed ones are, without spending an attempt.
    not_sent: bool = False


@dataclass(frozen=True)
class MappingOptions:
    """What a destination accepts: required fields (e.g. its primary key) and known fields."""

    required: tuple[tuple[str, str], ...] = ()
    known: tuple[tuple[str, str], ...] = ()
    allow_any: bool = True


@dataclass(frozen=True)
class SyncOperations:
    create: bool = True
    update: bool = True
    delete: bool = True

    @classmethod
    def for_mode(cls, mode: str) -> SyncOperations:
        return {
            "sync": cls(True, True, True),
            "additive": cls(True, True, False),
            "enrich": cls(False, True, False),
        }[mode]


class DestinationConnector(abc.ABC):
    key: ClassVar[str]
    app_key: ClassVar[str]
    label: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, app_options: dict[str, Any], destination_options: dict[str, Any]):
        self.app_options = dict(app_options)
        self.destination_options = dict(destination_options)

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, str]:
        return validate_declared(cls.options, options)

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release connections. Safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @abc.abstractmethod
    def mapping_options(self) -> MappingOptions:
        """Fields the destination requires and knows."""

    @abc.abstractmethod
    def export_batch(self, exports: list[ExportPayload], *, operations: SyncOperations) -> list[ExportResult]:
        """Send a batch. Return one result per payload. Must be idempotent: sending the same
        payload twice leaves the destination as sending it once (upserts keyed by the mapped key).
        A record that does not exist and may not be created (enrich) is a success with
        skipped=True. Groups and leaving records (to_delete): see ExportPayload. Raise
        ConnectorError only when the whole batch failed."""


def validate_declared(declared: tuple[Option, ...], options: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    known = {o.key for o in declared}
    for option in declared:
        value = options.get(option.key)
        if option.required and (value is None or value == ""):
            errors[option.key] = f"{option.label} is required."
        elif option.type == "choice" and value not in (None, "") and option.choices:
            if str(value) not in {c for c, _ in option.choices}:
                errors[option.key] = f"{value!r} is not one of {', '.join(c for c, _ in option.choices)}."
    for key in options:
        if key not in known:
            errors[key] = f"Unknown option {key!r}."
    return errors
