"""The application database connection dropped in the middle of a batch (the worker's backend
terminated with pg_terminate_backend): the batch rolls back, the same worker reconnects and
retries it, and the run completes with nothing half-written or doubled.

To cut the connection at a known point, a test-only trigger in the application database makes
the worker's transaction wait once at a chosen statement (after the batch has already written
records, properties, memberships and exports); the test terminates that backend while it waits.
"""
from __future__ import annotations

import pytest
from django.db import connection

from core.choices import RunState
from tests.faults_process import world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Where the worker's transaction is held open: (table, timing condition).
POINTS = {
    # the 5th import batch, after its records, properties, groups and exports are written
    "import": ("core_import", "BEFORE INSERT", "NEW.batch = 5"),
    # recording the outcomes of an export batch the destination has already received
    "export": ("core_export", "BEFORE UPDATE", "OLD.state = 'processing' AND NEW.state = 'complete'"),
}


def _install_pause(table: str, timing: str, condition: str) -> None:
    with connection.cursor() as cur:
        cur.execute("CREATE SEQUENCE fault_once")
        cur.execute(
            "CREATE FUNCTION fault_pause() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF {condition} AND nextval('fault_once') = 1 THEN PERFORM pg_sleep(60); END IF; "
            "RETURN NEW; END $$"
        )
        cur.execute(
            f"CREATE TRIGGER fault_pause {timing} ON {table} FOR EACH ROW EXECUTE FUNCTION fault_pause()"
        )


def _remove_pause(table: str) -> None:
    with connection.cursor() as cur:
        cur.execute(f"DROP TRIGGER IF EXISTS fault_pause ON {table}")
        cur.execute("DROP FUNCTION IF EXISTS fault_pause()")
        cur.execute("DROP SEQUENCE IF EXISTS fault_once")


def _paused_backend() -> int | None:
    """The worker's backend, waiting in the trigger inside a transaction that has written."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event = 'PgSleep' AND backend_xid IS NOT NULL"
        )
        row = cur.fetchone()
    return row[0] if row else None


@pytest.mark.parametrize("point", sorted(POINTS))
def test_connection_dropped_mid_batch_is_retried_by_the_same_worker(tmp_path, point):
    world.require_postgres()
    table, timing, condition = POINTS[point]
    shop = world.big_shop(tmp_path)
    _install_pause(table, timing, condition)
    try:
        worker = world.Worker(tmp_path, shop.users_schedule, f"worker-{point}")
        pid = world.wait_until(_paused_backend, worker=worker, timeout=180)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [pid])
            assert cur.fetchone()[0] is True
        # The same process recovers on its own: no restart.
        code = worker.wait(timeout=240)
        output = worker.output()
        assert code == 0, output[-3000:]
    finally:
        _remove_pause(table)
    assert "application database error" in output and "retrying" in output, output[-3000:]
    run = world.the_run(shop)
    assert run.state == RunState.COMPLETE
    world.assert_synced_exactly(shop, run)
