"""Helpers for engine tests: run a schedule in the foreground, as `run_schedule` does."""
from __future__ import annotations

from core.choices import RunCreator
from core.engine.delivery import exports_drain
from core.engine.pipeline import finish_senders
from core.engine.runs import run_process, stop_requested
from core.models import Destination, Run, Schedule
from core.services.runs import run_create

# Long enough for any retry a test world schedules; a test that waits this long has a bug.
SEND_WAIT_SECONDS = 60


def run_and_send(run_id: int, **kwargs) -> Run:
    """run_process, then send what the run's model's destinations have pending, waiting for
    retries, and wait for the run's own senders, as `run_schedule` does; returns the run as it
    is after sending."""
    run = run_process(run_id, **kwargs)
    model_id = run.source.model_id if run.source_id else (
        run.group.model_id if run.group_id else run.destination.model_id if run.destination_id else None
    )
    if run.export and model_id is not None:
        exports_drain(
            destination_ids=Destination.objects.filter(model_id=model_id).values_list("pk", flat=True),
            wait_seconds=SEND_WAIT_SECONDS,
            should_stop=stop_requested,
        )
    finish_senders()
    run.refresh_from_db()
    return run


def sync(schedule: Schedule, *, full: bool = False, export: bool = True) -> Run:
    run, _ = run_create(source=schedule.source, schedule=schedule, creator_type=RunCreator.MANUAL,
                        full=full, export=export, enqueue=False)
    return run_and_send(run.pk)


def sync_all(shop) -> list[Run]:
    return [sync(shop.users_schedule), sync(shop.purchases_schedule)]
