"""A worker SIGKILLed in the middle of a 20,000-record run, once while importing and once while
sending exports: after a restart the run completes, the destination holds exactly the expected
rows, and no record was ever sent with two different contents.

Real `manage.py run_schedule` processes on the test's PostgreSQL application database.
"""
from __future__ import annotations

import time

import pytest

from core.choices import RunPhase, RunState
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
    assert run.exports_sent == 0
    time.sleep(world.LEASE_SECONDS + 0.5)  # the dead worker's lease expires
    second = world.Worker(tmp_path, shop.users_schedule, "second")
    assert second.wait(timeout=240) == 0, second.output()[-3000:]
    assert "lease expired, taken over" in second.output()
    world.assert_synced_exactly(shop, run)


def test_worker_killed_while_exporting_resumes_exactly(tmp_path):
    world.require_postgres()
    shop = world.big_shop(tmp_path)
    # Small send batches: the export phase is many batches long, so the kill lands inside it.
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
    first.kill()
    run.refresh_from_db()
    assert run.state == RunState.RUNNING
    assert run.phase == RunPhase.EXPORTING
    assert run.rows_read == world.N
    assert 0 < run.exports_sent < world.N
    time.sleep(world.LEASE_SECONDS + 0.5)
    second = world.Worker(tmp_path, shop.users_schedule, "second", **env)
    assert second.wait(timeout=240) == 0, second.output()[-3000:]
    world.assert_synced_exactly(shop, run)
    run.refresh_from_db()
    assert run.exports_sent >= world.N
