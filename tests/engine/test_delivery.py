"""A run ends when its records, groups and exports are written; each destination's queue is
sent on its own. A destination that throttles forever holds back neither its run, nor the next
run of the source, nor the other destinations; `run_schedule` waits for it a bounded time and
names it. Database reconnects are budgeted per batch, not per run."""

from __future__ import annotations

import io
import sqlite3
import time

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection

from core import models as m
from core import tasks
from core.choices import ExportState, RunCreator, RunState
from core.engine import runs
from core.services.runs import run_create
from tests.faults_destinations.helpers import Receiver, make_world, user

N = 30


def _throttling(records):
    return 429, {"Retry-After": "3600"}, b"slow down"


@pytest.fixture
def two_hooks(tmp_path, db, settings):
    """A world with two webhook destinations: hook0 throttles every request for an hour,
    hook1 takes everything."""
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
    throttling, healthy = Receiver(behaviour=_throttling).start(), Receiver().start()
    world = make_world(tmp_path, N, [throttling.url, healthy.url], request_size=10)
    yield world, throttling, healthy
    throttling.stop()
    healthy.stop()


def _touch(world, user_id: int, email: str) -> None:
    with sqlite3.connect(world.src) as conn:
        conn.execute("UPDATE users SET email = ?, updated_at = '2026-02-01T00:00:00' WHERE id = ?",
                     [email, user_id])


def test_a_throttling_destination_holds_back_neither_the_run_nor_the_next_one(two_hooks):
    world, throttling, healthy = two_hooks
    slow, fine = world.destinations
    first, _ = run_create(source=world.source, schedule=world.schedule, creator_type=RunCreator.MANUAL,
                          enqueue=False)
    tasks.process_run(first.pk)  # as a queue worker does: the run, then a send per destination
    first.refresh_from_db()
    assert first.state == RunState.COMPLETE
    assert len(healthy.rows) == N
    throttled = m.Export.objects.filter(destination=slow)
    assert throttled.count() == N and set(throttled.values_list("state", "attempts")) == {(ExportState.PENDING, 0)}
    assert throttling.requests  # it was asked, and said to wait an hour

    _touch(world, 7, "seven@new.example")
    second, created = run_create(source=world.source, schedule=world.schedule, creator_type=RunCreator.MANUAL,
                                 enqueue=False)
    assert created, "the first run must not be active any more"
    tasks.process_run(second.pk)
    second.refresh_from_db()
    assert second.state == RunState.COMPLETE and second.records_updated == 1
    assert healthy.rows[7]["email"] == "seven@new.example"
    # Only the newest state of record 7 waits for the throttling destination.
    assert m.Export.objects.filter(destination=slow, state=ExportState.PENDING).count() == N
    assert m.Export.objects.filter(destination=fine, state=ExportState.COMPLETE).count() == N + 1


def test_run_schedule_waits_a_bounded_time_then_names_what_is_pending(two_hooks):
    world, throttling, healthy = two_hooks
    out = io.StringIO()
    started = time.monotonic()
    call_command("run_schedule", str(world.schedule.pk), "--export-wait", "1", stdout=out)
    elapsed = time.monotonic() - started
    text = out.getvalue()
    assert elapsed < 20, text
    assert f"still pending: hook0: {N} exports" in text, text
    assert "still pending: hook1" not in text, text
    assert len(healthy.rows) == N
    assert m.Run.objects.get().state == RunState.COMPLETE


def test_run_schedule_refuses_a_negative_wait(two_hooks):
    world, *_ = two_hooks
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--export-wait"):
        call_command("run_schedule", str(world.schedule.pk), "--export-wait", "-1", stdout=io.StringIO())


# --- the database reconnect budget ---------------------------------------------------------------


@pytest.fixture
def dropping(tmp_path, monkeypatch, transactional_db, settings):
    """A 10-page run (batches of 50 rows) whose pages can be made to lose the application
    database connection: `fail(page)` says how many times each page fails before it goes
    through."""
    settings.GROUPAROO_BATCH_SIZE = 50
    monkeypatch.setattr(runs, "DB_RETRY_BASE", 0.001)
    world = make_world(tmp_path, 0, [], users=[user(i) for i in range(1, 501)])
    real = runs._import_page
    calls: dict[int, int] = {}
    plan: dict[str, object] = {"fail": lambda page: 0}

    def flaky_page(run, *args, **kwargs):
        page = run.batches_done + 1
        calls[page] = calls.get(page, 0) + 1
        if calls[page] <= plan["fail"](page):
            connection.close()  # the connection is gone, as after a server restart
            raise OperationalError("server closed the connection unexpectedly")
        return real(run, *args, **kwargs)

    monkeypatch.setattr(runs, "_import_page", flaky_page)
    run, _ = run_create(source=world.source, schedule=world.schedule, creator_type=RunCreator.MANUAL,
                        enqueue=False)
    return run, plan, calls


def test_connection_drops_spread_over_a_long_run_do_not_fail_it(dropping):
    run, plan, calls = dropping
    plan["fail"] = lambda page: 1  # every page loses its connection once: 10 drops in all
    run = runs.run_process(run.pk)
    assert run.state == RunState.COMPLETE, run.error
    assert run.rows_read == 500 and m.Record.objects.count() == 500
    assert sum(calls.values()) == 20


def test_a_batch_that_keeps_losing_its_connection_fails_the_run(dropping):
    run, plan, calls = dropping
    plan["fail"] = lambda page: 100 if page == 3 else 0
    with pytest.raises(OperationalError):
        runs.run_process(run.pk)
    run.refresh_from_db()
    assert run.state == RunState.FAILED and "server closed the connection" in run.error
    assert run.batches_done == 2 and calls[3] == runs.DB_RETRIES + 1


@pytest.mark.django_db(transaction=True)
def test_a_slow_destination_bounds_the_sending_phase_not_the_run(tmp_path, settings):
    """PostgreSQL sends while importing: a destination that holds that sender's batch does not
    keep the run open; and the sending after a run stops starting batches when its time is up,
    even while the destination keeps answering, slowly."""
    from core.engine.delivery import exports_drain
    from core.engine.pipeline import finish_senders

    if connection.vendor != "postgresql":
        pytest.skip("a run sends while importing on PostgreSQL only")
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
    settings.GROUPAROO_BATCH_SIZE = 50

    def slowly(records):
        time.sleep(0.5)
        return 200, {}, b"ok"

    slow = Receiver(behaviour=slowly).start()
    slow.gate.clear()  # every request waits until the gate opens (at most a minute)
    world = make_world(tmp_path, 1000, [slow.url], request_size=50, timeout=30)  # 20 pages
    hook = world.destinations[0].pk
    run, _ = run_create(source=world.source, schedule=world.schedule, creator_type=RunCreator.MANUAL,
                        enqueue=False)
    try:
        started = time.monotonic()
        run = runs.run_process(run.pk)
        assert run.state == RunState.COMPLETE
        assert time.monotonic() - started < 20  # not the minute the held batch waits
        assert m.Export.objects.filter(state=ExportState.PROCESSING).exists()  # the sender's batch
    finally:
        slow.gate.set()
        assert finish_senders(timeout=60)
    # About 20 requests of half a second each are left: 2 s of sending stops on the way.
    started = time.monotonic()
    report = exports_drain(destination_ids=[hook], wait_seconds=2)
    assert time.monotonic() - started < 8
    assert report.sent and report.pending
    report = exports_drain(destination_ids=[hook], wait_seconds=60)
    assert not report.pending and len(slow.rows) == 1000
    slow.stop()
