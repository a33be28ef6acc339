"""Claims by row lock (exports_send's hold=True, what a run's sender process does): the batch
stays pending and locked while it is sent, leasing senders pass it by, and a sender that dies
mid-send leaves it pending with no attempt spent. (test_exports runs every export case with both
kinds of claim.)"""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from core import models as m
from core.choices import ExportState
from core.engine.exports import exports_send
from tests.engine import fakes
from tests.engine.helpers import sync
from tests.engine.test_exports import add_memory_destination, store

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="claims by row lock are PostgreSQL's")


@pytest.fixture(autouse=True)
def _reset_memory():
    fakes.reset()
    yield
    fakes.reset()


@pytest.mark.django_db(transaction=True)
def test_a_held_claim_keeps_its_rows_pending_and_locked_until_their_outcomes(shop, monkeypatch):
    """hold=True: while the destination is called, the batch is pending and locked (a leasing
    sender finds nothing to claim); then complete, written once more. A sender that dies in the
    call leaves the batch pending, attempts unspent, nothing `processing`."""
    dest = add_memory_destination(shop, "probe")
    sync(shop.users_schedule, export=False)
    exports = dest.exports.all()
    assert exports.count() == 4 and not exports.exclude(state=ExportState.PENDING).exists()
    seen = {}
    original = fakes.MemoryDestination.export_batch

    def probe(self, batch, *, operations):
        def other_sender():  # its own connection, leasing as queue workers do
            try:
                seen["states"] = sorted(set(m.Export.objects.filter(destination=dest).values_list("state", flat=True)))
                seen["leased"] = exports_send(destination_id=dest.pk).claimed
            finally:
                connection.close()

        t = threading.Thread(target=other_sender)
        t.start()
        t.join()
        if fakes.MemoryDestination.SCRIPT.get("probe") == ["die"]:
            raise KeyboardInterrupt  # the process is going down mid-send
        return original(self, batch, operations=operations)

    monkeypatch.setattr(fakes.MemoryDestination, "export_batch", probe)
    fakes.MemoryDestination.SCRIPT["probe"] = ["die"]
    with pytest.raises(KeyboardInterrupt):
        exports_send(destination_id=dest.pk, hold=True)
    assert seen == {"states": [ExportState.PENDING], "leased": 0}
    assert set(exports.values_list("state", "attempts")) == {(ExportState.PENDING, 0)}

    fakes.MemoryDestination.SCRIPT["probe"] = []
    seen.clear()
    summary = exports_send(destination_id=dest.pk, hold=True)
    assert summary.claimed == summary.sent == 4
    assert seen == {"states": [ExportState.PENDING], "leased": 0}
    assert set(exports.values_list("state", "attempts")) == {(ExportState.COMPLETE, 1)}
    assert set(store("probe")) == {"1", "2", "3", "4"}
