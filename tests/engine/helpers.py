"""Helpers for engine tests: run a schedule in the foreground, as `run_schedule` does."""
from __future__ import annotations

from core.choices import RunCreator
from core.engine.runs import run_process
from core.models import Run, Schedule
from core.services.runs import run_create


def sync(schedule: Schedule, *, full: bool = False, export: bool = True) -> Run:
    run, _ = run_create(source=schedule.source, schedule=schedule, creator_type=RunCreator.MANUAL,
                        full=full, export=export, enqueue=False)
    return run_process(run.pk, wait_for_exports=True)


def sync_all(shop) -> list[Run]:
    return [sync(shop.users_schedule), sync(shop.purchases_schedule)]
