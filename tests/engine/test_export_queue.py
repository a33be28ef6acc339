"""The send queue: which pending exports a claim takes, in what order, and through which index.

A claim must read only the rows it takes. Ordered by id alone, PostgreSQL's planner walked the
primary key past every completed export before the pending ones (it assumes they are spread
evenly over the ids; they are the newest), so each claim of a first sync got slower than the last.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from core import models as m
from core.choices import ExportState
from core.engine import db
from core.engine.exports import _claim_held, _due
from tests.engine.test_exports import add_memory_destination


def _insert_exports(destination_id: int, first_record: int, count: int, state: str) -> None:
    """`count` exports of records first_record.. in one statement (no FOREIGN KEY to satisfy)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH RECURSIVE s(r) AS (SELECT CAST(%s AS bigint) UNION ALL SELECT r + 1 FROM s WHERE r < %s) "
            "INSERT INTO core_export (destination_id, record_id, old_properties, new_properties, old_groups, "
            "new_groups, to_delete, state, attempts, error_message, error_level, created_at, updated_at) "
            "SELECT %s, r, '{}', '{}', '[]', '[]', false, %s, 0, '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM s",
            [first_record, first_record + count - 1, destination_id, state],
        )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_claim_reads_the_queue_index_not_the_completed_exports_before_it(shop):
    """A first sync's shape, half-way: 15,000 exports sent, 5,000 newer ones pending, statistics
    fresh (a run ANALYZEs as it grows the tables). The claim's plan goes through the queue index,
    and it takes the oldest pending exports."""
    dest = add_memory_destination(shop, "queue")
    _insert_exports(dest.pk, 1, 15_000, ExportState.COMPLETE)
    _insert_exports(dest.pk, 15_001, 5_000, ExportState.PENDING)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE core_export")
    due, params = _due(dest.pk, 1_000, timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT e.id {due} FOR UPDATE OF e SKIP LOCKED", params)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    scans = []

    def walk(node):
        if "Index Name" in node:
            scans.append((node.get("Alias"), node["Index Name"]))
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0]["Plan"])
    assert ("e", "core_export_queue") in scans, scans
    assert not any(name == "core_export_pkey" for _alias, name in scans), scans

    pending = list(
        m.Export.objects.filter(destination=dest, state=ExportState.PENDING).order_by("id").values_list("id", flat=True)
    )
    with transaction.atomic():
        claimed = [row[0] for row in _claim_held(dest.pk, 1_000, timezone.now())]
    assert claimed == pending[:1_000]


@pytest.mark.django_db(transaction=True)
def test_a_claim_takes_due_exports_only_fresh_ones_oldest_first(shop):
    """Never-deferred exports go oldest first; a deferred one that is due goes too (first on
    PostgreSQL, after the fresh ones on SQLite: each database's own place for NULLs, which its
    index follows); one deferred into the future waits; one of a record in flight waits."""
    dest = add_memory_destination(shop, "order")
    now = timezone.now()
    _insert_exports(dest.pk, 1, 3, ExportState.COMPLETE)
    _insert_exports(dest.pk, 10, 4, ExportState.PENDING)  # records 10..13
    _insert_exports(dest.pk, 20, 1, ExportState.PROCESSING)  # record 20 in flight
    exports = {e.record_id: e for e in m.Export.objects.filter(destination=dest)}
    m.Export.objects.filter(pk=exports[11].pk).update(send_after=now - timedelta(minutes=1))  # a due retry
    m.Export.objects.filter(pk=exports[12].pk).update(send_after=now + timedelta(minutes=5))  # not yet
    _insert_exports(dest.pk, 20, 1, ExportState.PENDING)  # a newer export of the record in flight
    due, params = _due(dest.pk, 10, now)
    taken = [row[0] for row in db.fetchall(f"SELECT e.record_id {due}", params)]
    if connection.vendor == "postgresql":
        assert taken == [11, 10, 13]
    else:
        assert taken == [10, 13, 11]
    # The limit cuts the same order.
    due, params = _due(dest.pk, 2, now)
    assert [row[0] for row in db.fetchall(f"SELECT e.record_id {due}", params)] == taken[:2]
