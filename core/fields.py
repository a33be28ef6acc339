"""Model fields. `EncryptedJSONField` keeps a dict encrypted at rest (a Fernet token in a TEXT column)."""
from __future__ import annotations

import json

from django.db import models

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
