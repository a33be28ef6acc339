"""Run orchestration: import batches, recompute groups, build exports, finish.

A run is claimed with a conditional UPDATE (pending -> running, or running with an expired or
released lease -> running, taken over). Each batch commits its data together with the run's
cursor and counters, so a run interrupted at any point resumes after its last committed batch.
The schedule's high watermark moves only when the whole run has read everything. A run is
complete once its records, groups and exports are written; sending them is the destinations'
own queue (core/engine/delivery.py), so a slow destination never holds back a source.

Faults: a lost application-database connection (or another transient database error) rolls back
the batch in hand; the worker reconnects and resumes after the last committed batch, a few times
with backoff. A stop request (`request_stop`, which the SIGTERM/SIGINT handlers of `run_schedule`
and `process_run` call) is honoured between batches: the batch in hand finishes, the run's lease
is released (heartbeat cleared) and the run stays running for the next worker to resume at once.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from connectors import registry
from connectors.base import ConnectorError
from core.choices import ACTIVE_RUN_STATES, RecordState, RunCreator, RunPhase, RunState
from core.engine import db
from core.engine.exports import destination_plans, exports_build, fresh_snapshots
from core.engine.groups import (
    GroupChanges,
    group_finish,
    memberships_leave,
    memberships_update,
    model_groups,
)
from core.engine.imports import (
    import_batch,
    prepare_batch,
    property_spec,
    read_columns,
    source_plan,
)
from core.engine.pipeline import ConcurrentSender, ReadAhead
from core.engine.record_inputs import bind_records
from core.engine.scope import ConfigChanged, RunScope
from core.models import Destination, Group, Import, Record, Run, Schedule, Source
from core.services.runs import run_create
from core.settings_registry import setting_number

logger = logging.getLogger(__name__)

Progress = Callable[[Run], None]


class RunStopped(Exception):
    """The run was stopped (or taken over) while this worker held it."""


class RunInterrupted(Exception):
    """This process was asked to stop (request_stop): leave the run for another worker."""


# Set by a signal handler (SIGTERM/SIGINT), read between batches. A plain flag: the handler must
# not take locks, and the loops only need to see it at their next batch boundary.
_stop_requested = False

# A lost application-database connection is retried this many times, sleeping DB_RETRY_BASE *
# 2**attempt seconds between attempts (0.5, 1, 2, 4, 8: about 15 s in all).
DB_RETRIES = 5
DB_RETRY_BASE = 0.5


def request_stop() -> None:
    """Ask this process's run loops to stop after the batch in hand. Safe in a signal handler."""
    global _stop_requested
    _stop_requested = True


def clear_stop() -> None:
    global _stop_requested
    _stop_requested = False


def stop_requested() -> bool:
    return _stop_requested


def _check_stop() -> None:
    if _stop_requested:
        raise RunInterrupted


def _sleep(seconds: float) -> None:
    """Sleep, waking early when a stop is requested."""
    deadline = time.monotonic() + seconds
    while not _stop_requested and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(0.1, left))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_seconds() -> float:
    return setting_number("runs-lease-seconds")


def run_claim(run_id: int) -> bool:
    """Take the run: pending -> running, or running with an expired lease (its worker died)."""
    now = timezone.now()
    stale = now - timedelta(seconds=lease_seconds())
    claimed = Run.objects.filter(pk=run_id, state=RunState.PENDING).update(
        state=RunState.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        released = Run.objects.filter(
            pk=run_id, state=RunState.RUNNING, heartbeat_at__isnull=True
        ).update(heartbeat_at=now)
        if released:
            logger.info("run %s: released by its last worker, resumed by %s", run_id, worker_name())
            return True
        claimed = Run.objects.filter(
            pk=run_id, state=RunState.RUNNING, heartbeat_at__lt=stale
        ).update(heartbeat_at=now)
        if claimed:
            logger.warning("run %s: lease expired, taken over by %s", run_id, worker_name())
    return bool(claimed)


def run_release(run_id: int) -> bool:
    """Give the run up without finishing it: it stays running, with no lease (heartbeat cleared),
    so the next claim (a restarted `run_schedule`, the clock's re-drive) resumes it at once."""
    return bool(
        Run.objects.filter(pk=run_id, state=RunState.RUNNING).update(heartbeat_at=None)
    )


def runs_abandoned() -> Q:
    """Running runs that no worker holds: lease expired or released."""
    stale = timezone.now() - timedelta(seconds=lease_seconds())
    return Q(state=RunState.RUNNING) & (Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True))


