"""Run schedules in the foreground: import, groups, exports, with a progress bar and a summary.

    manage.py run_schedule [ID ...] [--all] [--full] [--no-export] [--export-wait SECONDS]

IDs are schedule ids (or source names). Exits non-zero when a run fails. A run another process
is working on (an overlapping cron start) is reported and left to it, with exit status 0.

Each run ends once its records, groups and exports are written. Then the command sends what
the runs left pending, destination by destination, for at most --export-wait seconds in all
(300 by default): sending, and waiting for retries, throttled destinations and exports another
worker holds. No batch starts after that (the one in hand finishes). What is still pending is
named per destination; the worker's clock (manage.py qcluster) or the next run_schedule sends
it. This is not a failure.

SIGTERM or Ctrl-C (SIGINT) stops after the batch in hand: the run is released, not left for
its lease to expire, and the command exits with 128 + the signal number; run it again to
resume. A second signal stops at once.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.choices import ACTIVE_RUN_STATES, RunCreator, RunState
from core.engine import runs
from core.engine.delivery import DrainReport, exports_drain
from core.engine.pipeline import finish_senders
from core.engine.runs import run_process
from core.models import Destination, Run, Schedule
from core.services.runs import run_create


def _bar(run: Run, width: int = 30) -> str:
    filled = int(width * run.percent_complete / 100)
    return f"[{'#' * filled}{'.' * (width - filled)}] {run.percent_complete:3d}%"


class Command(BaseCommand):
    help = "Run schedules now, in the foreground, and print a summary."
    # An operational command run by cron and scripts: Django's system checks (every admin,
    # every URL) would add most of a second to each start; `manage.py check` runs them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", help="Schedule ids or source names")
        parser.add_argument("--all", action="store_true", help="Every schedule")
        parser.add_argument("--full", action="store_true", help="Ignore the high watermark and read everything")
        parser.add_argument("--no-export", action="store_true", help="Import, compute groups and queue exports, but send nothing (the worker sends them later)")
        parser.add_argument(
            "--export-wait", type=float, default=300.0, metavar="SECONDS",
            help="After the runs, send pending exports for at most this long in all, waiting for "
            "retries and throttled destinations, then leave the rest to the worker (default 300; "
            "0: send nothing more)",
        )

    def handle(self, *args, **options):
        if threading.current_thread() is not threading.main_thread():
            return self._handle(*args, **options)
        received: list[int] = []

        def on_signal(signum, frame):
            if received:  # the second signal: stop now (the run resumes after its lease)
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            received.append(signum)
            runs.request_stop()

        runs.clear_stop()
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._handle(*args, **options)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            runs.clear_stop()
        if received:
            name = signal.Signals(received[0]).name
            self.stderr.write(f"Stopped by {name}; run the command again to resume.")
            sys.exit(128 + received[0])

    def _handle(self, *args, ids, all, full, no_export, export_wait, **options):
        if export_wait < 0:
            raise CommandError("--export-wait takes a number of seconds, 0 or more.")
        schedules = self._schedules(ids, all)
        failed = False
        finished: list[Run] = []
        for schedule in schedules:
            if runs.stop_requested():
                break
            run = self._run(schedule, full=full, export=not no_export)
            if run is None:
                continue
            finished.append(run)
            if runs.stop_requested():
                self.stdout.write(f"  interrupted: run {run.pk} released after its last committed batch")
                break
            if run.state != RunState.COMPLETE:
                failed = True
        if not no_export and finished and not runs.stop_requested():
            self._send(finished, export_wait)
        finish_senders()  # a sender still on its batch in hand records its outcomes first
        if failed and not runs.stop_requested():  # a stop reports itself (exit 128 + signal)
            raise CommandError("At least one run did not complete.")

    def _schedules(self, ids: list[str], all: bool) -> list[Schedule]:
        schedules = list(Schedule.objects.select_related("source").order_by("source__is_primary", "pk").reverse())
        if not all:
            if not ids:
                raise CommandError("Name schedules by id or source name, or pass --all.")
            wanted = []
            for ident in ids:
                match = [s for s in schedules if str(s.pk) == ident or s.source.name == ident]
                if not match:
                    raise CommandError(f"No schedule {ident!r} (give a schedule id or a source name).")
                wanted.extend(match)
            schedules = wanted
        # Primary sources first: secondary sources enrich records the primary ones create.
        schedules.sort(key=lambda s: (not s.source.is_primary, s.pk))
        return schedules

    def _run(self, schedule: Schedule, *, full: bool, export: bool) -> Run | None:
        """One schedule's run, to its end; None when another process holds it."""
        interactive = sys.stdout.isatty()
        run, created = run_create(
            source=schedule.source, schedule=schedule, creator_type=RunCreator.MANUAL,
            full=full, export=export, enqueue=False,
        )
        if not created:
            self.stdout.write(f"{schedule.source.name}: run {run.pk} is already active; resuming it if abandoned")
        started = time.monotonic()

        def progress(r: Run, name=schedule.source.name):
            line = f"{name}: {_bar(r)} {r.rows_read} rows, {r.exports_sent} exports sent"
            if interactive:
                self.stdout.write("\r" + line, ending="")
                self.stdout.flush()

        run = run_process(run.pk, progress=progress)
        if interactive:
            self.stdout.write("")
        if run.state in ACTIVE_RUN_STATES and not runs.stop_requested():
            # Another process claimed it first (even one that found the run this process
            # created): that process reports it; leaving it alone is not a failure here.
            self.stdout.write(f"{schedule.source.name}: run {run.pk} is already active in another process; left to it")
            return None
        self.stdout.write(self._summary(schedule, run, time.monotonic() - started))
        return run

    def _send(self, finished: list[Run], wait: float) -> None:
        """Send what the runs left pending (and anything else their destinations have due)."""
        models = {r.source.model_id for r in Run.objects.filter(pk__in=[r.pk for r in finished]).select_related("source")}
        destinations = list(Destination.objects.filter(model_id__in=models).order_by("pk"))
        if not destinations:
            return
        interactive = sys.stdout.isatty()
        started = time.monotonic()

        def progress(report: DrainReport):
            if interactive:
                self.stdout.write(f"\rsending: {report.sent} exports sent, {report.failed} failed", ending="")
                self.stdout.flush()

        report = exports_drain(
            destination_ids=[d.pk for d in destinations], wait_seconds=wait,
            should_stop=runs.stop_requested, progress=progress,
        )
        if interactive:
            self.stdout.write("")
        self.stdout.write(
            f"exports: {report.sent} sent, {report.failed} failed in {time.monotonic() - started:.1f}s"
            + (f" (of which {report.waited:.0f}s waiting for retries)" if report.waited >= 1 else "")
        )
        now = timezone.now()
        for p in report.pending:
            due = (
                f", next due {p.next_due:%Y-%m-%d %H:%M:%S} UTC"
                if p.next_due and p.next_due > now else ", due now"
            )
            self.stdout.write(
                f"  still pending: {p.name}: {p.count} exports{due}; the worker (manage.py qcluster) "
                "or the next run_schedule sends them"
            )
        for run in finished:
            run.refresh_from_db()
            self.stdout.write(
                f"{self._name(run)}: run {run.pk} {run.outcome}: exports created {run.exports_created}, "
                f"sent {run.exports_sent}, failed {run.exports_failed}"
            )

    @staticmethod
    def _name(run: Run) -> str:
        return run.source.name if run.source_id else f"run {run.pk}"

    def _summary(self, schedule: Schedule, run: Run, elapsed: float) -> str:
        lines = [
            f"{schedule.source.name}: run {run.pk} {run.outcome} in {elapsed:.1f}s",
            f"  rows read {run.rows_read}, records created {run.records_created}, updated {run.records_updated}, "
            f"invalid {run.records_invalid}, skipped {run.records_skipped}, merged {run.records_merged}, "
            f"deleted {run.records_deleted}",
            f"  group memberships changed {run.groups_changed}; exports created {run.exports_created}, "
            f"sent so far {run.exports_sent}, failed {run.exports_failed}",
        ]
        if run.error:
            lines.append(f"  error: {run.error}")
        for message, count in sorted((run.errors or {}).items(), key=lambda kv: -kv[1])[:10]:
            lines.append(f"  {count} × {message}")
        return "\n".join(lines)
