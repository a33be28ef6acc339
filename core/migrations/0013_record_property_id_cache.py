# Each value row of a first sync took its id from the identity sequence one nextval() at a time:
# a shared buffer lock per row and a WAL record every 32 rows. With a cache of 1,000, a
# connection takes ids a thousand at a time (an insert of 1,000,000 rows: 2.96 -> 2.72 CPU-s of
# PostgreSQL, medians of 3). Ids stay unique; they are no longer in insertion order across
# connections and a connection that ends leaves a gap, which nothing reads them for (values are
# ordered and found by record, property and position). PostgreSQL only: SQLite has no sequences.

from django.db import migrations

CACHE = 1000


def set_cache(size):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE core_recordproperty ALTER COLUMN id SET CACHE {size}")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0012_export_queue_in_claim_order"),
    ]

    operations = [
        migrations.RunPython(set_cache(CACHE), set_cache(1)),
    ]
