"""Export snapshots as PostgreSQL `json` instead of `jsonb` (core.fields.SnapshotJSONField).

One ALTER TABLE (one rewrite of the table) on PostgreSQL; other databases keep their column."""

from django.db import migrations

import core.fields

COLUMNS = ("old_properties", "new_properties", "old_groups", "new_groups")


def alter(to_type):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            clauses = ", ".join(f'ALTER COLUMN "{c}" TYPE {to_type}' for c in COLUMNS)
            schema_editor.execute(f'ALTER TABLE "core_export" {clauses}')

    return run



class Migration(migrations.Migration):

    dependencies = [
        ('core', '0009_record_model_without_fk_constraint'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(alter("json"), alter("jsonb"))],
            state_operations=[
                migrations.AlterField(
                    model_name='export',
                    name='new_groups',
                    field=core.fields.SnapshotJSONField(blank=True, default=list),
                ),
                migrations.AlterField(
                    model_name='export',
                    name='new_properties',
                    field=core.fields.SnapshotJSONField(blank=True, default=dict),
                ),
                migrations.AlterField(
                    model_name='export',
                    name='old_groups',
                    field=core.fields.SnapshotJSONField(blank=True, default=list),
                ),
                migrations.AlterField(
                    model_name='export',
                    name='old_properties',
                    field=core.fields.SnapshotJSONField(blank=True, default=dict),
                ),
            ],
        ),
    ]
