"""django-q2 entry points. Each takes ids, claims its work, calls the engine, and is safe to run
twice (at-least-once delivery). The one recurring schedule calls `tick` every minute."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.choices import ExportState, ObjectState, RunCreator, RunState
from core.models import Export, Group, Run

logger = logging.getLogger(__name__)

# The schedule rows' func strings; tests import each one.
TICK_FUNC = "core.tasks.tick"


def process_run(run_id: int) -> dict:
    """Do or resume a run, then queue a send for each destination it left exports for.

    A SIGTERM that reaches the worker process meanwhile (a service manager stopping every
    process of the cluster) stops the run after the batch in hand and releases it for the next
    worker (the clock re-drives it); then the signal takes its usual course (django-q2's
    workers exit). Without this, the worker would die mid-batch and the run would wait for its
    lease to expire."""
    import signal
    import threading

    from core.engine import runs
    from core.engine.pipeline import finish_senders

    if threading.current_thread() is not threading.main_thread():  # signals need the main thread
        run = runs.run_process(run_id)
        _queue_sends(run)
        finish_senders()
        return {"run": run.pk, "state": run.state}
    runs.clear_stop()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: runs.request_stop())
    try:
        run = runs.run_process(run_id)
        _queue_sends(run)
        finish_senders()  # the run is complete; its sender's batch in hand ends before the task
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        stopped = runs.stop_requested()
        runs.clear_stop()
    if stopped:
        signal.raise_signal(signal.SIGTERM)
    return {"run": run.pk, "state": run.state}


def _queue_sends(run: Run) -> None:
    """One send task per destination with exports of this finished run still to send: each
    destination's queue goes on at its own pace (a run with export=False leaves its exports
    to the clock)."""
    from django_q.tasks import async_task

    from core.engine.delivery import destinations_with_open_exports

    if run.state != RunState.COMPLETE or not run.export:
        return
    for did in destinations_with_open_exports(run_ids=[run.pk]):
        async_task(send_exports, did)  # the run's completion is committed: no on_commit


def send_exports(destination_id: int) -> dict:
    """Send every due export of a destination, batch after batch. Exports that are not due
    (retries, throttling) are left to the clock's next tick."""
    from core.engine.exports import exports_send

    sent = failed = 0
    while True:
        summary = exports_send(destination_id=destination_id)
        sent += summary.sent
        failed += summary.failed
        if not summary.claimed:
            break
    return {"destination": destination_id, "sent": sent, "failed": failed}


def enqueue_send(destination_id: int) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(send_exports, destination_id))


def tick() -> dict:
    """Every minute: start due schedules, re-drive abandoned runs, recompute relative-date
    groups, check app refresh queries, send due export retries. Each step claims with a
    conditional UPDATE, so two ticks at once do no duplicate work."""
    from core.services.schedules import app_refresh_queries_check, schedules_start_due

    started = schedules_start_due()
    refreshed = app_refresh_queries_check()
    groups = _relative_groups_due()
    abandoned = _redrive_abandoned_runs()
    due = Q(send_after__isnull=True) | Q(send_after__lte=timezone.now())
    destinations = (
        Export.objects.filter(due, state=ExportState.PENDING)
        .order_by()
        .values_list("destination_id", flat=True)
        .distinct()
    )
    for did in sorted(set(destinations)):
        enqueue_send(did)
    return {"started": started, "refreshed": refreshed, "groups": groups, "redriven": abandoned}


def _relative_groups_due() -> int:
    from core.services.groups import group_recompute_enqueue

    now = timezone.now()
    count = 0
    for group in Group.objects.filter(next_calculate_at__lte=now).exclude(
        state=ObjectState.DELETED
    ):
        # Claim: move next_calculate_at forward conditionally so two ticks start one recompute.
        if Group.objects.filter(pk=group.pk, next_calculate_at=group.next_calculate_at).update(
            next_calculate_at=None
        ):
            group_recompute_enqueue(group=group)
            count += 1
    return count


def _redrive_abandoned_runs() -> int:
    from django_q.tasks import async_task

    from core.engine.runs import lease_seconds, runs_abandoned

    stale = timezone.now() - timedelta(seconds=lease_seconds())
    ids = list(Run.objects.filter(runs_abandoned()).values_list("pk", flat=True)) + list(
        Run.objects.filter(state=RunState.PENDING, created_at__lt=stale).values_list(
            "pk", flat=True
        )
    )
    for run_id in ids:
        async_task(process_run, run_id)
    return len(ids)


__all__ = ["process_run", "send_exports", "tick", "enqueue_send", "RunCreator"]
