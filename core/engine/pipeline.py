"""Overlapping a run's stages: reading ahead while writing, sending while importing.

Reading ahead: a thread reads the source's next page (and its aggregates) and prepares it
(keys, typed staging rows: pure Python, no application database) while the run writes the
current page. Writing waits on the database about half of the time, so on two cores the two
overlap. Pages are still written one at a time, in order, each in its own transaction, so what
is committed, and where a resumed run starts, is unchanged; at most one page is held ahead.

Sending while importing: a second thread sends a run's due exports as its batches commit.

A first sync used to import everything and only then send. On PostgreSQL the import waits on
the database about half of the time, so a sender thread with its own connection overlaps the
two phases on a 2-core machine. It does exactly what a queue worker does concurrently with a
run (claims with FOR UPDATE SKIP LOCKED, records outcomes for its own claims), so delivery,
ordering and retries are unchanged; whatever it has not sent when the import ends is sent by
the run's own export phase as before.

Not used on SQLite (one writer at a time: the threads would only queue for the lock) nor inside
a caller's transaction (the thread could not see uncommitted exports).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connection

logger = logging.getLogger(__name__)

IDLE_SECONDS = 0.2


class ConcurrentSender:
    """Context manager: `with ConcurrentSender(run_id, destination_ids): import...`."""

    def __init__(self, run_id: int, destination_ids: list[int]):
        self.run_id = run_id
        self.destination_ids = list(destination_ids)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    @staticmethod
    def enabled() -> bool:
        return connection.vendor == "postgresql" and not connection.in_atomic_block

    def __enter__(self) -> ConcurrentSender:
        if self.destination_ids and self.enabled():
            self.thread = threading.Thread(
                target=self._loop, name=f"run-{self.run_id}-sender", daemon=True
            )
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        # Let the batch in hand finish (its outcomes recorded), then stop.
        self.stop.set()
        if self.thread is not None:
            self.thread.join()

    def _loop(self) -> None:
        from core.engine.exports import exports_send

        try:
            while not self.stop.is_set():
                progressed = False
                for did in self.destination_ids:
                    if self.stop.is_set():
                        break
                    progressed = bool(exports_send(destination_id=did).claimed) or progressed
                if not progressed:
                    self.stop.wait(IDLE_SECONDS)
        except Exception:
            # The run's own export phase sends whatever is left; say why this thread stopped.
            logger.exception("run %s: the concurrent sender stopped", self.run_id)
        finally:
            connection.close()


class ReadAhead:
    """Iterate over what `produce()` yields, produced one item ahead in a thread.

    `with ReadAhead(produce) as items: for item in items: ...`. An exception in the producer is
    raised in the consumer, at the item it would have been; leaving the block early stops the
    producer after the item in hand (a page read in vain is simply read again by the next run).
    """

    _END = object()

    def __init__(self, produce: Callable[[], Iterator[Any]], depth: int = 1):
        self.produce = produce
        self.items: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)

    def __enter__(self) -> Iterator[Any]:
        self.thread.start()
        return self._consume()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        while self.thread.is_alive():
            try:  # unblock a producer waiting to hand over an item
                self.items.get(timeout=0.05)
            except queue.Empty:
                pass
        self.thread.join()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self.produce():
                if not self._put((item, None)):
                    return
            self._put((self._END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((None, exc))

    def _consume(self) -> Iterator[Any]:
        while True:
            item, exc = self.items.get()
            if exc is not None:
                raise exc
            if item is self._END:
                return
            yield item
