"""A destination that throttles (429 + Retry-After) and one that rejects some records of a batch,
each behind a real `manage.py run_schedule` worker on PostgreSQL.

PostgreSQL only: the application database is shared with the worker process."""
from __future__ import annotations

import json

import pytest
from django.db import connection

from core import models as m
from core.choices import ErrorLevel, ExportState, RunState
from tests.faults_destinations.helpers import (
    Receiver,
    expected_row,
    make_world,
    run_schedule,
    setting,
    wait_for,
)

RETRY_AFTER = 2


def _pg_only():
    if connection.vendor != "postgresql":
        pytest.skip("shares the application database with a worker process: PostgreSQL only")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_429_retry_after_is_honoured_and_spends_no_attempt(tmp_path):
    _pg_only()
    n = 30
    answers = iter([429, 429])

    def throttle_twice(records):
        status = next(answers, 200)
        return (status, {"Retry-After": str(RETRY_AFTER)}, b"slow down") if status == 429 else (200, {}, b"ok")

    receiver = Receiver(throttle_twice).start()
    world = make_world(tmp_path, n, [receiver.url])
    # One attempt only: a throttled answer that spent it would fail the export for good.
    setting("exports-max-attempts", "1")
    setting("exports-retry-base-seconds", "0.1")
    worker = run_schedule(world.schedule, tmp_path / "worker.log")
    throttled = []
    try:
        def seen_throttled():
            rows = list(m.Export.objects.filter(state=ExportState.PENDING, error_message__startswith="throttled")
                        .values_list("attempts", "send_after", "updated_at", "error_message"))
            throttled.extend(rows)
            return rows
        wait_for(seen_throttled, timeout=90, what="a throttled export", procs=[worker])
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
        receiver.stop()

    # While throttled: not one attempt spent, the wait is exactly Retry-After, the reason says so.
    assert {a for a, *_ in throttled} == {0}
    assert {round((after - updated).total_seconds(), 3) for _, after, updated, _ in throttled} == {RETRY_AFTER}
    assert all("HTTP 429 (throttled, retry after 2 s)" in msg for *_, msg in throttled)
    # The receiver was asked three times for the same batch, each time after Retry-After.
    statuses = [q.status for q in receiver.requests]
    assert statuses == [429, 429, 200]
    assert all({r["export_id"] for r in q.records} == {r["export_id"] for r in receiver.requests[0].records}
               for q in receiver.requests) and len(receiver.requests[0].records) == n
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert all(gap >= RETRY_AFTER - 0.02 for gap in gaps), gaps
    # Delivered with the one allowed attempt.
    assert receiver.rows == {i: expected_row(i) for i in range(1, n + 1)}
    exports = m.Export.objects.filter(destination=world.destinations[0])
    assert set(exports.values_list("state", "attempts")) == {(ExportState.COMPLETE, 1)}
    run = m.Run.objects.get(source=world.source)
    assert run.state == RunState.COMPLETE and run.exports_sent == n and run.exports_failed == 0


REJECT = {7, 8, 19, 33}  # user ids the receiver refuses, in three of its four requests


def _reject_some(records):
    rejected = [
        {"export_id": r["export_id"], "reason": f"email {r['properties']['email']} is on the block list"}
        for r in records
        if r["properties"]["id"] in REJECT
    ]
    return 200, {"Content-Type": "application/json"}, json.dumps({"rejected": rejected}).encode()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_records_rejected_in_a_batch_fail_alone_with_the_destinations_reason(tmp_path):
    _pg_only()
    n = 40
    receiver = Receiver(_reject_some).start()
    world = make_world(tmp_path, n, [receiver.url], request_size=10)
    # Retries are quick and plentiful here: a rejected record that were retried would show up again.
    setting("exports-max-attempts", "5")
    setting("exports-retry-base-seconds", "0.1")
    worker = run_schedule(world.schedule, tmp_path / "worker.log")
    try:
        assert worker.wait(timeout=90) == 0, (tmp_path / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
        receiver.stop()

    exports = {
        props["id"]: (state, attempts, level, message)
        for props, state, attempts, level, message in m.Export.objects.filter(destination=world.destinations[0])
        .values_list("new_properties", "state", "attempts", "error_level", "error_message")
    }
    assert len(exports) == n
    failed = {uid for uid, (state, *_) in exports.items() if state == ExportState.FAILED}
    assert failed == REJECT
    for uid in REJECT:
        state, attempts, level, message = exports[uid]
        assert (attempts, level) == (1, ErrorLevel.INFO)
        assert message == (f"Webhook http://127.0.0.1:{receiver.port} rejected the record: "
                           f"email user{uid}@example.com is on the block list")
    assert {exports[uid][:3] for uid in exports if uid not in REJECT} == {(ExportState.COMPLETE, 1, "")}
    # Sent once each (the rejected ones were not retried); the rest arrived.
    sent = [r["export_id"] for q in receiver.requests for r in q.records]
    assert len(sent) == len(set(sent)) == n
    assert all(len(q.records) <= 10 for q in receiver.requests)
    assert receiver.rows == {i: expected_row(i) for i in range(1, n + 1) if i not in REJECT}
    run = m.Run.objects.get(source=world.source)
    assert run.state == RunState.COMPLETE
    assert (run.exports_sent, run.exports_failed) == (n - len(REJECT), len(REJECT))
    assert sum(c for msg, c in run.errors.items() if "is on the block list" in msg) == len(REJECT)
