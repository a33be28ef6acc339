"""The setting records-default-country-code (Grouparoo's, default US): the country phone
numbers without an international prefix are read in. New databases get its row from 0002
(which creates a row per registered default); this adds it to existing ones."""

from django.db import migrations

KEY = "records-default-country-code"


def forwards(apps, schema_editor):
    Setting = apps.get_model("core", "Setting")
    Setting.objects.get_or_create(
        plugin="core",
        key=KEY,
        defaults={
            "value": "US",
            "type": "string",
            "title": "Default country code",
            "description": "The country (two letters: US, GB, FR...) in which phone numbers written "
            "without an international prefix (+) are read. Every phone number is stored and exported "
            "in international format (+1 412 888 9999); one that is not valid is flagged invalid.",
        },
    )


def backwards(apps, schema_editor):
    pass  # the row is harmless without the code that reads it


class Migration(migrations.Migration):
    dependencies = [("core", "0017_export_superseded_state")]
    operations = [migrations.RunPython(forwards, backwards)]
