"""Check a directory of config files without changing anything.

    manage.py validate [DIR] [--allow-js]

Prints every problem with its file, object id and key (warnings too), and exits non-zero when
there is any error. `.js` files are run (with Node.js) only with --allow-js or
GROUPAROO_CONFIG_ALLOW_JS=true; otherwise each is an error. DIR defaults to
GROUPAROO_CONFIG_DIR, else `config/` beside manage.py.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.config.apply import config_directory
from core.config.validate import config_validate


class Command(BaseCommand):
    help = "Validate config files (Grouparoo format) without changing anything."

    def add_arguments(self, parser):
        parser.add_argument("directory", nargs="?", help="The config directory")
        parser.add_argument(
            "--allow-js",
            action="store_true",
            help="Run .js config files with Node.js (they are programs: only for files you trust)",
        )

    def handle(self, *args, directory=None, allow_js=False, **options):
        path = config_directory(directory)
        config = config_validate(directory=path, allow_js=allow_js or None)
        for problem in config.problems.warnings:
            self.stdout.write(f"warning: {problem}")
        for problem in config.problems.errors:
            self.stderr.write(f"error: {problem}")
        summary = (
            f"{len(config.files)} file(s), {len(config.specs)} object(s), "
            f"{len(config.problems.errors)} error(s), {len(config.problems.warnings)} warning(s)"
        )
        if config.problems.errors:
            raise CommandError(f"{path}: invalid: {summary}")
        self.stdout.write(self.style.SUCCESS(f"{path}: valid: {summary}"))