def run_add_errors(run_id: int, errors: dict[str, int]) -> None:
    """Aggregate error messages on the run (message -> count). Caller holds the transaction."""
    if not errors:
        return
    run = Run.objects.select_for_update().only("errors", "error").get(pk=run_id)
    merged = dict(run.errors or {})
    for message, count in errors.items():
        merged[message[:500]] = merged.get(message[:500], 0) + count
    if len(merged) > 100:  # keep the most frequent messages
        merged = dict(sorted(merged.items(), key=lambda kv: -kv[1])[:100])
    Run.objects.filter(pk=run_id).update(errors=merged)


def _beat(run: Run, **counters) -> None:
    """Commit progress together with the batch: conditional on the run still being ours."""
    updates = {k: F(k) + v for k, v in counters.items() if v}
    updated = Run.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
        heartbeat_at=timezone.now(), **updates
    )
    if not updated:
        raise RunStopped(f"run {run.pk} is no longer running")


def watermark_signature(source: Source) -> str:
    """Changes when anything that decides which rows a schedule reads changes."""
    schedule = getattr(source, "schedule", None)
    payload = {
        "source": source.options,
        "type": source.type,
        "mapping": list(source.mappings.values_list("remote_key", "property_id")),
        "schedule": schedule.options if schedule else None,
        "filters": [f.as_spec() for f in schedule.filters.all()] if schedule else [],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def run_process(run_id: int, *, progress: Progress | None = None) -> Run:
    """Do (or resume) the run's work. Safe to call twice and concurrently: only the claimer works.

    The run completes once its records, groups and exports are written; it does not wait for
    the destinations. Exports queued meanwhile are sent as its batches commit (on PostgreSQL)
    and, after it, per destination on their own (core/engine/delivery.py).

    A lost database connection rolls back the batch in hand and is retried here (reconnect,
    resume after the last committed batch), DB_RETRIES times per batch: a run that keeps
    committing batches keeps its budget. After `request_stop()` the run returns between
    batches with its lease released and its state still running.
    """
    run = Run.objects.get(pk=run_id)
    if run.state not in (RunState.PENDING, RunState.RUNNING) or not run_claim(run_id):
        return Run.objects.get(pk=run_id)
    retries = _BatchRetries(run)
    while True:
        try:
            with batch_collector():
                _run_work(run, progress)
            break
        except (OperationalError, InterfaceError) as exc:
            # Inside a caller's transaction there is nothing to resume from: let it fail.
            if connection.in_atomic_block:
                _fail_logged(run, exc)
                raise
            connection.close()
            if _refreshed(run):
                retries.saw(run)
            if retries.exhausted():
                _fail_logged(run, exc)
                raise
            delay = retries.next_delay()
            logger.warning(
                "run %s: application database error (%s); batch rolled back, retrying in %.1fs "
                "(attempt %s of %s for this batch)",
                run_id,
                type(exc).__name__,
                delay,
                retries.attempt,
                DB_RETRIES,
            )
            _sleep(delay)
            if _refreshed(run) and run.state != RunState.RUNNING:
                break
        except RunInterrupted:
            run_release(run.pk)
            logger.warning(
                "run %s: stop requested; released after its last committed batch", run_id
            )
            break
        except (KeyboardInterrupt, SystemExit):
            # Killed mid-batch (a task timeout, a forced exit): the batch rolled back; give the
            # run back so it resumes without waiting for the lease (best effort).
            try:
                run_release(run.pk)
            except Exception:
                pass
            raise
    _start_follow_up(run_id)
    _start_calculations(run_id)
    return Run.objects.get(pk=run_id)


def _start_calculations(run_id: int) -> None:
    """A source's run that completed having created or changed records starts a run of each
    source of the model computed from the records (calculated properties), so their values
    follow what was imported (Grouparoo computed them with every import of a record)."""
    run = Run.objects.select_related("source").get(pk=run_id)
    changed = run.records_created or run.records_updated or run.records_merged
    if run.source is None or run.state != RunState.COMPLETE or not changed:
        return
    computed = []
    for source in Source.objects.filter(model_id=run.source.model_id):
        try:
            if registry.get_source(source.type).reads_records:
                computed.append(source)
        except registry.UnknownConnector:
            continue
    if run.source in computed:
        return  # this run computed values from the records: nothing follows from it
    for source in computed:
        if source.mappings.exists():
            run_create(source=source, creator_type=RunCreator.PROPERTY, full=True)


def _start_follow_up(run_id: int) -> None:
    """The full run of the source that was asked for while this one was active (a property
    changed meanwhile: this run may have read with the old one), once this one has ended."""
    if not Run.objects.filter(pk=run_id, follow_up_full=True).exclude(state__in=ACTIVE_RUN_STATES).update(
        follow_up_full=False
    ):
        return
    ended = Run.objects.select_related("source", "schedule").get(pk=run_id)
    if ended.source is not None:
        follow, _ = run_create(
            source=ended.source, schedule=ended.schedule, creator_type=RunCreator.PROPERTY, full=True
        )
        logger.info("run %s: ended; the full run asked for meanwhile is run %s", run_id, follow.pk)


def _refreshed(run: Run) -> bool:
    """Reload the run; False (connection closed again) while the database is unreachable."""
    try:
        run.refresh_from_db()
    except (OperationalError, InterfaceError):
        connection.close()
        return False
    return True


class _BatchRetries:
    """The budget of database retries, counted per batch: it starts again whenever the run
    has committed something since the last failure (a batch, a phase)."""

    def __init__(self, run: Run):
        self.attempt = 0
        self.mark = self._progress(run)

    @staticmethod
    def _progress(run: Run) -> tuple:
        return (run.phase, run.batches_done, run.rows_read, run.records_deleted, run.cursor)

    def saw(self, run: Run) -> None:
        mark = self._progress(run)
        if mark != self.mark:
            self.mark, self.attempt = mark, 0

    def exhausted(self) -> bool:
        return self.attempt >= DB_RETRIES

    def next_delay(self) -> float:
        delay = DB_RETRY_BASE * 2**self.attempt
        self.attempt += 1
        return delay


# Python's cyclic garbage collector during a run: a young collection after 50,000 new container
# objects (not 700) and a full one rarely. A batch allocates millions of short-lived tuples,
# lists and dicts, freed by reference counting; with the default thresholds, collections walking
# every object still alive were a sixth of a first sync's Python time (100k in-process: run
# process 12.3 -> 10.3 CPU-s, 19.8 -> 18.5 s wall, medians of 3).
BATCH_GC_THRESHOLD = (50_000, 20, 1000)


@contextmanager
def batch_collector() -> Iterator[None]:
    """The garbage collector tuned for batch work (BATCH_GC_THRESHOLD), restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(*BATCH_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _run_work(run: Run, progress: Progress | None) -> None:
    run_id = run.pk
    run.refresh_from_db()
    try:
        if run.phase in (RunPhase.IMPORTING, RunPhase.PROCESSING):
            if run.source_id:
                _import_source(run, progress)
            elif run.group_id:
                _recompute_group(run, progress)
            elif run.destination_id:
                _export_destination_everything(run, progress)
        run_complete(run_id)
    except RunStopped:
        logger.info("run %s stopped", run_id)
    except ConfigChanged as exc:
        logger.warning("run %s stopped: %s", run_id, exc)
        _fail(run, str(exc), RunState.STOPPED)
    except ConnectorError as exc:
        _fail(run, exc.message)
    except (OperationalError, InterfaceError, RunInterrupted):
        raise  # run_process retries or releases
    except Exception as exc:
        _fail_logged(run, exc)
        raise


def _fail_logged(run: Run, exc: Exception) -> None:
    logger.exception("run %s failed", run.pk)
    try:
        _fail(run, f"{type(exc).__name__}: {exc}")
    except (OperationalError, InterfaceError):
        # The database is unreachable: the run stays running and is re-driven after its lease.
        connection.close()


def _fail(run: Run, message: str, state: str = RunState.FAILED) -> None:
    """End a running run with `message` (failed, or stopped when `state` says so)."""
    Run.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
        state=state, error=message[:2000], completed_at=timezone.now()
    )


def _import_source(run: Run, progress: Progress | None) -> None:
    source = Source.objects.select_related("app", "model").get(pk=run.source_id)
    schedule = Schedule.objects.filter(source=source).prefetch_related("filters").first()
    plan = source_plan(source)
    groups = model_groups(source.model_id)
    dplans = destination_plans(source.model_id)
    batch_size = settings.GROUPAROO_BATCH_SIZE
    source_cls = registry.get_source(source.type)
    enrichers = _enrichers(plan) if plan.creates_records else []
    scope = RunScope.of(
        sources=[source, *(oplan.source for oplan, _, _ in enrichers)],
        properties=[
            *plan.written_properties,
            *(p for oplan, _, _ in enrichers for p in oplan.written_properties),
        ],
        groups=[g for g, _ in groups],
        destinations=[p.destination for p in dplans],
    )
    covered = _secondary_watermarks(run, plan, enrichers)
    # Send while importing (PostgreSQL): see core/engine/pipeline.py.
    sender = ConcurrentSender(run.pk, [p.destination.pk for p in dplans] if run.export else [])
    try:
        with sender:
            _import_loop(
                run, source, schedule, plan, groups, dplans, batch_size, source_cls, enrichers,
                progress, sender, scope,
            )
    finally:
        for _, _, conn in enrichers:
            conn.close()
    for other_schedule, other_source, mark in covered:
        # The first sync enriched every record from these sources: their first run need not
        # read everything again, only what changed since this run started.
        Schedule.objects.filter(pk=other_schedule.pk, high_watermark__isnull=True).update(
            high_watermark=mark, watermark_signature=watermark_signature(other_source)
        )
    Run.objects.filter(pk=run.pk, state=RunState.RUNNING).update(phase=RunPhase.PROCESSING)
    if (
        schedule
        and schedule.confirm_records
        and plan.creates_records
        and run.starting_watermark is None
        and not plan.filters
    ):
        _delete_unconfirmed(run, source, groups, dplans, scope)
    if schedule:
        run.refresh_from_db(fields=["source_signature"])
        Schedule.objects.filter(pk=schedule.pk).update(
            high_watermark=run.high_watermark,
            # What the run read with, not what the source says now: changed meanwhile, the
            # next run's signature differs and it reads everything again.
            watermark_signature=run.source_signature or watermark_signature(source),
            last_run_at=timezone.now(),
        )


def _secondary_watermarks(run: Run, plan, enrichers) -> list[tuple[Schedule, Source, object]]:
    """On a model's very first sync (no records yet, a fresh run), every record the run creates
    is enriched from the secondary sources as it is created. Capture those sources' watermarks
    now, before reading, so their schedules can start from here afterwards."""
    if not enrichers or run.batches_done or run.cursor is not None:
        return []
    if Record.objects.filter(model_id=plan.model_id).exists():
        return []
    out = []
    for oplan, _specs, conn in enrichers:
        other_schedule = Schedule.objects.filter(source=oplan.source, high_watermark__isnull=True).first()
        if other_schedule is None or not oplan.watermark_column or oplan.filters:
            continue
        mark = conn.max_watermark(watermark_column=oplan.watermark_column, filters=oplan.filters)
        if mark is not None:
            out.append((other_schedule, oplan.source, mark))
    return out


def _enrichers(plan):
    """Secondary sources whose aggregates new records need at once (a new customer with no
    purchases has purchase_count 0, not nothing): (plan, specs, open connector) for each source
    of the model keyed by a property this source writes."""
    written = {p.pk: p for p in [plan.key_property, *plan.row_properties]}
    out = []
    for other in (
        Source.objects.filter(model_id=plan.model_id)
        .exclude(pk=plan.source.pk)
        .select_related("app")
    ):
        try:
            oplan = source_plan(other)
        except ValueError:
            continue
        cls = registry.get_source(other.type)
        if (
            oplan.creates_records
            or not oplan.aggregate_properties
            or oplan.key_property.pk not in written
            or cls.reads_records  # computed from the records once written: _start_calculations
        ):
            continue
        conn = cls(other.app.connector_options(), other.connector_options())
        out.append((oplan, [property_spec(p) for p in oplan.aggregate_properties], conn))
    return out


def _enrichment_keys(plan, oplan, rows) -> list:
    prop = oplan.key_property
    column = plan.key_column if prop.pk == plan.key_property.pk else prop.options.get("column")
    return [r.get(column) for r in rows if r.get(column) is not None]


def _enrichment_aggregates(plan, enrichers, rows, fragments: bool) -> list[tuple]:
    """Each enricher's (keys, aggregates, prepared batch) for these rows (read ahead for a
    whole page)."""
    out = []
    for oplan, specs, conn in enrichers:
        keys = _enrichment_keys(plan, oplan, rows)
        aggregates = (
            conn.aggregate(
                properties=specs,
                key_column=oplan.key_column,
                key_property=oplan.key_property.key,
                keys=keys,
            )
            if keys
            else {}
        )
        prepared = prepare_batch(
            plan=oplan,
            rows=[{oplan.key_column: k} for k in keys],
            aggregates=aggregates,
            fragments=fragments,
        )
        out.append((keys, aggregates, prepared))
    return out


def _enrich_new_records(
    plan, enrichers, created: set[int], created_keys_rows, read_ahead: list[tuple] | None = None
):
    """Compute secondary-source properties of this batch's new records; returns BatchResults.
    read_ahead: _enrichment_aggregates() of a superset of these rows, if already read."""
    results = []
    for i, (oplan, specs, conn) in enumerate(enrichers):
        keys = _enrichment_keys(plan, oplan, created_keys_rows)
        if not keys:
            continue
        prepared = None
        if read_ahead is not None:
            read_keys, aggregates, read_prepared = read_ahead[i]
            # Keys without purchases are absent, as when read here. The rows prepared ahead
            # serve as they are when every key of the page created its record.
            if read_keys == keys:
                prepared = read_prepared
        else:
            aggregates = conn.aggregate(
                properties=specs,
                key_column=oplan.key_column,
                key_property=oplan.key_property.key,
                keys=keys,
            )
        results.append(
            import_batch(
                plan=oplan,
                rows=[{oplan.key_column: k} for k in keys],
                aggregates=aggregates,
                fresh=created,
                prepared=prepared,
            )
        )
    return results


def _import_loop(
    run, source, schedule, plan, groups, dplans, batch_size, source_cls, enrichers, progress, sender,
    scope,
):
    with source_cls(source.app.connector_options(), source.connector_options()) as connector:
        reads_records = bind_records(connector, plan.key_property)
        if run.batches_done == 0 and run.cursor is None:
            # First batch: fix what this run reads (>= the stored watermark) and what it will store.
            signature = watermark_signature(source)
            since = None
            if schedule and schedule.incremental and not run.full and plan.watermark_column:
                if schedule.watermark_signature == signature:
                    since = schedule.high_watermark
            high = None
            if plan.watermark_column:
                high = connector.max_watermark(
                    watermark_column=plan.watermark_column, filters=plan.filters
                )
            total = connector.count(
                watermark_column=plan.watermark_column if since is not None else None,
                since=since,
                filters=plan.filters,
            )
            keyless = _keyless_rows(connector, plan, since)
            with transaction.atomic():
                Run.objects.filter(pk=run.pk).update(
                    starting_watermark=since,
                    high_watermark=high,
                    rows_total=max(0, total - keyless),
                    source_signature=signature,
                )
                if keyless:  # set, not added: this step runs again if the first batch did not commit
                    locked = Run.objects.select_for_update().only("errors").get(pk=run.pk)
                    errors = dict(locked.errors or {})
                    errors[f"{plan.key_column}: no value; row skipped"] = keyless
                    Run.objects.filter(pk=run.pk).update(errors=errors)
            run.refresh_from_db()
        sender.start(max(0, (run.rows_total or 0) - run.rows_read))
        since = run.starting_watermark
        agg_specs = [property_spec(p) for p in plan.aggregate_properties]
        fragments = db.is_postgres()
        columns = read_columns(plan) if plan.creates_records else [plan.key_column]

        def pages():
            """The source's pages from the run's cursor on, read and prepared (ReadAhead)."""
            after = run.cursor
            while True:
                page = connector.read_batch(
                    key_column=plan.key_column,
                    columns=columns,
                    watermark_column=plan.watermark_column if since is not None else None,
                    since=since,
                    after=after,
                    limit=batch_size,
                    filters=plan.filters,
                    distinct_keys=not plan.creates_records,
                )
                if not page.rows:
                    return
                aggregates = {}
                if agg_specs:
                    keys = [r[plan.key_column] for r in page.rows if r.get(plan.key_column) is not None]
                    aggregates = connector.aggregate(
                        properties=agg_specs,
                        key_column=plan.key_column,
                        key_property=plan.key_property.key,
                        keys=keys,
                    )
                prepared = prepare_batch(
                    plan=plan, rows=page.rows, aggregates=aggregates, fragments=fragments
                )
                # While pages create most of the records they read (a first sync), read the
                # secondary sources' aggregates for the whole page here too.
                enriched = (
                    _enrichment_aggregates(plan, ahead_enrichers, page.rows, fragments)
                    if enrichers and created_share[0] >= 0.5
                    else None
                )
                yield page, aggregates, prepared, enriched
                if len(page.rows) < batch_size:
                    return
                after = page.cursor

        # The share of the last written page's rows that created records (written by this
        # thread, read by the reader).
        created_share = [
            0.0 if not enrichers or Record.objects.filter(model_id=plan.model_id).exists() else 1.0
        ]
        # The reader has connections of its own to the secondary sources: this thread may be
        # enriching a page through the run's while the reader reads ahead.
        ahead_enrichers = [
            (oplan, specs, registry.get_source(oplan.source.type)(
                oplan.source.app.connector_options(), oplan.source.connector_options()
            ))
            for oplan, specs, _conn in enrichers
        ]
        # While every page creates a record for each of its keys (a first sync, from an empty
        # model on), the next is expected to as well: its keys and unique values are not looked
        # up, the unique index checks them (import_batch's assume_new).
        all_new = plan.creates_records and not Record.objects.filter(model_id=plan.model_id).exists()
        try:
            # A source computed from the records reads them on this thread, in the run's transaction.
            with nullcontext(pages()) if reads_records else ReadAhead(pages) as read_ahead:
                for page, aggregates, prepared, enriched in read_ahead:
                    _check_stop()
                    created = _import_page(
                        run, source, plan, groups, dplans, enrichers, progress,
                        page, aggregates, prepared, enriched, assume_new=all_new, scope=scope,
                    )
                    created_share[0] = created / max(len(page.rows), 1)
                    all_new = plan.creates_records and created == len(prepared.by_key) > 0
                    if len(page.rows) < batch_size:
                        break
        finally:
            for _, _, conn in ahead_enrichers:
                conn.close()


def _keyless_rows(connector, plan, since) -> int:
    """How many rows this run's read leaves out for having no value in the key column (a
    source's read_batch never returns them), so the run can say so: 0 where the connector
    cannot count them."""
    try:
        return connector.count(
            watermark_column=plan.watermark_column if since is not None else None,
            since=since,
            filters=[*plan.filters, {"key": plan.key_column, "op": "notExists", "match": None}],
        )
    except (ConnectorError, ValueError, NotImplementedError) as exc:
        logger.info("source %s: rows without a key not counted (%s)", plan.source.name, exc)
        return 0


def _import_page(
    run, source, plan, groups, dplans, enrichers, progress, page, aggregates, prepared, enriched,
    assume_new: bool = False, scope: RunScope | None = None,
) -> int:
    """Write one page in one transaction: records and values, groups, exports, progress.
    Returns the number of records it created.

    assume_new: every key of the page is expected to be new (see import_batch); if one is not,
    the page is written again, looking keys up."""
    with transaction.atomic():
        if scope is not None:
            scope.hold()
        # A first sync's page: the secondary sources' rows, prepared ahead for every key of
        # the page, are written with it when every key creates its record.
        with_fresh = [
            (oplan, read[2])
            for (oplan, _specs, _conn), read in zip(enrichers, enriched or (), strict=False)
            if oplan.key_property.pk == plan.key_property.pk
        ]
        if len(with_fresh) != len(enrichers):
            with_fresh = []

        def write(assume_new: bool):
            result = import_batch(
                plan=plan,
                rows=page.rows,
                aggregates=aggregates,
                prepared=prepared,
                with_fresh=with_fresh,
                defer=True,
                assume_new=assume_new,
            )
            snapshots = None
            try:
                # While the database writes the new records' values: their export snapshots.
                changed_records = set(result.changed) | result.merged_into
                changed_props = set().union(*result.changed.values()) if result.changed else set()
                fresh_values = None
                if db.is_postgres() and result.created:
                    fresh_values = {rid: result.fresh_values.get(rid, {}) for rid in result.created}
                    if dplans and result.pending is not None and (result.enriched or not enrichers):
                        snapshots = fresh_snapshots(dplans, fresh_values)
            finally:
                result.settle()
            return result, snapshots, changed_records, changed_props, fresh_values

        if assume_new:
            try:
                with transaction.atomic():  # a savepoint: the unique index checks the assumption
                    written = write(assume_new=True)
            except IntegrityError:
                # Some key or unique value was held after all (a source row seen before, a
                # record another source created): the page again, looking everything up.
                logger.info(
                    "run %s: the page after cursor %r holds keys or unique values already taken; "
                    "written again with lookups", run.pk, run.cursor,
                )
                written = write(assume_new=False)
        else:
            written = write(assume_new=False)
        result, snapshots, changed_records, changed_props, fresh_values = written
        if enrichers and result.created and not result.enriched:
            new_rows = result.created_rows
            for extra in _enrich_new_records(
                plan, enrichers, result.created, new_rows, read_ahead=enriched
            ):
                changed_records |= set(extra.changed)
                for pids in extra.changed.values():
                    changed_props |= pids
                if fresh_values is not None:
                    for rid, by_prop in extra.fresh_values.items():
                        if rid in fresh_values:
                            fresh_values[rid] = {**fresh_values[rid], **by_prop}
        if result.merged_into:
            changed_props = None  # a merge can change anything
        gchanges = memberships_update(
            groups=groups,
            record_ids=sorted(changed_records),
            changed_properties=changed_props,
            new_records=result.created,
        )
        exported = 0
        if dplans:
            fresh_members = None
            if fresh_values is not None:
                # Records created by this page are members of what they joined just now, only.
                fresh_members = {rid: set() for rid in fresh_values}
                for gid, joined in gchanges.joined.items():
                    for rid in joined:
                        if rid in fresh_members:
                            fresh_members[rid].add(gid)
            exported = exports_build(
                model_id=source.model_id,
                record_ids=sorted(changed_records | gchanges.records),
                run_id=run.pk,
                plans=dplans,
                fresh_values=fresh_values,
                snapshots=snapshots,
                fresh_members=fresh_members,
            )
        batch_no = run.batches_done + 1
        Import.objects.create(
            run=run,
            source=source,
            batch=batch_no,
            rows_read=len(page.rows),
            records_created=len(result.created),
            records_updated=len(set(result.changed) - result.created),
            records_skipped=result.skipped,
            record_ids=result.record_ids,
            watermark_from=run.cursor,
            watermark_to=page.cursor,
        )
        run_add_errors(run.pk, result.errors)
        read = run.rows_read + len(page.rows)
        percent = min(89, int(90 * read / run.rows_total)) if run.rows_total else 0
        _beat(
            run,
            rows_read=len(page.rows),
            records_created=len(result.created),
            records_updated=len(set(result.changed) - result.created),
            records_invalid=len(result.invalid_records & set(result.changed)),
            records_skipped=result.skipped,
            records_merged=result.merged,
            groups_changed=gchanges.count,
            exports_created=exported,
            batches_done=1,
        )
        Run.objects.filter(pk=run.pk).update(cursor=page.cursor, percent_complete=percent)
    run.refresh_from_db()
    db.analyze_hot_tables(run.batches_done)
    if progress:
        progress(run)
    return len(result.created)


def _delete_unconfirmed(run: Run, source: Source, groups, dplans, scope: RunScope) -> None:
    """After a full read of a record-creating source: records it no longer has are deleted."""
    seen: set[int] = set()
    for ids in Import.objects.filter(run=run, source=source).values_list("record_ids", flat=True):
        seen.update(ids)
    plan_key = source.mappings.values_list("property_id", flat=True).first()
    candidates = set(
        Record.objects.filter(model_id=source.model_id)
        .exclude(state=RecordState.DELETED)
        .filter(properties__property_id=plan_key, properties__unique_value__isnull=False)
        .values_list("pk", flat=True)
    )
    gone = sorted(candidates - seen)
    step = settings.GROUPAROO_BATCH_SIZE
    for i in range(0, len(gone), step):
        _check_stop()
        chunk = gone[i : i + step]
        with transaction.atomic():
            scope.hold()
            Record.objects.filter(pk__in=chunk).update(
                state=RecordState.DELETED, updated_at=timezone.now()
            )
            changes = memberships_leave(record_ids=chunk)
            exported = (
                exports_build(
                    model_id=source.model_id, record_ids=chunk, run_id=run.pk, plans=dplans
                )
                if dplans
                else 0
            )
            _beat(
                run,
                records_deleted=len(chunk),
                groups_changed=changes.count,
                exports_created=exported,
            )


def _recompute_group(run: Run, progress: Progress | None) -> None:
    """Recompute one group over its model's records, in id ranges, exporting what changed."""
    group = Group.objects.get(pk=run.group_id)
    groups = [(g, specs) for g, specs in model_groups(group.model_id) if g.pk == group.pk]
    dplans = destination_plans(group.model_id)
    scope = RunScope.of(groups=[g for g, _ in groups], destinations=[p.destination for p in dplans])
    step = settings.GROUPAROO_BATCH_SIZE
    ids = Record.objects.filter(model_id=group.model_id).order_by("pk").values_list("pk", flat=True)
    total = ids.count()
    Run.objects.filter(pk=run.pk).update(rows_total=total)
    last = run.cursor or 0
    done = run.rows_read
    while True:
        _check_stop()
        chunk = list(ids.filter(pk__gt=last)[:step])
        if not chunk:
            break
        with transaction.atomic():
            scope.hold()
            if groups:
                changes = memberships_update(
                    groups=groups,
                    record_ids=[],
                    changed_properties=None,
                    id_range=(chunk[0], chunk[-1]),
                )
            else:  # the group was deleted: everyone leaves
                changes = GroupChanges()
            exported = 0
            if dplans and changes.records:
                exported = exports_build(
                    model_id=group.model_id,
                    record_ids=sorted(changes.records),
                    run_id=run.pk,
                    plans=dplans,
                )
            done += len(chunk)
            _beat(
                run,
                rows_read=len(chunk),
                groups_changed=changes.count,
                exports_created=exported,
                batches_done=1,
            )
            Run.objects.filter(pk=run.pk).update(
                cursor=chunk[-1], percent_complete=min(89, int(90 * done / max(total, 1)))
            )
        last = chunk[-1]
        run.refresh_from_db()
        if progress:
            progress(run)
    group_finish(group)


