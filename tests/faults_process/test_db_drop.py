"""The application database connection dropped in the middle of a batch (the worker's backend
terminated with pg_terminate_backend): the batch rolls back and is retried without a restart,
and the run completes with nothing half-written or doubled.

To cut the connection at a known point, a test-only trigger in the application database holds
the worker's transaction open once at a chosen statement; the test terminates that backend
while it waits.
"""
from __future__ import annotations

import pytest

from core.choices import RunState
from tests.faults_process import world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Half the size of the SIGKILL tests' run: these faults need a run in progress, not a big one.
N = 10_000


def test_connection_dropped_mid_import_batch_is_retried_by_the_same_worker(tmp_path):
    world.require_postgres()
    shop = world.big_shop(tmp_path, N)
    # The 5th import batch, after its records, properties, memberships and exports are written.
    with world.Pause("core_import", "BEFORE INSERT", "NEW.batch = 5", seconds=120) as pause:
        worker = world.Worker(tmp_path, shop.users_schedule, "worker")
        assert world.Pause.terminate(world.wait_until(pause.backend, worker=worker, timeout=180))
        code = worker.wait(timeout=240)  # the same process recovers on its own
    output = worker.output()
    assert code == 0, output[-3000:]
    assert "application database error" in output and "retrying" in output, output[-3000:]
    run = world.the_run(shop)
    assert run.state == RunState.COMPLETE
    world.assert_synced_exactly(shop, run, N)


def test_connection_dropped_while_recording_export_outcomes(tmp_path):
    """The destination has committed a batch; the connection drops before its outcomes are
    recorded. The batch goes back to the queue when its lease ends and is sent again, with
    the same content; the run completes in the same process."""
    world.require_postgres()
    shop = world.big_shop(tmp_path, N)
    env = {"FAULT_EXPORT_BATCH_SIZE": "200"}
    with world.Pause(*world.OUTCOMES_AFTER_2000, seconds=120) as pause:
        worker = world.Worker(tmp_path, shop.users_schedule, "worker", **env)
        assert world.Pause.terminate(world.wait_until(pause.backend, worker=worker, timeout=180))
        code = worker.wait(timeout=240)
    output = worker.output()
    assert code == 0, output[-3000:]
    run = world.the_run(shop)
    assert run.state == RunState.COMPLETE
    world.assert_synced_exactly(shop, run, N)
    assert any(c > 1 for c in world.deliveries(shop).values())  # the dropped batch, re-sent
