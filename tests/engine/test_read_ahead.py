"""ReadAhead (core/engine/pipeline.py): the next source page is read and prepared in a thread
while the current one is written; order, errors and early exits must be those of a plain loop."""
from __future__ import annotations

import threading

import pytest

from core.engine.pipeline import ReadAhead


def test_items_arrive_in_order_and_all_of_them():
    with ReadAhead(lambda: iter(range(50))) as items:
        assert list(items) == list(range(50))


def test_an_error_in_the_reader_is_raised_where_its_item_would_have_been():
    def produce():
        yield 1
        yield 2
        raise ValueError("the source table vanished")

    got = []
    with pytest.raises(ValueError, match="vanished"):
        with ReadAhead(produce) as items:
            for item in items:
                got.append(item)
    assert got == [1, 2]


def test_leaving_early_stops_the_reader_at_most_one_item_ahead():
    produced = []
    closed = threading.Event()

    def produce():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    reader = ReadAhead(produce)
    with reader as items:
        for item in items:
            if item == 3:
                break
    assert not reader.thread.is_alive()
    # Items 0-3 consumed; one more in the queue and one being handed over at most.
    assert max(produced) <= 3 + 2
    assert closed.wait(1)  # the reader let go of its source


def test_an_error_in_the_consumer_stops_the_reader():
    reader = ReadAhead(lambda: iter(range(10_000)))
    with pytest.raises(RuntimeError):
        with reader as items:
            for item in items:
                if item == 5:
                    raise RuntimeError("write failed")
    assert not reader.thread.is_alive()


def test_the_switch_interval_is_shortened_while_reading_ahead_and_restored():
    import sys

    before = sys.getswitchinterval()
    with ReadAhead(lambda: iter(range(3))) as items:
        assert sys.getswitchinterval() == min(before, ReadAhead.SWITCH_INTERVAL)
        assert list(items) == [0, 1, 2]
    assert sys.getswitchinterval() == before


@pytest.mark.django_db(transaction=True)
def test_no_source_connection_is_used_by_two_threads(tmp_path, monkeypatch):
    """The reader reads ahead (and, while pages create their records, reads the secondary
    sources' aggregates) while the run's thread enriches pages itself: each must use its own
    connections. A shared one interleaved their transactions ("cannot start a transaction within
    a transaction" on SQLite) and failed the run."""
    import threading

    from connectors.sql import SqlTableSource
    from tests.engine.conftest import make_shop
    from tests.engine.helpers import sync

    users = [(i, f"u{i}@example.com", f"U{i}", float(i), "2026-01-01T00:00:00") for i in range(1, 51)]
    shop = make_shop(tmp_path, users=users, purchases=[(1, 1, 5.0, "2026-01-02T00:00:00")])
    sync(shop.users_schedule)  # the model has records: the next run starts enriching in-thread
    shop.src_many(
        "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
        [(i, f"u{i}@example.com", f"U{i}", float(i), "2026-02-01T00:00:00") for i in range(51, 401)],
    )
    shop.src_many(
        "INSERT INTO purchases (user_id, amount, purchased_at) VALUES (?, ?, ?)",
        [(i, 1.0, "2026-02-02T00:00:00") for i in range(51, 401)],
    )
    threads_by_connector: dict[int, set[str]] = {}
    original = SqlTableSource.aggregate

    def aggregate(self, **kwargs):
        threads_by_connector.setdefault(id(self), set()).add(threading.current_thread().name)
        return original(self, **kwargs)

    monkeypatch.setattr(SqlTableSource, "aggregate", aggregate)
    run = sync(shop.users_schedule)
    assert run.state == "complete", run.errors if hasattr(run, "errors") else run
    used = [names for names in threads_by_connector.values()]
    assert any("read-ahead" in names for names in used), used  # the reader did read aggregates
    assert all(len(names) == 1 for names in used), used
    rows = {int(r["id"]): r for r in shop.dst_rows()}
    assert len(rows) == 400 and rows[400]["purchase_count"] == 1
