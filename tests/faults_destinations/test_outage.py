"""A destination that is down for a while (connection refused, then 503, then back) while another
destination of the same run is healthy: a real `manage.py run_schedule` worker on PostgreSQL.

PostgreSQL only: the application database is shared with the worker process."""
from __future__ import annotations

import pytest
from django.db import connection

from core import models as m
from core.choices import ExportState, RunState
from tests.faults_destinations.helpers import (
    Receiver,
    expected_row,
    make_world,
    run_schedule,
    setting,
    wait_for,
)

N = 120
BASE = 0.4  # exports-retry-base-seconds


def _unavailable(records):
    return 503, {}, b"down for maintenance"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_down_destination_retries_with_backoff_and_does_not_delay_the_other(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("shares the application database with a worker process: PostgreSQL only")
    flaky = Receiver()  # not listening yet: connection refused
    healthy = Receiver().start()
    world = make_world(tmp_path, N, [flaky.url, healthy.url], request_size=25)
    dflaky, dhealthy = world.destinations
    setting("exports-retry-base-seconds", str(BASE))
    setting("exports-max-attempts", "20")
    worker = run_schedule(world.schedule, tmp_path / "worker.log")
    snapshots: set[tuple] = set()

    def observe():
        # Every (export, attempts, delay) a pending retry of the flaky destination was given.
        for eid, attempts, after, updated, message in m.Export.objects.filter(
            destination=dflaky, state=ExportState.PENDING, attempts__gt=0
        ).values_list("id", "attempts", "send_after", "updated_at", "error_message"):
            snapshots.add((eid, attempts, (after - updated).total_seconds(), message))

    def flaky_failing(min_attempts: int):
        def check():
            observe()
            qs = m.Export.objects.filter(destination=dflaky)
            return qs.count() == N and not qs.filter(attempts__lt=min_attempts).exists()
        return check

    try:
        # 1. Refused: the healthy destination gets everything meanwhile, each record once.
        wait_for(flaky_failing(1), timeout=90, what="first refused attempts", procs=[worker])
        wait_for(lambda: m.Export.objects.filter(destination=dhealthy, state=ExportState.COMPLETE).count() == N,
                 timeout=30, what="the healthy destination", procs=[worker])
        assert not m.Export.objects.filter(destination=dflaky, state=ExportState.COMPLETE).exists()
        assert healthy.rows == {i: expected_row(i) for i in range(1, N + 1)}
        assert set(healthy.delivered_records().values()) == {1}
        assert set(m.Export.objects.filter(destination=dhealthy).values_list("attempts", flat=True)) == {1}
        wait_for(flaky_failing(2), timeout=30, what="second refused attempts", procs=[worker])
        refused = {msg for *_, msg in snapshots}
        assert refused and all(msg.startswith("Could not reach webhook http://127.0.0.1:") for msg in refused), refused
        # The run ended when its exports were written: the down destination is its own queue.
        run = m.Run.objects.get(source=world.source)
        assert run.state == RunState.COMPLETE

        # 2. Up but answering 503 (no Retry-After): still retried with backoff.
        flaky.behaviour = _unavailable
        flaky.start()
        wait_for(flaky_failing(4), timeout=60, what="503 attempts", procs=[worker])
        assert flaky.requests and {q.status for q in flaky.requests} == {503}

        # 3. Back: everything arrives.
        flaky.behaviour = lambda records: (200, {}, b"ok")
        assert worker.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
        flaky.stop()
        healthy.stop()

    run.refresh_from_db()
    assert run.state == RunState.COMPLETE and run.exports_sent == 2 * N and run.exports_failed == 0
    assert flaky.rows == {i: expected_row(i) for i in range(1, N + 1)}
    assert set(flaky.applied.values()) == {1} and len(flaky.applied) == N  # each export applied once
    exports = list(m.Export.objects.filter(destination=dflaky).values_list("id", "state", "attempts"))
    assert {state for _, state, _ in exports} == {ExportState.COMPLETE}
    assert min(a for *_, a in exports) >= 5  # 2 refused + 2 x 503 + the delivery, at least
    assert set(m.Export.objects.filter(destination=dhealthy).values_list("attempts", flat=True)) == {1}

    # Backoff: after the k-th failed attempt the export waits BASE * 2**(k-1) seconds ...
    assert snapshots
    for _eid, attempts, delay, _msg in snapshots:
        assert abs(delay - BASE * 2 ** (attempts - 1)) < 0.01, (attempts, delay)
    assert {a for _, a, _, _ in snapshots} >= {1, 2, 3, 4}
    # ... and the receiver saw no request before that wait was over.
    for eid, _state, attempts in exports:
        times = flaky.times_of(eid)
        first_attempt = attempts - len(times) + 1  # the attempts before the server was listening were refused
        for j in range(1, len(times)):
            waited = BASE * 2 ** (first_attempt + j - 2)
            assert times[j] - times[j - 1] >= waited - 0.05, (eid, j, times, waited)
