"""The stop-and-release mechanism behind graceful shutdown, in-process (SQLite and PostgreSQL):
a stop request ends the run loop at a batch boundary with the run released, and a released run
is resumed at once, by a direct call or by the clock's re-drive."""
from __future__ import annotations

import pytest

from core import models as m
from core.choices import RunCreator, RunPhase, RunState
from core.engine import runs
from core.services.runs import run_create
from core.tasks import tick
from tests.engine.conftest import make_shop
from tests.engine.helpers import run_and_send

USERS = [(i, f"u{i}@example.com", f"U{i}", float(i), "2026-01-01T00:00:00") for i in range(1, 201)]


@pytest.fixture
def stopping():
    runs.clear_stop()
    yield
    runs.clear_stop()


def _stopped_after_first_batch(shop) -> m.Run:
    run, _ = run_create(source=shop.users, schedule=shop.users_schedule,
                        creator_type=RunCreator.MANUAL, enqueue=False)
    m.Setting.objects.update_or_create(plugin="core", key="runs-lease-seconds",
                                       defaults={"value": "600"})
    run = run_and_send(run.pk, progress=lambda r: runs.request_stop())
    runs.clear_stop()
    return run


def test_stop_request_releases_the_run_at_a_batch_boundary(tmp_path, db, stopping):
    shop = make_shop(tmp_path, users=USERS, purchases=[])
    run = _stopped_after_first_batch(shop)
    assert run.state == RunState.RUNNING and run.phase == RunPhase.IMPORTING
    assert run.heartbeat_at is None
    assert run.batches_done == 1 and run.rows_read == 50  # tests.settings: batches of 50
    assert m.Record.objects.count() == 50
    assert len(shop.dst_rows()) <= 50  # only what the committed batch queued (PostgreSQL sends while importing)
    # Resumed at once although the lease is ten minutes: it was released, not abandoned.
    run = run_and_send(run.pk)
    assert run.state == RunState.COMPLETE and run.rows_read == 200
    assert [r["id"] for r in shop.dst_rows(order="CAST(id AS INTEGER)")] == [str(i) for i in range(1, 201)]


def test_the_clock_redrives_a_released_run(tmp_path, db, stopping):
    shop = make_shop(tmp_path, users=USERS, purchases=[])
    run = _stopped_after_first_batch(shop)
    assert run.heartbeat_at is None
    tick()  # tests run django-q2 synchronously: the re-driven task runs here
    run.refresh_from_db()
    assert run.state == RunState.COMPLETE and run.rows_read == 200
    assert len(shop.dst_rows()) == 200


def test_a_held_run_is_not_taken(tmp_path, db, stopping):
    """Only released or expired runs are claimable: a live lease keeps other workers out."""
    shop = make_shop(tmp_path, users=USERS, purchases=[])
    run = _stopped_after_first_batch(shop)
    assert runs.run_claim(run.pk)  # released: claimable, and now held again
    assert not runs.run_claim(run.pk)
    assert not m.Run.objects.filter(runs.runs_abandoned()).exists()
