"""Make the database match a directory of config files.

    manage.py apply [DIR] [--plan] [--allow-js]

Everything happens in one transaction: the files' objects are created and updated in dependency
order, and objects earlier applies created that the files no longer hold are deleted. With
`--plan`, prints what would be created, updated and deleted and changes nothing. Applying the
same files twice changes nothing the second time and says so. API keys created without an
`apiKey` in their file are minted and printed once. `.js` files are run only with --allow-js
(or GROUPAROO_CONFIG_ALLOW_JS=true), as for validate. Exits non-zero on any error.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.config.apply import config_apply, config_directory
from core.config.problems import ConfigError


class Command(BaseCommand):
    help = "Apply config files (Grouparoo format): create, update and delete to match them."

    def add_arguments(self, parser):
        parser.add_argument("directory", nargs="?", help="The config directory")
        parser.add_argument(
            "--plan", action="store_true", help="Print what would change, change nothing"
        )
        parser.add_argument(
            "--allow-js",
            action="store_true",
            help="Run .js config files with Node.js (they are programs: only for files you trust)",
        )

    def handle(self, *args, directory=None, plan=False, allow_js=False, **options):
        path = config_directory(directory)
        try:
            result = config_apply(directory=path, plan_only=plan, allow_js=allow_js or None)
        except ConfigError as exc:
            for problem in exc.problems:
                self.stderr.write(f"error: {problem}")
            raise CommandError(f"{path}: {exc.summary}") from None
        for problem in result.warnings:
            self.stdout.write(f"warning: {problem}")
        lines = result.plan.lines()
        if plan and not result.plan.empty:
            self.stdout.write(f"Plan for {path} (nothing has been changed):")
        for line in lines[:-1]:
            self.stdout.write(f"  {line}")
        if result.plan.empty:
            self.stdout.write(self.style.SUCCESS(lines[-1]))
            return
        if plan:
            self.stdout.write(lines[-1])
            return
        p = result.plan
        self.stdout.write(
            self.style.SUCCESS(
                f"Applied: {len(p.creates)} created, {len(p.updates)} updated, "
                f"{len(p.deletes)} deleted, {len(p.unchanged)} unchanged."
            )
        )
        for config_id, key in sorted(result.api_keys.items()):
            self.stdout.write(
                f'API key "{config_id}": {key} — copy it now, it is stored only as a hash and '
                f"will not be shown again."
            )
        if result.runs:
            self.stdout.write(
                f"Started {len(result.runs)} run(s) for the changes: {', '.join(map(str, result.runs))}."
            )