def _export_destination_everything(run: Run, progress: Progress | None) -> None:
    """A destination's mapping or tracked collection changed: re-evaluate every record."""
    destination = Destination.objects.get(pk=run.destination_id)
    dplans = [
        p for p in destination_plans(destination.model_id) if p.destination.pk == destination.pk
    ]
    scope = RunScope.of(destinations=[destination])
    step = settings.GROUPAROO_BATCH_SIZE
    ids = (
        Record.objects.filter(model_id=destination.model_id)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    last = run.cursor or 0
    while True:
        _check_stop()
        chunk = list(ids.filter(pk__gt=last)[:step])
        if not chunk:
            break
        with transaction.atomic():
            scope.hold()
            exported = (
                exports_build(
                    model_id=destination.model_id, record_ids=chunk, run_id=run.pk, plans=dplans
                )
                if dplans
                else 0
            )
            _beat(run, rows_read=len(chunk), exports_created=exported, batches_done=1)
            Run.objects.filter(pk=run.pk).update(cursor=chunk[-1])
        last = chunk[-1]


def run_complete(run_id: int) -> bool:
    """Mark a running run complete: its records, groups and exports are written (a run left in
    the exporting phase by an earlier version completes here too). Its exports are sent on
    their own; the run's export counters go on counting them."""
    return bool(
        Run.objects.filter(pk=run_id, state=RunState.RUNNING).update(
            state=RunState.COMPLETE,
            phase=RunPhase.DONE,
            percent_complete=100,
            completed_at=timezone.now(),
        )
    )
