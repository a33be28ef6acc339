"""`manage.py rotate_encryption_keys`: re-encrypt every stored secret under the newest key.

Rotation, step by step:

1. generate a new key; put it FIRST in FIELD_ENCRYPTION_KEYS, keeping the old ones after it
   (new,old: everything stays readable, new writes use the new key);
2. run this command: every EncryptedJSONField value of every model is re-encrypted under the
   newest key (MultiFernet.rotate), in one transaction;
3. remove the old key from FIELD_ENCRYPTION_KEYS.

The fields are found generically (every model field that is an EncryptedJSONField), so new
models with secrets are covered without touching this command. Tokens are read and written as
raw column text: values are decrypted only inside `crypto.rotate` and never leave it. The output
holds counts only. Running it twice is harmless (the second run re-encrypts under the same key).
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.db.models.functions import Cast

from core import crypto
from core.fields import EncryptedJSONField

_RAW = "_raw_token"


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedJSONField]]:
    """Every (model, field) pair whose field is an EncryptedJSONField, concrete models only."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedJSONField):
                found.append((model, field))
    return found


def rotate_field(model: type[models.Model], field: EncryptedJSONField) -> int:
    """Re-encrypt one field's stored tokens in place; returns how many rows were rewritten."""
    manager = model._base_manager
    # Cast to plain text so the field's from_db_value (which decrypts) is not applied.
    rows = (
        manager.select_for_update()
        .exclude(**{f"{field.attname}__isnull": True})
        .annotate(**{_RAW: Cast(field.attname, output_field=models.TextField())})
        .values_list("pk", _RAW)
    )
    rewritten = 0
    for pk, token in rows:
        if not token:
            continue
        try:
            new_token = crypto.rotate(token)
        except crypto.SecretUnavailable as exc:
            raise CommandError(
                f"{model._meta.label}.{field.name} of row {pk} cannot be decrypted with "
                "FIELD_ENCRYPTION_KEYS; nothing was changed. Put the key it was written with "
                "back into the list (after the newest) and run again."
            ) from exc
        # A Value with a plain TextField output bypasses the field's encryption on write.
        manager.filter(pk=pk).update(
            **{field.attname: models.Value(new_token, output_field=models.TextField())}
        )
        rewritten += 1
    return rewritten


class Command(BaseCommand):
    help = "Re-encrypt all encrypted secret options under the newest FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args, **options) -> None:
        crypto.get_fernet()  # fail early, with the configuration error, when the keys are bad
        total = 0
        with transaction.atomic():
            for model, field in encrypted_fields():
                count = rotate_field(model, field)
                total += count
                self.stdout.write(f"{model._meta.label}.{field.name}: {count} re-encrypted")
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {total} stored secret value(s) under the newest key.")
        )
