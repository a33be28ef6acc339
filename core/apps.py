from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _json_as_text(sender, connection, **kwargs) -> None:
    """PostgreSQL `json` columns (core.fields.SnapshotJSONField) reach Python as text, as Django
    already has `jsonb` do: the field decodes it once, and raw SQL readers decode only what
    they use (psycopg's own json loader was about 1.5x slower on export snapshots)."""
    if connection.vendor == "postgresql":
        from psycopg.types.string import TextLoader

        connection.connection.adapters.register_loader("json", TextLoader)


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Grouparoo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        connection_created.connect(_json_as_text, dispatch_uid="core-json-as-text")
