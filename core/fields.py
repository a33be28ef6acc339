"""Model fields. `EncryptedJSONField` keeps a dict encrypted at rest (a Fernet token in a TEXT column)."""
from __future__ import annotations

import json

from django.db import models
from django.db.models.expressions import Col
from django.db.models.functions import Now
from django.utils.functional import cached_property

from core import crypto


class SecretDict(dict):
    """A dict whose repr never shows its values, so a stray log line or traceback leaks nothing."""

    def __repr__(self) -> str:
        return "SecretDict(" + ", ".join(f"{k}=********" for k in self) + ")"

    __str__ = __repr__


class EncryptedJSONField(models.TextField):
    """A JSON object stored as a Fernet token. The column never holds the plaintext."""

    description = "Encrypted JSON object"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return SecretDict()
        return SecretDict(json.loads(crypto.decrypt(value)))

    def to_python(self, value):
        if isinstance(value, dict):
            return SecretDict(value)
        if value is None or value == "":
            return SecretDict()
        if isinstance(value, str):
            try:
                return SecretDict(json.loads(value))
            except json.JSONDecodeError:
                return SecretDict(json.loads(crypto.decrypt(value)))
        return value

    def get_prep_value(self, value):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise TypeError("EncryptedJSONField holds a dict")
        return crypto.encrypt(json.dumps(dict(value), sort_keys=True))

    def value_to_string(self, obj):
        # Serialization (dumpdata) keeps the ciphertext, never the plaintext.
        return self.get_prep_value(self.value_from_object(obj))


class SnapshotJSONField(models.JSONField):
    """JSON stored as written: PostgreSQL's `json`, not `jsonb` (other databases as JSONField).

    For write-once documents that are never searched inside, such as an export's snapshots.
    `jsonb` parses every document into its binary form on the way in and prints it back on the
    way out; at 100,000 exports that was about a second of the database's CPU out of a first
    sync's thirteen (migration 0010). `json` only checks the text.

    The pipeline reads and writes these columns with its own SQL. Django's queries (key lookups
    in the admin, the API and tests, exact matches, ordering) see the column as `jsonb`
    (column::jsonb), so every JSONField lookup keeps working."""

    def get_col(self, alias, output_field=None):
        if output_field is None or output_field == self:
            return _JsonbCol(alias, self)
        return super().get_col(alias, output_field)

    @cached_property
    def cached_col(self):
        return _JsonbCol(self.model._meta.db_table, self)

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def from_db_value(self, value, expression, connection):
        # Text, as core.apps has psycopg load `json`; a connection without that hook hands over
        # the value psycopg decoded itself.
        if value is not None and not isinstance(value, str):
            return value
        return super().from_db_value(value, expression, connection)


class _JsonbCol(Col):
    """A SnapshotJSONField column as Django's queries use it: cast to `jsonb` on PostgreSQL."""

    def as_sql(self, compiler, connection):
        sql, params = super().as_sql(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{sql}::jsonb", params
        return sql, params


class TransactionNow(Now):
    """The transaction's start time on PostgreSQL (its now()), where Django's Now() is the
    statement's. A value inserted with this default carries the same instant as everything
    else its transaction wrote with `SELECT now()` (core.engine.imports.import_batch)."""

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="TRANSACTION_TIMESTAMP()", **extra_context)
