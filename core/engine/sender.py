"""The sender process of a large run: `python -m core.engine.sender RUN_ID DESTINATION_IDS`.

Started by ConcurrentSender (core/engine/pipeline.py) with its standard input as a pipe. It
sends the destinations' due exports batch by batch, as a queue worker would (exclusive claims,
outcomes recorded for its own claims), until its input ends (the run's import is over, or the
run's process died) or it receives SIGTERM/SIGINT; it always finishes the batch in hand. Its
claims are row locks held for one send (exports_send's hold=True): killed mid-send, it leaves
its batch pending, for the run's export phase to send again.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

NICENESS = 10


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m core.engine.sender RUN_ID DESTINATION_IDS", file=sys.stderr)
        return 2
    run_id, destination_ids = int(argv[0]), [int(d) for d in argv[1].split(",") if d]
    # The import is the run's critical path; what this process has not sent when it ends,
    # the run sends at full priority. Yielding the CPU to it made 100k first syncs ~5% faster.
    try:
        os.nice(NICENESS)
    except OSError:
        pass
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    name = os.environ.get("GROUPAROO_SENDER_DATABASE_NAME")
    if name:
        settings.DATABASES["default"]["NAME"] = name
    from core.engine.pipeline import send_until

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def watch_input() -> None:
        # The raw descriptor, not sys.stdin's buffer: a daemon thread blocked inside the
        # buffer holds its lock, and the interpreter aborts at exit when it cannot take it.
        fd = sys.stdin.fileno()
        while os.read(fd, 4096):  # b"" at end of input
            pass
        stop.set()

    threading.Thread(target=watch_input, daemon=True).start()
    from core.engine.runs import batch_collector

    try:
        with batch_collector():
            send_until(destination_ids, stop, hold=True)
    except Exception:
        logging.getLogger(__name__).exception("run %s: the sender process stopped", run_id)
        return 1
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
