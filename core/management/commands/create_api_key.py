"""Create an API key and print it once: `manage.py create_api_key NAME [--read TOPIC...]
[--write TOPIC...] [--all-read] [--all-write] [--expires-in-days N]`.

The key is printed on stdout alone on its line (easy to capture in a script); it is stored only as
a hash and cannot be shown again. Topics are ApiTopic values (records, groups, apiKeys...);
`--read` and `--write` may be repeated and add up. What the key holds is printed on stderr.
Not idempotent by nature: every call mints a key; a second call with the same NAME fails.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from core.choices import ApiTopic
from core.services.api_keys import api_key_create, api_key_set_permissions


class Command(BaseCommand):
    help = "Create an API key with per-topic permissions and print it (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        topics = ", ".join(ApiTopic.values)
        parser.add_argument("name", help="A unique name for the key")
        parser.add_argument("--read", nargs="+", action="extend", default=[], metavar="TOPIC",
                            help=f"Topics the key may read ({topics})")
        parser.add_argument("--write", nargs="+", action="extend", default=[], metavar="TOPIC",
                            help="Topics the key may write (writing does not imply reading)")
        parser.add_argument("--all-read", action="store_true", help="Read every topic")
        parser.add_argument("--all-write", action="store_true", help="Write every topic")
        parser.add_argument("--expires-in-days", type=int, default=None, metavar="N",
                            help="The key stops working after N days")

    def handle(self, *args: Any, **options: Any) -> None:
        read, write = set(options["read"]), set(options["write"])
        unknown = sorted((read | write) - set(ApiTopic.values))
        if unknown:
            raise CommandError(
                f"Unknown topic(s): {', '.join(unknown)}. Known: {', '.join(ApiTopic.values)}."
            )
        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            with transaction.atomic():
                api_key, key = api_key_create(
                    name=options["name"],
                    permission_all_read=options["all_read"],
                    permission_all_write=options["all_write"],
                    expires_at=expires_at,
                )
                api_key_set_permissions(api_key=api_key, read=read, write=write)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stderr.write(
            f"API key “{api_key.name}” created. Copy it now: it is stored only as a hash and "
            f"will never be shown again. Send it as 'Authorization: Bearer <key>'."
        )
        self.stderr.write(f"It holds: {_describe(options['all_read'], options['all_write'], read, write)}.")
        self.stdout.write(key)


def _describe(all_read: bool, all_write: bool, read: set[str], write: set[str]) -> str:
    """The key's permissions in words: "read on every topic; write on groups, records"."""
    parts = []
    for flag, every, topics in (("read", all_read, read), ("write", all_write, write)):
        if every:
            parts.append(f"{flag} on every topic")
        elif topics:
            parts.append(f"{flag} on {', '.join(sorted(topics))}")
    return "; ".join(parts) or "no permissions"
