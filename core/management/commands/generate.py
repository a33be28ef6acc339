"""Write new config files from templates.

    manage.py generate --list
    manage.py generate TEMPLATE ID [--option value ...] [--dir DIR] [--force]

Examples:

    manage.py generate sqlite:app shop --path var/shop.sqlite3
    manage.py generate sqlite:table:source users --parent shop --mapping id=user_id \\
        --with-columns id,email,first_name --high-water-mark updated_at
    manage.py generate sqlite:table:source purchases --parent shop --with-columns '*' \\
        --mapping user_id=user_id

Batch generation: a table source is written with its schedule and one property file per column
(the columns listed, or every column of the live table with '*'). The directory is validated
afterwards and its problems printed; generated files pass `validate` as written.
"""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError

from core.config.apply import config_directory
from core.config.generate import TemplateError, config_generate, parse_params, templates
from core.config.validate import config_validate


class Command(BaseCommand):
    help = "Generate config files from templates (--list shows them)."

    def add_arguments(self, parser):
        parser.add_argument("template", nargs="?", help="The template (see --list)")
        parser.add_argument("id", nargs="?", help="The id of the new object")
        parser.add_argument(
            "--list",
            dest="show_list",
            action="store_true",
            help="List the templates and their options",
        )
        parser.add_argument("--dir", dest="config_dir", help="The config directory")
        parser.add_argument("--force", action="store_true", help="Overwrite existing files")
        parser.add_argument("params", nargs=argparse.REMAINDER, help="--option value ...")

    def handle(
        self,
        *args,
        template=None,
        id=None,
        show_list=False,
        config_dir=None,
        force=False,
        params=(),
        **options,
    ):
        if show_list or not template:
            for t in templates().values():
                self.stdout.write(f"{t.name}{'  (batch)' if t.batch else ''}")
                self.stdout.write(f"    {t.description}")
                self.stdout.write(f"    usage: generate {t.usage()}")
                for item in t.inputs:
                    default = f" (default {item.default})" if item.default is not None else ""
                    self.stdout.write(f"      --{item.name}: {item.help}{default}")
            if not show_list:
                raise CommandError(
                    "Name a template and an id (generate --list shows the templates)."
                )
            return
        if not id:
            raise CommandError(
                "Give the id of the new object: generate TEMPLATE ID [--option value ...]"
            )
        try:
            parsed = parse_params([str(p) for p in params or ()])
            # --dir and --force may come after the template's own options.
            config_dir = parsed.pop("dir", config_dir)
            force = force or parsed.pop("force", "") == "true"
            directory = config_directory(config_dir)
            result = config_generate(
                directory=directory, template=template, object_id=id, params=parsed, force=force
            )
        except TemplateError as exc:
            raise CommandError(str(exc)) from None
        for rel in result.files:
            self.stdout.write(self.style.SUCCESS(f"wrote {directory / rel}"))
        config = config_validate(directory=directory)
        for problem in config.problems.errors:
            self.stdout.write(f"error: {problem}")
        if config.problems.errors:
            self.stdout.write(
                f"{directory} has {len(config.problems.errors)} error(s) to fix before apply."
            )
        else:
            self.stdout.write(f"{directory} validates.")
