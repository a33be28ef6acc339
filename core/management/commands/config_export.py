"""Write the configuration held by the database as config files.

    manage.py config_export DIR [--force]

The files use the format `apply` reads; exporting, applying the export to an empty database and
exporting again gives identical files. Secrets are written as `env:NAME` references (the command
lists the variables to set); API keys without their key. DIR must hold no config files unless
`--force` is given.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.config.export import config_export


class Command(BaseCommand):
    help = "Export the configuration from the database as config files (Grouparoo format)."

    def add_arguments(self, parser):
        parser.add_argument("directory", help="Where to write the files")
        parser.add_argument(
            "--force", action="store_true", help="Write into a directory that holds config files"
        )

    def handle(self, *args, directory, force=False, **options):
        try:
            result = config_export(directory=directory, force=force)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for warning in result.warnings:
            self.stdout.write(f"warning: {warning}")
        for file, key, variable in result.secrets:
            self.stdout.write(
                f"secret: {file}: {key} is written as env:{variable}; set {variable} where the server runs"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {result.objects} object(s) in {len(result.files)} file(s) to {directory}."
            )
        )
