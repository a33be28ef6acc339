"""Sending a destination's queue after the runs that filled it, with a bounded wait.

A run ends once its records, groups and exports are written: it does not wait for a slow or
throttling destination, so the next run of its source can start at once, and a destination
that is down never holds back the others. What a run leaves pending is sent per destination:
by the send tasks the run's worker queues (`core.tasks.send_exports`), by the clock's retries
(`core.tasks.tick`), and, in the foreground, by `exports_drain`, which `run_schedule` calls
after its runs. Every sender claims exports exclusively (core.engine.exports.exports_send), so
any number of them may work one queue at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Min
from django.utils import timezone

from core.choices import ExportState
from core.engine.exports import exports_send
from core.models import Destination, Export

OPEN_STATES = (ExportState.PENDING, ExportState.PROCESSING)
# The longest nap between two looks at a queue whose next export is not due yet: a stop
# request, a retry that became due, another worker's lease ending are all seen this soon.
MAX_NAP_SECONDS = 5.0


@dataclass(frozen=True)
class PendingExports:
    """A destination's exports not sent yet: pending (due or waiting) and in flight."""

    destination_id: int
    name: str
    count: int
    next_due: datetime | None


@dataclass
class DrainReport:
    sent: int = 0
    failed: int = 0
    waited: float = 0.0
    pending: list[PendingExports] = field(default_factory=list)


def destinations_with_open_exports(*, run_ids: Iterable[int]) -> list[int]:
    """The destinations that still have exports of these runs to send."""
    return sorted(
        Export.objects.filter(run_id__in=list(run_ids), state__in=OPEN_STATES)
        .order_by()
        .values_list("destination_id", flat=True)
        .distinct()
    )


def pending_exports(destination_ids: Iterable[int]) -> list[PendingExports]:
    """Per destination with open exports: how many, and when the next one is due."""
    ids = list(destination_ids)
    if not ids:
        return []
    rows = (
        Export.objects.filter(destination_id__in=ids, state__in=OPEN_STATES)
        .order_by()
        .values("destination_id")
        .annotate(n=Count("id"), due=Min("send_after"))
    )
    names = dict(Destination.objects.filter(pk__in=ids).values_list("pk", "name"))
    return [
        PendingExports(r["destination_id"], names.get(r["destination_id"], "?"), r["n"], r["due"])
        for r in sorted(rows, key=lambda r: r["destination_id"])
    ]


def exports_drain(
    *,
    destination_ids: Iterable[int],
    wait_seconds: float,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[DrainReport], None] | None = None,
) -> DrainReport:
    """Send the destinations' due exports until none is open, destination after destination
    (a failing one does not stop the others), for at most `wait_seconds` in all: sending,
    waiting for retries and throttled exports that are not due yet, and for exports another
    worker holds. No batch starts after that (the one in hand finishes: a destination bounds
    how long one batch takes); what is still open is in `report.pending`, for the clock's
    retries. `should_stop` is asked between batches and naps. Safe to run concurrently with
    other senders and twice."""
    ids = sorted(set(destination_ids))
    report = DrainReport()
    deadline = time.monotonic() + max(0.0, wait_seconds)
    while ids and not should_stop():
        progressed = False
        for did in ids:
            while not should_stop() and time.monotonic() < deadline:
                summary = exports_send(destination_id=did)
                report.sent += summary.sent
                report.failed += summary.failed
                if not summary.claimed:
                    break
                progressed = True
                if progress:
                    progress(report)
        still = pending_exports(ids)
        left = deadline - time.monotonic()
        if not still or left <= 0:
            report.pending = still
            return report
        if progressed:
            continue
        nap = min(MAX_NAP_SECONDS, left, _seconds_until_due(still))
        _nap(nap, should_stop)
        report.waited += nap
    report.pending = pending_exports(ids)
    return report


def _seconds_until_due(pending: list[PendingExports]) -> float:
    """Until the earliest pending export is due (a short look when one already is, or when
    exports are only in flight with another worker)."""
    dues = [p.next_due for p in pending if p.next_due is not None]
    if not dues:
        return 0.2
    return max(0.05, (min(dues) - timezone.now()).total_seconds())


def _nap(seconds: float, should_stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not should_stop() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(0.1, left))
