"""Two workers and two triggers of the same schedule at once: one run, no duplicate work.

Twice: two `manage.py run_schedule` processes started together; and two `manage.py qcluster`
workers fed by two simultaneous ticks plus a duplicate delivery of the run's task. The webhook
receiver counts what reaches the destination. PostgreSQL only: the application database is
shared with the worker processes."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from core import models as m
from core.choices import ExportState, RunState
from tests.faults_destinations.helpers import (
    ROOT,
    Receiver,
    expected_row,
    make_world,
    run_schedule,
    wait_for,
    worker_env,
)


def _pg_only():
    if connection.vendor != "postgresql":
        pytest.skip("shares the application database with worker processes: PostgreSQL only")


def _assert_one_run_and_no_duplicate_work(world, receiver, n: int, request_size: int) -> m.Run:
    runs = list(m.Run.objects.all())
    assert len(runs) == 1, runs
    run = runs[0]
    assert run.state == RunState.COMPLETE, (run.state, run.error)
    # Each source row imported once: one Import row per batch, batches 1..k, rows adding up to n.
    imports = list(m.Import.objects.filter(run=run).values_list("batch", "rows_read"))
    assert sorted(b for b, _ in imports) == list(range(1, len(imports) + 1))
    assert sum(r for _, r in imports) == n == run.rows_read
    assert (m.Record.objects.count(), run.records_created, run.records_updated) == (n, n, 0)
    # Each export built once and sent once.
    exports = m.Export.objects.filter(destination=world.destinations[0])
    assert exports.count() == n == run.exports_created == run.exports_sent
    assert set(exports.values_list("state", "attempts")) == {(ExportState.COMPLETE, 1)}
    sent = [r["export_id"] for q in receiver.requests for r in q.records]
    assert len(sent) == len(set(sent)) == n  # every export in exactly one request
    assert all(len(q.records) <= request_size for q in receiver.requests)
    assert set(receiver.applied.values()) == {1} and len(receiver.applied) == n
    assert set(receiver.delivered_records().values()) == {1} and len(receiver.delivered_records()) == n
    assert receiver.rows == {i: expected_row(i) for i in range(1, n + 1)}
    assert receiver.bad_signatures == 0
    return run


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_run_schedule_processes_at_once_make_one_run(tmp_path):
    _pg_only()
    n, size = 300, 25
    receiver = Receiver()
    receiver.gate.clear()  # hold the first delivery until both processes have shown their hand
    receiver.start()
    world = make_world(tmp_path, n, [receiver.url], request_size=size, timeout=30)
    workers = [run_schedule(world.schedule, tmp_path / f"worker{k}.log") for k in range(2)]
    try:
        # The one that did not get the run reports it as active elsewhere and leaves it alone.
        loser = wait_for(lambda: [k for k, w in enumerate(workers) if w.poll() is not None],
                         timeout=90, what="one worker to step aside", every=0.05)[0]
        winner = 1 - loser
        assert workers[winner].poll() is None
        receiver.gate.set()
        assert workers[winner].wait(timeout=90) == 0, (tmp_path / f"worker{winner}.log").read_text()
    finally:
        receiver.gate.set()
        for w in workers:
            if w.poll() is None:
                w.kill()
        receiver.stop()
    run = _assert_one_run_and_no_duplicate_work(world, receiver, n, size)
    out = (tmp_path / f"worker{loser}.log").read_text()
    assert f"run {run.pk} is already active in another process; left to it" in out, out
    assert workers[loser].returncode == 0, out  # an overlapping start is not a failure
    assert f"run {run.pk} complete" in (tmp_path / f"worker{winner}.log").read_text()


def _qcluster(log) -> subprocess.Popen:
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env=worker_env(Q_SYNC="false", Q_WORKERS="1"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_qcluster_workers_and_two_ticks_at_once_make_one_run(tmp_path, monkeypatch):
    _pg_only()
    from django_q.conf import Conf
    from django_q.models import Failure, Success
    from django_q.models import Schedule as QSchedule
    from django_q.tasks import async_task

    from core import tasks

    n, size = 300, 25
    receiver = Receiver()
    receiver.gate.clear()  # the worker holding the run waits at its first delivery
    receiver.start()
    world = make_world(tmp_path, n, [receiver.url], request_size=size, timeout=30)
    QSchedule.objects.all().delete()  # only this test's ticks trigger anything
    m.Schedule.objects.filter(pk=world.schedule.pk).update(
        recurring=True, recurring_frequency=3600, next_run_at=timezone.now() + timedelta(days=1))
    clusters = [_qcluster(tmp_path / f"cluster{k}.log") for k in range(2)]
    started: list[dict] = []
    try:
        wait_for(lambda: all("running" in (tmp_path / f"cluster{k}.log").read_text() for k in range(2)),
                 timeout=60, what="both clusters running", procs=clusters, every=0.1)
        m.Schedule.objects.filter(pk=world.schedule.pk).update(next_run_at=timezone.now())
        # Enqueue to the database broker (as in production) instead of running inline.
        monkeypatch.setattr(Conf, "SYNC", False)
        barrier = threading.Barrier(2)
        deliveries = [1]  # the run's task: enqueued once by the tick that started the run

        def trigger():
            try:
                barrier.wait(timeout=10)
                started.append(tasks.tick())
                run = m.Run.objects.filter(source=world.source).first()
                if run is not None:  # the broker delivers the run's task once more, at once
                    async_task(tasks.process_run, run.pk)
                    deliveries.append(1)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=trigger) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sum(s["started"] for s in started) == 1, started
        run = m.Run.objects.get(source=world.source)
        # While one worker holds the run (its first delivery waits at the receiver), the other
        # worker gets a duplicate delivery of the run's task and must return without working.
        # (Which cluster fetches which task is up to the broker: deliver again until one is done.)
        # Deliver until each cluster has taken a task: django-q2's pusher may prefetch several
        # deliveries into the cluster that already holds the run.
        done = Success.objects.filter(func="core.tasks.process_run")

        def both_clusters_worked():
            return all("processing" in (tmp_path / f"cluster{k}.log").read_text() for k in range(2))

        for _ in range(60):
            try:
                wait_for(lambda: done.exists() and m.Export.objects.filter(state=ExportState.PROCESSING).exists()
                         and both_clusters_worked(),
                         timeout=1, what="a duplicate delivery handled while the run is held", procs=clusters,
                         every=0.1)
                break
            except AssertionError:
                async_task(tasks.process_run, run.pk)
                deliveries.append(1)
        assert done.exists(), "no duplicate delivery was handled while the run was held"
        assert len(receiver.requests) == 0 and not m.Export.objects.filter(state=ExportState.COMPLETE).exists()
        receiver.gate.set()
        wait_for(lambda: m.Run.objects.filter(state=RunState.COMPLETE).exists()
                 and done.count() == len(deliveries), timeout=90, what="the run to complete", procs=clusters,
                 every=0.1)
    finally:
        receiver.gate.set()
        for c in clusters:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
        for c in clusters:
            try:
                c.wait(timeout=30)
            except subprocess.TimeoutExpired:
                c.kill()
        receiver.stop()
    _assert_one_run_and_no_duplicate_work(world, receiver, n, size)
    # Every delivery of the run's task succeeded (the extra ones by doing nothing), in both workers.
    assert not Failure.objects.exists()
    assert Success.objects.filter(func="core.tasks.process_run").count() == len(deliveries) >= 2
    for k in range(2):
        assert "processing" in (tmp_path / f"cluster{k}.log").read_text(), f"cluster {k} did no task"
