"""Run services: start runs (idempotently: one active run per source or group) and stop them."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.choices import ACTIVE_RUN_STATES, RunCreator, RunState
from core.models import Destination, Group, Property, Run, Schedule, Source


def _enqueue(run: Run) -> None:
    from django_q.tasks import async_task

    from core import tasks

    transaction.on_commit(lambda: async_task(tasks.process_run, run.pk, task_name=f"run-{run.pk}"))


def run_create(
    *,
    source: Source | None = None,
    group: Group | None = None,
    destination: Destination | None = None,
    creator_type: str = RunCreator.MANUAL,
    schedule: Schedule | None = None,
    property: Property | None = None,
    full: bool = False,
    export: bool = True,
    enqueue: bool = True,
    follow_up: bool = False,
) -> tuple[Run, bool]:
    """Create a pending run for a source (or a group recompute, or a destination re-export)
    unless one is already active for it. Returns (run, created). Idempotent: a second call while
    the first run is active returns that run. The task is enqueued after commit.

    follow_up (a full run of a source whose configuration changed): when a run of the source is
    already active, it may be reading with the old configuration, so a full run is started when
    it ends (Run.follow_up_full), however many times this is asked meanwhile."""
    active = Run.objects.filter(state__in=ACTIVE_RUN_STATES)
    if source is not None:
        active = active.filter(source=source)
    elif group is not None:
        active = active.filter(group=group, source__isnull=True)
    elif destination is not None:
        active = active.filter(destination=destination, source__isnull=True, group__isnull=True)
    existing = active.first()
    if existing:
        if follow_up and source is not None and full:
            # Not started yet: it reads with the new configuration, in full. Started: after it.
            if not Run.objects.filter(pk=existing.pk, state=RunState.PENDING).update(full=True):
                Run.objects.filter(pk=existing.pk, state__in=ACTIVE_RUN_STATES).update(follow_up_full=True)
        return existing, False
    try:
        with transaction.atomic():
            run = Run.objects.create(
                source=source,
                group=group,
                destination=destination,
                schedule=schedule,
                property=property,
                creator_type=creator_type,
                full=full,
                export=export,
            )
    except IntegrityError:  # another trigger won the race: one run, no duplicate work
        return active.first(), False
    if enqueue:
        _enqueue(run)
    return run, True


def run_enqueue(
    *,
    schedule: Schedule,
    full: bool = False,
    export: bool = True,
    creator_type: str = RunCreator.MANUAL,
) -> Run:
    """Start a run of the schedule's source (what the admin's "Run now" and the API call)."""
    run, _ = run_create(
        source=schedule.source,
        schedule=schedule,
        creator_type=creator_type,
        full=full,
        export=export,
    )
    return run


def run_stop(*, run: Run) -> bool:
    """Stop an active run. Its worker notices at the next batch boundary; committed batches stay."""
    return bool(
        Run.objects.filter(pk=run.pk, state__in=ACTIVE_RUN_STATES).update(
            state=RunState.STOPPED, completed_at=timezone.now(), error="stopped by a user"
        )
    )
