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
    shop = world.big_shop(tmp_path)
    _long_lease()
    first = world.Worker(tmp_path, shop.users_schedule, "first")
    run = world.wait_until(
        lambda: (r := world.the_run(shop)) and r.batches_done >= 5 and r, worker=first
    )
    took = _terminate(first)
    assert took < 10, took
    run.refresh_from_db()
    # Released, not abandoned: still running, no lease held, only whole batches committed.
    assert run.state == RunState.RUNNING and run.phase == RunPhase.IMPORTING
    assert run.heartbeat_at is None
    assert 0 < run.rows_read < world.N
    assert run.rows_read == 500 * run.batches_done
    assert m.Import.objects.filter(run=run).count() == run.batches_done
    assert m.Record.objects.count() == run.rows_read
    # A restart resumes at once (the lease is ten minutes) and finishes exactly.
    second = world.Worker(tmp_path, shop.users_schedule, "second")
    assert second.wait(timeout=240) == 0, second.output()[-3000:]
    assert "released by its last worker, resumed" in second.output()
    world.assert_synced_exactly(shop, run)


def test_sigterm_while_exporting_records_the_batch_in_hand(tmp_path):
    world.require_postgres()
    shop = world.big_shop(tmp_path)
    _long_lease()
    env = {"FAULT_EXPORT_BATCH_SIZE": "200"}
    first = world.Worker(tmp_path, shop.users_schedule, "first", **env)
    run = world.wait_until(
        lambda: (r := world.the_run(shop))
        and r.phase == RunPhase.EXPORTING
        and r.exports_sent >= 2000
        and r,
        worker=first,
        timeout=180,
    )
    took = _terminate(first)
    assert took < 10, took
    run.refresh_from_db()
    assert run.state == RunState.RUNNING and run.phase == RunPhase.EXPORTING
    assert run.heartbeat_at is None
    exports = m.Export.objects.filter(run=run)
    # The batch in hand was sent and its outcomes recorded: nothing is left claimed.
    assert not exports.filter(state=ExportState.PROCESSING).exists()
    complete = exports.filter(state=ExportState.COMPLETE).count()
    assert 0 < complete == run.exports_sent < world.N
    assert len(shop.dst_rows()) == complete
    second = world.Worker(tmp_path, shop.users_schedule, "second", **env)
    assert second.wait(timeout=240) == 0, second.output()[-3000:]
    assert "released by its last worker, resumed" in second.output()
    world.assert_synced_exactly(shop, run)
    run.refresh_from_db()
    assert run.exports_sent == world.N  # nothing was sent twice
