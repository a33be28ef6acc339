"""`manage.py load_demo`: the demo shop and CRM databases plus a configuration using every concept.

Idempotent: the SQLite files under var/demo/ are written only when missing (`--reset` rewrites
them), and configuration objects are created only when no object of that name exists. See
core/demo.py for what is created.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.demo import demo_load


class Command(BaseCommand):
    help = "Create the demo databases (var/demo/) and the demo configuration, if not there yet."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dir", default=None, help="Where the demo SQLite files live (default: var/demo)."
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Rewrite the demo shop and CRM databases (the CRM loses what syncs wrote to it).",
        )

    def handle(self, *args, dir: str | None = None, reset: bool = False, **options) -> None:
        try:
            result = demo_load(directory=dir, reset=reset)
        except ValidationError as exc:
            raise CommandError(
                f"The demo configuration could not be created: {'; '.join(exc.messages)}"
            ) from exc
        if result.databases_created:
            self.stdout.write(f"Wrote the demo shop database {result.paths.shop}")
            self.stdout.write(f"Wrote the empty demo CRM database {result.paths.crm}")
        created = sum(result.created.values())
        if created:
            detail = ", ".join(
                f"{count} {label}" for label, count in sorted(result.created.items())
            )
            self.stdout.write(
                self.style.SUCCESS(f"Demo configuration: created {created} objects ({detail}).")
            )
        else:
            self.stdout.write("Demo configuration already loaded; nothing to do.")
        if result.api_key:
            self.stdout.write(f"Demo API key (read records; shown only once): {result.api_key}")
        self.stdout.write("Sync it with: manage.py run_schedule --all (make run does this next)")
