"""A graceful shutdown: SIGTERM to a `run_schedule` worker in the middle of a 20,000-record run
finishes the batch in hand, releases the run at once (not after its lease) and exits promptly;
a restart completes the run exactly.

The lease is set to ten minutes here, so a restart that resumes at once proves the run was
released rather than abandoned.
"""
from __future__ import annotations

import signal
import time

import pytest

from core import models as m
from core.choices import ExportState, RunPhase, RunState
from tests.faults_process import world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Half the size of the SIGKILL tests' run: these faults need a run in progress, not a big one.
N = 10_000


def _long_lease() -> None:
    m.Setting.objects.update_or_create(
        plugin="core", key="runs-lease-seconds", defaults={"value": "600"}
    )


def _terminate(worker: world.Worker) -> float:
    """SIGTERM the worker; return how long it took to exit (it must exit with 128 + 15)."""
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    code = worker.wait(timeout=30)
    took = time.monotonic() - sent
    assert code == 128 + signal.SIGTERM, (code, worker.output()[-3000:])
    assert "Stopped by SIGTERM" in worker.output()
    return took


def test_sigterm_while_importing_releases_after_the_batch_in_hand(tmp_path):
    world.require_postgres()
    shop = world.big_shop(tmp_path, N)
    _long_lease()
    first = world.Worker(tmp_path, shop.users_schedule, "first")
    run = world.wait_until(
        lambda: (r := world.the_run(shop)) and r.batches_done >= 5 and r, worker=first
    )
    took = _terminate(first)
    assert took < 30, took  # the batch in hand, on a loaded machine; not the rest of the run
    run.refresh_from_db()
    # Released, not abandoned: still running, no lease held, only whole batches committed.
    assert run.state == RunState.RUNNING and run.phase == RunPhase.IMPORTING
    assert run.heartbeat_at is None
    assert 0 < run.rows_read < N
    assert run.rows_read == 500 * run.batches_done
    assert m.Import.objects.filter(run=run).count() == run.batches_done
    assert m.Record.objects.count() == run.rows_read
    # A restart resumes at once (the lease is ten minutes) and finishes exactly.
    second = world.Worker(tmp_path, shop.users_schedule, "second")
    assert second.wait(timeout=240) == 0, second.output()[-3000:]
    assert "released by its last worker, resumed" in second.output()
    world.assert_synced_exactly(shop, run, N)


def test_sigterm_while_exporting_records_the_batch_in_hand(tmp_path):
    """SIGTERM arrives while an export batch is in hand (the destination has it, its outcomes
    are being recorded: a trigger holds that for three seconds): the worker records it, then
    stops and releases the run."""
    world.require_postgres()
    shop = world.big_shop(tmp_path, N)
    _long_lease()
    env = {"FAULT_EXPORT_BATCH_SIZE": "200"}
    with world.Pause(*world.OUTCOMES_AFTER_2000, seconds=3) as pause:
        first = world.Worker(tmp_path, shop.users_schedule, "first", **env)
        world.wait_until(pause.backend, worker=first, timeout=180)
        took = _terminate(first)
    assert took < 30, took
    run = world.the_run(shop)
    assert run.state == RunState.RUNNING
    assert run.heartbeat_at is None
    exports = m.Export.objects.filter(run=run)
    # The batch in hand was sent and its outcomes recorded: nothing is left claimed, and the
    # destination has exactly what the run counts as sent.
    assert not exports.filter(state=ExportState.PROCESSING).exists()
    complete = exports.filter(state=ExportState.COMPLETE).count()
    assert 2000 < complete == run.exports_sent < N
    assert len(shop.dst_rows()) == complete
    second = world.Worker(tmp_path, shop.users_schedule, "second", **env)
    assert second.wait(timeout=240) == 0, second.output()[-3000:]
    assert "released by its last worker, resumed" in second.output()
    world.assert_synced_exactly(shop, run, N)
    run.refresh_from_db()
    assert run.exports_sent == N
    assert set(world.deliveries(shop).values()) == {1}  # nothing was sent twice


def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_sigterm_to_a_qcluster_stops_its_task_after_the_batch_in_hand(tmp_path):
    """A service manager stopping a `qcluster` signals every process of it (systemd's default
    KillMode=control-group). django-q2's sentinel then dies at once and its workers get SIGTERM
    mid-task: process_run finishes the batch in hand and releases the run before the worker
    exits, so nothing waits for the lease."""
    import os
    import re
    import subprocess
    import sys

    from django_q.models import Schedule as QSchedule
    from django_q.tasks import async_task

    from core.choices import RunCreator
    from core.services.runs import run_create
    from core.tasks import process_run

    world.require_postgres()
    shop = world.big_shop(tmp_path, N)
    _long_lease()
    QSchedule.objects.all().delete()  # only the task below: no clock ticking meanwhile
    run, _ = run_create(
        source=shop.users, schedule=shop.users_schedule, creator_type=RunCreator.MANUAL,
        enqueue=False,
    )
    async_task(process_run, run.pk, sync=False)  # into the ORM broker, for the cluster
    log = tmp_path / "qcluster.log"
    with open(log, "wb") as out:
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=world.ROOT,
            env=world.worker_env(Q_SYNC="false", Q_WORKERS="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            world.wait_until(
                lambda: m.Run.objects.get(pk=run.pk).batches_done >= 5,
                timeout=180,
                step=0.02,
            )
            found = re.search(r"ready for work at (\d+)", log.read_text(errors="replace"))
            assert found, log.read_text(errors="replace")
            worker_pid = int(found.group(1))
            sent = time.monotonic()
            os.killpg(cluster.pid, signal.SIGTERM)
            world.wait_until(lambda: _gone(worker_pid), timeout=30, step=0.05)
            took = time.monotonic() - sent
        finally:
            # django-q2's own processes may hang once the sentinel is gone (a service manager
            # would SIGKILL them after its grace period): what matters here is the worker.
            try:
                os.killpg(cluster.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            cluster.wait(timeout=30)
    output = log.read_text(errors="replace")
    assert took < 30, (took, output[-3000:])
    run.refresh_from_db()
    assert "stop requested; released" in output, output[-3000:]
    assert run.state == RunState.RUNNING and run.phase == RunPhase.IMPORTING, output[-3000:]
    assert run.heartbeat_at is None
    assert 0 < run.rows_read < N
    assert run.rows_read == 500 * run.batches_done
    assert m.Import.objects.filter(run=run).count() == run.batches_done
    second = world.Worker(tmp_path, shop.users_schedule, "second")
    assert second.wait(timeout=240) == 0, second.output()[-3000:]
    assert "released by its last worker, resumed" in second.output()
    world.assert_synced_exactly(shop, run, N)
