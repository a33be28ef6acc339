"""manage.py soak --minutes 30: recurring schedules with real workers against a mutating source
and flaky destinations; then checks that the destinations equal the source and nothing is stuck.

Needs its own, freshly migrated PostgreSQL application database (`make soak` makes one): it
starts `manage.py qcluster` workers that share it. Exits non-zero on any mismatch. See
core/soak.py for what is mutated, which faults are injected and what is checked.
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, reset_queries

from core import soak


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Soak test: recurring schedules, a mutating source, flaky destinations, real workers; then a check."

    def add_arguments(self, parser):
        parser.add_argument("--minutes", type=float, default=30.0, help="how long to mutate and sync (default 30)")
        parser.add_argument("--seconds", type=float, default=None, help="the same in seconds (overrides --minutes)")
        parser.add_argument("--rows", type=int, default=500, help="source rows at the start")
        parser.add_argument("--rate", type=float, default=5.0, help="source mutations per second")
        parser.add_argument("--workers", type=int, default=2, help="qcluster worker processes")
        parser.add_argument("--tick-seconds", type=float, default=5.0, help="how often the clock ticks")
        parser.add_argument("--full-every", type=float, default=300.0, help="seconds between full runs (0: only the final one)")
        parser.add_argument("--drain-seconds", type=float, default=600.0, help="how long the final drain may take")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--workdir", default=None, help="where the source file and the worker log go")

    def handle(self, *args, **opts):
        if connection.vendor != "postgresql":
            raise CommandError(
                "The soak runs worker processes beside this one on the application database: point DATABASE_URL "
                "at a fresh PostgreSQL database (make soak does)."
            )
        if settings.Q_CLUSTER.get("sync"):
            raise CommandError("The soak needs real workers: set Q_SYNC=false.")
        from core.models import App, Record

        if App.objects.exists() or Record.objects.exists():
            raise CommandError("The soak needs an empty, freshly migrated application database (make soak makes one).")
        seconds = opts["seconds"] if opts["seconds"] is not None else opts["minutes"] * 60
        seed = opts["seed"] if opts["seed"] is not None else random.randrange(1_000_000)
        workdir = Path(opts["workdir"] or tempfile.mkdtemp(prefix="grouparoo-soak-"))
        workdir.mkdir(parents=True, exist_ok=True)
        source_path = workdir / "source.sqlite3"
        source_path.unlink(missing_ok=True)
        rng = random.Random(seed)
        out = self.stdout
        logging.getLogger("django-q").setLevel(logging.WARNING)  # not a line per enqueued task

        last_stamp = soak.source_create(source_path, opts["rows"], rng)
        receiver = soak.Receiver(faults=soak.Faults(), seed=seed + 1)
        server = receiver.serve()
        world = soak.world_create(source_path=source_path, port=server.server_address[1])
        soak.tune_settings(max_attempts=10, retry_base_seconds=1)
        mutator = soak.Mutator(source_path, rate=opts["rate"], seed=seed + 2, last_stamp=last_stamp)
        worker = soak.worker_start(workdir / "worker.log", opts["workers"])
        out.write(
            f"soak: seed {seed}, {seconds:g} s, {opts['rows']} rows, {opts['rate']:g} mutations/s, "
            f"{opts['workers']} workers (log {workdir / 'worker.log'})"
        )
        started = time.monotonic()
        ok = False
        # SIGTERM (timeout, CI) unwinds like Ctrl-C, so the workers are stopped below.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            mutator.start()
            self._loop(world, worker, mutator, receiver, until=started + seconds, full_every=opts["full_every"],
                       tick=opts["tick_seconds"], started=started)
            mutator.stop()
            if mutator.error:
                raise CommandError(f"the mutator failed: {mutator.error!r}")
            truth = soak.source_truth(source_path)
            out.write(f"soak: mutations stopped after {time.monotonic() - started:.0f} s; draining")
            drain_started = time.monotonic()
            drained = self._drain(world, worker, receiver, deadline=drain_started + opts["drain_seconds"],
                                  tick=opts["tick_seconds"])
            ok = self._report(world, receiver, mutator, truth, drained, time.monotonic() - drain_started)
        finally:
            mutator.stop()
            soak.worker_stop(worker)
            server.shutdown()
        if not ok:
            sys.exit(1)

    def _tick(self, worker) -> None:
        from core.tasks import tick

        if worker.poll() is not None:
            raise CommandError(f"the qcluster worker exited with code {worker.returncode}; see its log")
        tick()
        reset_queries()

    def _loop(self, world, worker, mutator, receiver, *, until, full_every, tick, started) -> None:
        from core.models import Schedule
        from core.services.runs import run_enqueue

        schedule = Schedule.objects.get(pk=world.schedule_id)
        last_full = time.monotonic()
        last_report = time.monotonic()
        while time.monotonic() < until:
            self._tick(worker)
            if mutator.error:
                raise CommandError(f"the mutator failed: {mutator.error!r}")
            if full_every and time.monotonic() - last_full >= full_every:
                run = run_enqueue(schedule=schedule, full=True)
                if run.full:
                    last_full = time.monotonic()
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                self._progress(started, mutator, receiver)
            time.sleep(min(tick, max(0.0, until - time.monotonic())))

    def _progress(self, started, mutator, receiver) -> None:
        counts = soak.summary_counts()
        self.stdout.write(
            f"  {time.monotonic() - started:5.0f} s  mutations {dict(mutator.counts)}  runs {counts['runs']}  "
            f"exports {counts['exports']}  requests {receiver.counts['requests']}"
        )

    def _drain(self, world, worker, receiver, *, deadline, tick) -> bool:
        """A final full run (confirms deletions), then wait until no run or export is active."""
        from core.choices import ACTIVE_RUN_STATES, ExportState
        from core.models import Export, Run, Schedule
        from core.services.runs import run_enqueue

        schedule = Schedule.objects.get(pk=world.schedule_id)
        final = None
        while time.monotonic() < deadline:
            self._tick(worker)
            if final is None and not Run.objects.filter(state__in=ACTIVE_RUN_STATES).exists():
                final = run_enqueue(schedule=schedule, full=True)
                if not final.full:  # the clock started an incremental run first: wait for it
                    final = None
            elif final is not None:
                final.refresh_from_db()
                busy = (
                    Run.objects.filter(state__in=ACTIVE_RUN_STATES).exists()
                    or Export.objects.filter(state__in=[ExportState.PENDING, ExportState.PROCESSING]).exists()
                )
                if final.state not in ACTIVE_RUN_STATES and not busy:
                    return True
            time.sleep(min(tick, 1.0))
        return False

    def _report(self, world, receiver, mutator, truth, drained, drain_seconds) -> bool:
        out = self.stdout
        counts = soak.summary_counts()
        faults = {k.split(":", 1)[1]: v for k, v in receiver.counts.items() if k.startswith("fault:") and v}
        out.write(f"soak: drained in {drain_seconds:.0f} s" if drained else "soak: NOT drained before the deadline")
        out.write(f"  source: {len(truth)} rows at the end; mutations {dict(mutator.counts)}")
        out.write(f"  records: {counts['records']}")
        out.write(f"  runs: {counts['runs']} ({counts['full_runs']} full)")
        out.write(
            f"  exports: {counts['exports']}; {counts['exports_retried']} retried; {counts['attempts']} attempts"
        )
        out.write(
            f"  receiver: {receiver.counts['requests']} requests, faults {faults}, "
            f"{receiver.counts['applied']} records applied, {receiver.counts['rejected']} refused"
        )
        refused = {i for i in truth if i % soak.PICKY_MODULUS == 0}
        problems = []
        for path, name, skip in (("/steady", "soak-steady", set()), ("/picky", "soak-picky", refused)):
            store = receiver.stores.get(path, {})
            diff = soak.compare(truth, store, refused=skip)
            out.write(f"  {name}: {len(store)} records held; {'equal to the source' if not diff else 'MISMATCH'}")
            problems += [f"{name}: {d}" for d in diff]
        problems += soak.picky_problems(world, truth)
        problems += soak.history_problems(world)
        if not drained:
            problems.append("the queue did not drain before the deadline")
        if problems:
            for p in problems:
                out.write(f"  PROBLEM {p}")
            out.write(f"soak: FAILED ({len(problems)} problem(s))")
            return False
        out.write("soak: OK (destinations equal the source; no stuck work; refused records failed with the reason)")
        return True
