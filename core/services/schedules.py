"""Schedule services: which schedules are due, and App Refresh Queries."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from connectors import registry
from connectors.base import ConnectorError
from core.choices import ObjectState, RunCreator
from core.models import AppRefreshQuery, Schedule
from core.services.runs import run_create

logger = logging.getLogger(__name__)


def schedule_next_run_at(schedule: Schedule, *, after: datetime) -> datetime | None:
    if not schedule.recurring:
        return None
    if schedule.cron:
        from croniter import croniter

        return croniter(schedule.cron, after).get_next(datetime)
    return after + timedelta(seconds=schedule.recurring_frequency or 3600)


def schedules_start_due(*, now: datetime | None = None) -> int:
    """Start a run for every recurring schedule that is due. A schedule is claimed by moving its
    next_run_at forward with a conditional UPDATE, so concurrent ticks start it once."""
    now = now or timezone.now()
    started = 0
    due = Schedule.objects.filter(recurring=True, state=ObjectState.READY).select_related("source")
    for schedule in due:
        if schedule.next_run_at is None:
            # First sight of a schedule: due now.
            Schedule.objects.filter(pk=schedule.pk, next_run_at__isnull=True).update(
                next_run_at=now
            )
            schedule.next_run_at = now
        if schedule.next_run_at > now:
            continue
        claimed = Schedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
            next_run_at=schedule_next_run_at(schedule, after=now)
        )
        if claimed:
            _, created = run_create(
                source=schedule.source, schedule=schedule, creator_type=RunCreator.SCHEDULE
            )
            started += int(created)
    return started


def app_refresh_queries_check(*, now: datetime | None = None) -> int:
    """Run due refresh queries; when a value changed, start the app's refresh-enabled schedules."""
    now = now or timezone.now()
    started = 0
    for arq in AppRefreshQuery.objects.select_related("app").filter(state=ObjectState.READY):
        if (
            arq.last_checked_at
            and arq.last_checked_at + timedelta(seconds=arq.recurring_frequency) > now
        ):
            continue
        claimed = AppRefreshQuery.objects.filter(
            pk=arq.pk, last_checked_at=arq.last_checked_at
        ).update(last_checked_at=now)
        if not claimed:
            continue
        started += app_refresh_query_run(refresh_query=arq, now=now)
    return started


def app_refresh_query_run(*, refresh_query: AppRefreshQuery, now: datetime | None = None) -> int:
    """Run one refresh query now. Returns how many runs it started (0 when the value is unchanged)."""
    now = now or timezone.now()
    app = refresh_query.app
    try:
        value = registry.get_app(app.type)(app.connector_options()).refresh_query(
            refresh_query.query
        )
    except ConnectorError as exc:
        logger.warning("refresh query of app %s failed: %s", app.pk, exc.message)
        return 0
    value = None if value is None else str(value)
    if value == refresh_query.value:
        return 0
    first = refresh_query.last_changed_at is None and refresh_query.value is None
    AppRefreshQuery.objects.filter(pk=refresh_query.pk).update(value=value, last_changed_at=now)
    if first:
        return 0  # the first value is a baseline, not a change
    started = 0
    for schedule in Schedule.objects.filter(source__app=app, refresh_enabled=True).select_related(
        "source"
    ):
        _, created = run_create(
            source=schedule.source, schedule=schedule, creator_type=RunCreator.SCHEDULE
        )
        started += int(created)
    return started
