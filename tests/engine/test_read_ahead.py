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
