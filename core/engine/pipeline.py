"""Overlapping a run's stages: reading ahead while writing, sending while importing.

Reading ahead: a thread reads the source's next page (and its aggregates) and prepares it
(keys, typed staging rows: pure Python, no application database) while the run writes the
current page. Writing waits on the database about half of the time, so on two cores the two
overlap. Pages are still written one at a time, in order, each in its own transaction, so what
is committed, and where a resumed run starts, is unchanged; at most one page is held ahead.

Sending while importing: a second thread sends a run's due exports as its batches commit; for
a large run, a second process (core/engine/sender.py) that claims by row lock (exports_send's
hold=True: a batch is locked, sent and given its outcomes in one transaction), so each export is
written twice instead of three times.

A first sync used to import everything and only then send. On PostgreSQL the import waits on
the database about half of the time, so a sender thread with its own connection overlaps the
two phases on a 2-core machine. It does exactly what a queue worker does concurrently with a
run (claims with FOR UPDATE SKIP LOCKED, records outcomes for its own claims), so delivery,
ordering and retries are unchanged. When the import ends the sender stops after its batch in
hand, and the run completes without waiting for that batch (a destination slow to answer must
not keep a run open); whatever is left is sent by the destinations' own queues after the run
(core/engine/delivery.py). The process that ran the import waits for its senders before it
ends (`finish_senders`).

Not used on SQLite (one writer at a time: the threads would only queue for the lock) nor inside
a caller's transaction (the thread could not see uncommitted exports).
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

IDLE_SECONDS = 0.2


# Senders of ended imports that may still be sending their batch in hand.
_finishing: list[ConcurrentSender] = []


def finish_senders(timeout: float | None = None) -> bool:
    """Wait for every sender of this process's ended imports to end its batch in hand (its
    outcomes recorded), `timeout` seconds in all; False if one is still sending. The foreground
    command and the run task call this before they end, so a sender is never cut off mid-send
    (its exports would wait for their lease)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while _finishing:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not _finishing[0].finish(left):
            return False
        _finishing.pop(0)
    return True


class ConcurrentSender:
    """Context manager: `with ConcurrentSender(run_id, destination_ids) as sender:` around the
    import; `sender.start(rows)` once the run knows how many rows it will read.

    A run of at least GROUPAROO_SENDER_PROCESS_MIN_ROWS rows sends from a separate process
    (`python -m core.engine.sender`): a thread shares the interpreter lock with the import, whose
    Python work then waits for the sender's. Smaller runs use a thread (a process costs about a
    second of start-up). Either way the sender stops after the batch in hand when the import
    ends, without the run waiting for it (`finish_senders` does)."""

    def __init__(self, run_id: int, destination_ids: list[int]):
        self.run_id = run_id
        self.destination_ids = list(destination_ids)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.process: subprocess.Popen | None = None

    @staticmethod
    def enabled() -> bool:
        return connection.vendor == "postgresql" and not connection.in_atomic_block

    def __enter__(self) -> ConcurrentSender:
        return self

    def start(self, expected_rows: int) -> None:
        if not self.destination_ids or not self.enabled() or self.thread or self.process:
            return
        threshold = settings.GROUPAROO_SENDER_PROCESS_MIN_ROWS
        if threshold and expected_rows >= threshold:
            self.process = self._spawn()
            if self.process is not None:
                return
        self.thread = threading.Thread(
            target=self._loop, name=f"run-{self.run_id}-sender", daemon=True
        )
        self.thread.start()

    def _spawn(self) -> subprocess.Popen | None:
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = os.environ.get(
            "DJANGO_SETTINGS_MODULE", "grouparoo_site.settings"
        )
        # The database this process uses (tests rename it at run time).
        env["GROUPAROO_SENDER_DATABASE_NAME"] = str(connection.settings_dict["NAME"])
        ids = ",".join(str(d) for d in self.destination_ids)
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "core.engine.sender", str(self.run_id), ids],
                cwd=str(settings.BASE_DIR),
                env=env,
                stdin=subprocess.PIPE,
            )
        except OSError:
            logger.exception("run %s: could not start the sender process; sending from a thread", self.run_id)
            return None

    def __exit__(self, *exc) -> None:
        # Ask the sender to stop after the batch in hand, without waiting for it here: a
        # destination slow to answer that batch must not keep the run open. Whoever ends the
        # process waits for it (finish_senders).
        self.stop.set()
        if self.process is not None:
            try:
                self.process.stdin.close()  # end of input: the process stops after its batch
            except OSError:
                pass
        if self.thread is not None or self.process is not None:
            _finishing.append(self)

    def finish(self, timeout: float | None = None) -> bool:
        """Wait for the sender to end its batch in hand; False if it is still sending."""
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                return False
        if self.process is not None:
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            if code:
                logger.warning("run %s: the sender process exited with status %s", self.run_id, code)
        return True

    def _loop(self) -> None:
        try:
            send_until(self.destination_ids, self.stop)
        except Exception:
            # The run's own export phase sends whatever is left; say why this thread stopped.
            logger.exception("run %s: the concurrent sender stopped", self.run_id)
        finally:
            connection.close()


def send_until(destination_ids: list[int], stop: threading.Event, *, hold: bool = False) -> None:
    """Send the destinations' due exports, batch by batch, until `stop` is set. hold: claim by
    row lock for the length of each send (see exports_send)."""
    from core.engine.exports import exports_send

    while not stop.is_set():
        progressed = False
        for did in destination_ids:
            if stop.is_set():
                break
            progressed = bool(exports_send(destination_id=did, hold=hold).claimed) or progressed
        if not progressed:
            stop.wait(IDLE_SECONDS)


class ReadAhead:
    """Iterate over what `produce()` yields, produced one item ahead in a thread.

    `with ReadAhead(produce) as items: for item in items: ...`. An exception in the producer is
    raised in the consumer, at the item it would have been; leaving the block early stops the
    producer after the item in hand (a page read in vain is simply read again by the next run).
    """

    _END = object()
    # The writing thread waits on the database after every statement, then for the
    # interpreter lock, which the reading thread may hold for a whole switch interval (5 ms by
    # default): hundreds of statements per run. 1 ms made 100k first syncs ~4% faster.
    SWITCH_INTERVAL = 0.001

    def __init__(self, produce: Callable[[], Iterator[Any]], depth: int = 1):
        self.produce = produce
        self.items: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)

    def __enter__(self) -> Iterator[Any]:
        self.switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self.switch_interval, self.SWITCH_INTERVAL))
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
        sys.setswitchinterval(self.switch_interval)

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
