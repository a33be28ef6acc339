"""Sending while importing (core/engine/pipeline.py): on PostgreSQL a run's exports are sent by
a second thread as its batches commit, with the same result as sending afterwards."""
from __future__ import annotations

import time

import pytest
from django.db import connection

from core import models as m
from core.choices import ExportState, RunPhase, RunState
from core.engine import runs as engine_runs
from tests.engine.conftest import make_shop
from tests.engine.helpers import sync

N = 400  # 8 batches of 50 (tests/settings.py)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_exports_are_sent_while_the_run_is_still_importing(tmp_path, monkeypatch, settings, mode):
    if connection.vendor != "postgresql":
        pytest.skip("the concurrent sender runs on PostgreSQL only")
    from core.engine.pipeline import ConcurrentSender

    # A run this size sends from a thread unless the process threshold is lowered.
    settings.GROUPAROO_SENDER_PROCESS_MIN_ROWS = 1 if mode == "process" else 0
    spawned = []
    original_spawn = ConcurrentSender._spawn

    def spawn(self):
        proc = original_spawn(self)
        spawned.append(proc)
        return proc

    monkeypatch.setattr(ConcurrentSender, "_spawn", spawn)
    users = [(i, f"u{i}@example.com", f"U{i}", float(i), "2026-01-01T00:00:00") for i in range(1, N + 1)]
    shop = make_shop(tmp_path, users=users, purchases=[])
    seen_while_importing: list[tuple[int, str]] = []
    original = engine_runs.import_batch
    calls = {"n": 0}

    def batch_then_wait(*args, **kwargs):
        result = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 4:
            # Earlier batches are committed: the sender thread must deliver some of them
            # before this import goes on.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                done = m.Export.objects.filter(state=ExportState.COMPLETE).count()
                if done:
                    run = m.Run.objects.get(source=shop.users)
                    seen_while_importing.append((done, run.phase))
                    break
                time.sleep(0.05)
        return result

    monkeypatch.setattr(engine_runs, "import_batch", batch_then_wait)
    run = sync(shop.users_schedule)
    assert seen_while_importing, "no export was sent while the run was importing"
    done, phase = seen_while_importing[0]
    assert 0 < done < N and phase == RunPhase.IMPORTING
    run.refresh_from_db()
    assert run.state == RunState.COMPLETE and run.exports_sent == N
    if mode == "process":
        assert len(spawned) == 1 and spawned[0] is not None and spawned[0].returncode == 0
    else:
        assert spawned == []
    assert sorted(int(r["id"]) for r in shop.dst_rows()) == list(range(1, N + 1))
    exports = m.Export.objects.filter(destination=shop.destination)
    assert exports.count() == N and not exports.exclude(state=ExportState.COMPLETE).exists()


@pytest.mark.django_db
def test_values_passed_from_the_import_equal_the_values_read_back(tmp_path):
    """On PostgreSQL a first sync builds exports from the values it just wrote (fresh_values)
    instead of reading them back. Rebuilding from the table must find nothing changed."""
    from core.engine.exports import destination_plans, exports_build
    from tests.engine.conftest import PURCHASES, USERS

    users = [*USERS, (5, "eve@example.com", "Éve 😀", 12.5, "2026-01-04T10:11:12.345678")]
    shop = make_shop(tmp_path, users=users, purchases=[*PURCHASES, (4, 5, 1.25, "2026-01-08T01:02:03")])
    sync(shop.users_schedule)
    records = list(m.Record.objects.values_list("pk", flat=True))
    exports = m.Export.objects.filter(destination=shop.destination)
    assert exports.count() == len(users) and len(records) == len(users)
    assert exports_build(model_id=shop.model.pk, record_ids=records, run_id=None,
                         plans=destination_plans(shop.model.pk)) == 0
    eve = exports.get(new_properties__email="eve@example.com").new_properties
    assert eve["first_name"] == "Éve 😀" and eve["purchase_count"] == 1 and eve["total_spend"] == 1.25


@pytest.mark.django_db
def test_a_batch_writes_one_instant_its_new_values_take_it_from_the_database(tmp_path, monkeypatch):
    """On PostgreSQL a batch's time is its transaction's now(): the values a first sync COPYs
    leave state, changed_at and confirmed_at to the column defaults, and they equal the time
    the batch gave its records. Elsewhere (SQLite) the batch writes them itself."""
    from core.engine import db
    from tests.engine.conftest import PURCHASES, USERS

    copied: list[tuple[str, ...]] = []
    original = db.copy_chunks_in_background

    def copy(table, columns, chunks):
        copied.append(tuple(columns))
        return original(table, columns, chunks)

    monkeypatch.setattr(db, "copy_chunks_in_background", copy)
    shop = make_shop(tmp_path, users=USERS, purchases=PURCHASES)
    sync(shop.users_schedule)
    if connection.vendor == "postgresql":
        assert copied and all("changed_at" not in c and "state" not in c for c in copied)
    values = m.RecordProperty.objects.select_related("record")
    assert values.count() >= len(USERS) * 3
    for rp in values:
        assert rp.state == "ready"
        assert rp.changed_at is not None and rp.changed_at == rp.confirmed_at == rp.record.created_at
