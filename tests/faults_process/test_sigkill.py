"""A worker SIGKILLed in the middle of a 20,000-record run, once while importing and once while
sending exports: after a restart the run completes, the destination holds exactly the expected
rows, and no record was ever sent with two different contents.

Real `manage.py run_schedule` processes on the test's PostgreSQL application database.
"""
from __future__ import annotations

import signal
import time

import pytest

from core import models as m
from core.choices import ExportState, RunPhase, RunState
from tests.faults_process import world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_killed_while_importing_resumes_exactly(tmp_path):
    world.require_postgres()
    shop = world.big_shop(tmp_path)
    first = world.Worker(tmp_path, shop.users_schedule, "first")
    # Kill once several batches are committed and the import is still going.
    run = world.wait_until(
        lambda: (r := world.the_run(shop)) and r.batches_done >= 5 and r,
        worker=first,
    )
    first.kill()
    run.refresh_from_db()
    assert run.state == RunState.RUNNING
    assert run.phase == RunPhase.IMPORTING
    assert 0 < run.rows_read < world.N
    time.sleep(world.LEASE_SECONDS + 0.5)  # the dead worker's lease expires
    second = world.Worker(tmp_path, shop.users_schedule, "second")
    assert second.wait(timeout=240) == 0, second.output()[-3000:]
    assert "lease expired, taken over" in second.output()
    world.assert_synced_exactly(shop, run)


def test_worker_killed_while_exporting_resumes_exactly(tmp_path):
    """The kill lands at the worst moment of sending: the destination has committed a batch
    whose outcomes the worker has not recorded yet (a trigger holds that transaction open)."""
    world.require_postgres()
    shop = world.big_shop(tmp_path)
    env = {"FAULT_EXPORT_BATCH_SIZE": "200"}
    with world.Pause(*world.OUTCOMES_AFTER_2000, seconds=120) as pause:
        first = world.Worker(tmp_path, shop.users_schedule, "first", **env)
        backend = world.wait_until(pause.backend, worker=first, timeout=180)
        first.proc.send_signal(signal.SIGKILL)
        first.wait(30)
        # The dead worker's socket is closed; end its backend as PostgreSQL would on its next
        # read (it is asleep in the trigger), releasing its row locks.
        world.Pause.terminate(backend)
    run = world.the_run(shop)
    assert run.state == RunState.RUNNING
    assert 2000 <= run.exports_sent < world.N
    in_flight = m.Export.objects.filter(run=run, state=ExportState.PROCESSING).count()
    assert in_flight > 0
    # The in-flight batch reached the destination, unrecorded: it will be sent again.
    assert len(shop.dst_rows()) >= run.exports_sent + in_flight
    time.sleep(world.LEASE_SECONDS + 0.5)
    second = world.Worker(tmp_path, shop.users_schedule, "second", **env)
    assert second.wait(timeout=240) == 0, second.output()[-3000:]
    world.assert_synced_exactly(shop, run)
    # At least once: the unrecorded batch was delivered again, with the same content (checked
    # by assert_synced_exactly); everything else exactly once.
    counts = world.deliveries(shop)
    assert sum(1 for c in counts.values() if c > 1) >= in_flight
    assert sum(counts.values()) <= world.N + in_flight
