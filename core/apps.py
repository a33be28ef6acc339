from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _postgres_session(sender, connection, **kwargs) -> None:
    """Every new PostgreSQL connection of the application database:

    - `json` columns (core.fields.SnapshotJSONField) reach Python as text, as Django already has
      `jsonb` do: the field decodes it once, and raw SQL readers decode only what they use
      (psycopg's own json loader was about 1.5x slower on export snapshots);
    - no JIT compilation. The application's statements are short, batch-sized ones; a group
      rule's statement for a page of 5,000 records crosses jit_above_cost and was compiled each
      time, for longer (20-50 ms) than it ran (at N = 1,000,000, 200 of them)."""
    if connection.vendor == "postgresql":
        from psycopg.types.string import TextLoader

        connection.connection.adapters.register_loader("json", TextLoader)
        connection.connection.execute("SET jit = off")


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Grouparoo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        connection_created.connect(_postgres_session, dispatch_uid="core-postgres-session")
