"""Print the state of the system: records, groups, export queues, active runs."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from core.selectors import status_summary


class Command(BaseCommand):
    help = "Records per model, groups with member counts, pending/failed exports per destination, active runs."

    def handle(self, *args, **options):
        s = status_summary()
        self.stdout.write("Records")
        for m in s["models"]:
            self.stdout.write(f"  {m['name']}: {m['records']} records ({m['invalid']} invalid, {m['deleted']} deleted)")
        self.stdout.write("Groups")
        for g in s["groups"]:
            self.stdout.write(f"  {g['model']} / {g['name']}: {g['members']} members")
        self.stdout.write("Destinations")
        for d in s["destinations"]:
            self.stdout.write(
                f"  {d['name']} ({d['sync_mode']}): {d['pending']} pending, {d['failed']} failed, {d['complete']} complete"
            )
        self.stdout.write("Active runs")
        if not s["active_runs"]:
            self.stdout.write("  none")
        for r in s["active_runs"]:
            self.stdout.write(f"  run {r['id']} ({r['creator']}, {r['target']}): {r['state']}/{r['phase']} {r['percent']}%")
