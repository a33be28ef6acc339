"""The soak test (`manage.py soak`): recurring schedules against a mutating source and flaky
destinations, with real workers, then a check that nothing was lost or left stuck.

The pieces, all local:

- a SQLite source table `users(id, email, name, score, updated_at)` that a mutator thread
  inserts into, updates (bumping `updated_at`) and deletes from, continuously;
- a recurring, incremental schedule on it (confirm records on), plus a full run every few
  minutes and one at the end, as an operator's "Run now (full)" would start;
- `manage.py qcluster` worker processes (real django-q2 workers on the application database);
  this process is only the clock: it calls `core.tasks.tick` every few seconds;
- a local HTTP receiver speaking the webhook contract (docs/connectors.md) behind two webhook
  destinations, `soak-steady` and `soak-picky`, that injects faults: HTTP 503 with and without
  Retry-After, 429 with Retry-After, connections reset (before or after applying the body),
  and outage windows. `soak-picky` also refuses, with HTTP 422 and a reason, every record
  whose id is a multiple of 13 (one record per request, so exactly those records fail).

At the end the mutator stops, a final full run confirms deletions, the queue drains, and
`soak_check` compares each destination with the source's truth and the run history with
"nothing stuck". Everything here is test tooling: it writes only through the product's own
services and tasks, and reads the application database for the verdict.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PICKY_MODULUS = 13
# Faults go to soak-steady only. soak-picky sends one record per request (so a refusal fails
# exactly its record), and a transient failure mid-batch spends an attempt of every record not
# yet sent in that batch: under steady faults, 50 one-record requests per batch would burn
# attempts too fast to tell real losses from exhausted retries.
FAULTY_PATHS = ("/steady",)
GROUP_REMOTE = "high-score"
NAMES = (
    "Ada", "Zoë", "Łukasz", "Ærøskøbing", "Ĳsbrand", "Ωmega", "Дарья", "محمد", "דוד", "हिन्दी",
    "日本語", "한국어", "ไทย", "😀 smile", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\U00020000\U0002a6d6 ext-B", "\U00030000 plane 3",
    "tab\tinside", "quote ' and \" and ; DROP TABLE users; --", "a" * 300,
)


# --- the source and its mutator ----------------------------------------------------------------


def _stamp(previous: str | None) -> str:
    """An ISO timestamp strictly after `previous` (one writer: watermarks only move forward)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    if previous is not None:
        floor = datetime.fromisoformat(previous) + timedelta(microseconds=1)
        now = max(now, floor)
    return now.isoformat(timespec="microseconds")


def source_create(path: Path, rows: int, rng: random.Random) -> str:
    """Create the source table with `rows` rows; returns the last updated_at written."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, "
            "score REAL NOT NULL, updated_at TEXT NOT NULL)"
        )
        last = None
        data = []
        for i in range(1, rows + 1):
            last = _stamp(last)
            data.append((i, f"u{i}.v0@soak.example", rng.choice(NAMES), _score(rng), last))
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?)", data)
    return last or _stamp(None)


def _score(rng: random.Random) -> float:
    return round(rng.uniform(0, 1000), 2)


def source_truth(path: Path) -> dict[int, tuple[str, str, float]]:
    with sqlite3.connect(path) as conn:
        return {
            row[0]: (row[1], row[2], row[3])
            for row in conn.execute("SELECT id, email, name, score FROM users")
        }


class Mutator(threading.Thread):
    """Inserts, updates and deletes source rows at `rate` operations a second until stopped."""

    def __init__(self, path: Path, *, rate: float, seed: int, last_stamp: str):
        super().__init__(name="soak-mutator", daemon=True)
        self.path = path
        self.rate = rate
        self.rng = random.Random(seed)
        self.last = last_stamp
        self.stop_event = threading.Event()
        self.counts: Counter[str] = Counter()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=60)
            next_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM users").fetchone()[0] + 1
            while not self.stop_event.wait(1.0 / self.rate):
                op = self.rng.random()
                ids = [r[0] for r in conn.execute("SELECT id FROM users ORDER BY random() LIMIT 1")]
                self.last = _stamp(self.last)
                with conn:
                    if op < 0.25 or not ids:
                        conn.execute(
                            "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                            (next_id, f"u{next_id}.v0@soak.example", self.rng.choice(NAMES),
                             _score(self.rng), self.last),
                        )
                        next_id += 1
                        self.counts["inserted"] += 1
                    elif op < 0.85:
                        version = self.rng.randrange(1_000_000)
                        conn.execute(
                            "UPDATE users SET score = ?, name = ?, email = ?, updated_at = ? WHERE id = ?",
                            (_score(self.rng), self.rng.choice(NAMES), f"u{ids[0]}.v{version}@soak.example",
                             self.last, ids[0]),
                        )
                        self.counts["updated"] += 1
                    else:
                        conn.execute("DELETE FROM users WHERE id = ?", (ids[0],))
                        self.counts["deleted"] += 1
            conn.close()
        except BaseException as exc:  # reported by the command
            self.error = exc

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=30)


# --- the flaky receiver ------------------------------------------------------------------------


@dataclass
class Faults:
    """Probabilities per request, and outage windows (every `outage_every` s, `outage_for` s)."""

    reset: float = 0.03
    error_503: float = 0.04
    throttle_503: float = 0.02
    throttle_429: float = 0.03
    outage_every: float = 60.0
    outage_for: float = 3.0


@dataclass
class Receiver:
    """What the receiver holds: per path (destination), record id -> (properties, groups)."""

    faults: Faults
    seed: int
    stores: dict[str, dict[int, tuple[dict, list]]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.monotonic)
    faulty: bool = True

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def in_outage(self) -> bool:
        f = self.faults
        if not f.outage_every:
            return False
        return (time.monotonic() - self.started) % f.outage_every > f.outage_every - f.outage_for

    def decide(self, path: str) -> str:
        with self.lock:
            if not self.faulty or path not in FAULTY_PATHS:
                return "ok"
            if self.in_outage():
                return "outage"
            r = self.rng.random()
            f = self.faults
            for kind, p in (("reset", f.reset), ("503", f.error_503), ("throttle-503", f.throttle_503),
                            ("throttle-429", f.throttle_429)):
                if r < p:
                    return kind
                r -= p
            return "ok"

    def apply(self, path: str, document: dict) -> tuple[int, str]:
        """Apply a records document; (status, body). The picky path refuses multiples of 13."""
        records = document.get("records", [])
        if path == "/picky":
            refused = [r["properties"].get("id") for r in records
                       if int(r["properties"].get("id") or 0) % PICKY_MODULUS == 0]
            if refused:
                with self.lock:
                    self.counts["rejected"] += len(records)
                return 422, f"record {refused[0]} rejected: ids divisible by {PICKY_MODULUS} are refused"
        with self.lock:
            store = self.stores.setdefault(path, {})
            for r in records:
                key = int(r["properties"].get("id"))
                if r["operation"] == "delete":
                    store.pop(key, None)
                else:
                    store[key] = (dict(r["properties"]), list(r["groups"]))
            self.counts["applied"] += len(records)
        return 200, "ok"

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _answer(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
                data = body.encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _reset(self) -> None:
                # An abortive close (RST): the client sees the connection reset, no answer.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                document = json.loads(body or b"{}")
                with receiver.lock:
                    receiver.counts["requests"] += 1
                kind = receiver.decide(self.path)
                with receiver.lock:
                    receiver.counts[f"fault:{kind}"] += kind != "ok"
                if kind == "outage":
                    self._answer(503, "down for maintenance")
                elif kind == "reset":
                    if receiver.rng.random() < 0.5:  # applied, but the answer is lost
                        receiver.apply(self.path, document)
                    self._reset()
                elif kind == "503":
                    self._answer(503, "temporarily unavailable")
                elif kind == "throttle-503":
                    self._answer(503, "busy", {"Retry-After": "1"})
                elif kind == "throttle-429":
                    self._answer(429, "slow down", {"Retry-After": "1"})
                else:
                    status, text = receiver.apply(self.path, document)
                    self._answer(status, text)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="soak-receiver", daemon=True).start()
        return server


# --- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    schedule_id: int
    user_id_property_id: int
    destinations: dict[str, int]  # receiver path -> destination id


def world_create(*, source_path: Path, port: int) -> World:
    """The configuration, created through the models as the admin or a config file would."""
    from core import models as m
    from core.choices import DestinationCollection, PropertyType, RuleOp, SyncMode

    model = m.RecordModel.objects.create(name="soak-customers")
    app = m.App.objects.create(name="soak-shop", type="sqlite", options={"path": str(source_path)})
    source = m.Source.objects.create(
        name="soak-users", app=app, model=model, type="sqlite-table", options={"table": "users"},
        is_primary=True,
    )
    props = {}
    for key, column, ptype, unique in (
        ("user_id", "id", PropertyType.INTEGER, True),
        ("email", "email", PropertyType.EMAIL, True),
        ("name", "name", PropertyType.STRING, False),
        ("score", "score", PropertyType.FLOAT, False),
    ):
        props[key] = m.Property.objects.create(
            model=model, source=source, key=key, type=ptype, options={"column": column},
            unique=unique, is_primary_key=key == "user_id",
        )
    m.SourceMapping.objects.create(source=source, remote_key="id", property=props["user_id"])
    schedule = m.Schedule.objects.create(
        source=source, options={"column": "updated_at"}, incremental=True, recurring=True,
        recurring_frequency=60, confirm_records=True,
    )
    group = m.Group.objects.create(model=model, name="soak high score")
    m.GroupRule.objects.create(group=group, property=props["score"], op=RuleOp.GT, match="500")
    destinations = {}
    for path, name, batch in (("/steady", "soak-steady", 10), ("/picky", "soak-picky", 1)):
        hook = m.App.objects.create(
            name=f"{name}-app", type="webhook",
            options={"url": f"http://127.0.0.1:{port}{path}", "batchSize": batch, "timeout": 5},
            secret_options={"secret": "soak-signing-secret"},
        )
        dest = m.Destination.objects.create(
            name=name, app=hook, model=model, type="webhook-export", sync_mode=SyncMode.SYNC,
            collection=DestinationCollection.MODEL,
        )
        for remote, key in (("id", "user_id"), ("email", "email"), ("name", "name"), ("score", "score")):
            m.DestinationMapping.objects.create(destination=dest, remote_key=remote, property=props[key])
        m.DestinationGroupMembership.objects.create(destination=dest, group=group, remote_key=GROUP_REMOTE)
        destinations[path] = dest.pk
    return World(schedule.pk, props["user_id"].pk, destinations)


def tune_settings(*, max_attempts: int, retry_base_seconds: float) -> None:
    from core.models import Setting

    for key, value in (("exports-max-attempts", max_attempts), ("exports-retry-base-seconds", retry_base_seconds)):
        Setting.objects.update_or_create(plugin="core", key=key, defaults={"value": str(value)})


# --- workers -----------------------------------------------------------------------------------


def worker_start(log_path: Path, workers: int) -> subprocess.Popen:
    """A `manage.py qcluster` on the same database and settings as this process."""
    env = dict(os.environ)
    env.update({"Q_SYNC": "false", "Q_WORKERS": str(workers), "GROUPAROO_ALLOW_PRIVATE_WEBHOOKS": "true",
                "DEBUG": "false", "GROUPAROO_EXPORT_BATCH_SIZE": "50"})
    manage = Path(__file__).resolve().parents[1] / "manage.py"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen([sys.executable, str(manage), "qcluster"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=manage.parent, start_new_session=True)


def worker_stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:  # the cluster's own children (its session: start_new_session above)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


# --- the verdict -------------------------------------------------------------------------------


def compare(
    truth: dict[int, tuple[str, str, float]],
    store: dict[int, tuple[dict, list]],
    *,
    refused: set[int] = frozenset(),  # type: ignore[assignment]
) -> list[str]:
    """Differences between a destination and the source's truth (ids in `refused` must be
    absent). Pure: the soak's check, unit-tested on its own."""
    problems = []
    expected_ids = set(truth) - set(refused)
    for missing in sorted(expected_ids - set(store))[:20]:
        problems.append(f"id {missing}: missing at the destination")
    for extra in sorted(set(store) - expected_ids)[:20]:
        problems.append(f"id {extra}: at the destination but {'refused' if extra in refused else 'not in the source'}")
    for i in sorted(expected_ids & set(store)):
        email, name, score = truth[i]
        props, groups = store[i]
        want_groups = [GROUP_REMOTE] if score > 500 else []
        got = (props.get("id"), props.get("email"), props.get("name"), props.get("score"), sorted(groups))
        ok = (
            got[0] == i and got[1] == email and got[2] == name and isinstance(got[3], int | float)
            and abs(got[3] - score) < 1e-6 and got[4] == want_groups
        )
        if not ok:
            problems.append(f"id {i}: destination has {got!r}, source has {(i, email, name, score, want_groups)!r}")
        if len(problems) > 40:
            break
    return problems


def history_problems(world: World) -> list[str]:
    """Stuck or unexplained work in the run history."""
    from django.utils import timezone
    from django_q.models import Failure

    from core.choices import ACTIVE_RUN_STATES, ExportState, RunState
    from core.models import Export, Run

    problems = []
    active = Run.objects.filter(state__in=ACTIVE_RUN_STATES).count()
    if active:
        problems.append(f"{active} run(s) still pending or running")
    for run in Run.objects.filter(state=RunState.FAILED)[:5]:
        problems.append(f"run {run.pk} failed: {run.error[:200]}")
    stuck = Export.objects.filter(state__in=[ExportState.PENDING, ExportState.PROCESSING]).count()
    if stuck:
        problems.append(f"{stuck} export(s) still pending or processing")
    overdue = Export.objects.filter(state=ExportState.PENDING, send_after__lt=timezone.now() - timedelta(minutes=2))
    if overdue.exists():
        problems.append(f"{overdue.count()} pending export(s) overdue by more than 2 minutes")
    unexplained = Export.objects.filter(state=ExportState.FAILED, error_message="").count()
    if unexplained:
        problems.append(f"{unexplained} failed export(s) without a reason")
    steady_failed = Export.objects.filter(destination_id=world.destinations["/steady"], state=ExportState.FAILED)
    if steady_failed.exists():
        e = steady_failed.first()
        problems.append(f"{steady_failed.count()} export(s) to soak-steady failed (e.g. {e.error_message[:200]})")
    failures = Failure.objects.count()
    if failures:
        f = Failure.objects.first()
        problems.append(f"{failures} worker task(s) raised (e.g. {f.func}: {str(f.result)[:200]})")
    return problems


def picky_problems(world: World, truth: dict[int, tuple]) -> list[str]:
    """Every refused record that still exists: its newest export to soak-picky failed with
    the receiver's reason (final, level info); no other record failed there."""
    from core.choices import ExportState
    from core.models import Export, RecordProperty

    problems = []
    dest = world.destinations["/picky"]
    ids = dict(
        RecordProperty.objects.filter(property_id=world.user_id_property_id).values_list("record_id", "value_number")
    )
    newest: dict[int, Export] = {}
    for e in Export.objects.filter(destination_id=dest).exclude(state=ExportState.CANCELED).order_by("id"):
        newest[e.record_id] = e
    for record_id, e in newest.items():
        uid = ids.get(record_id)
        uid = int(uid) if uid is not None else None
        if uid is not None and uid % PICKY_MODULUS == 0:
            refused_ok = e.state == ExportState.FAILED and "rejected" in e.error_message and e.error_level == "info"
            if uid in truth and not refused_ok:
                problems.append(f"id {uid}: refused by soak-picky but its export is {e.state} ({e.error_message[:80]!r})")
        elif e.state == ExportState.FAILED:
            problems.append(f"id {uid}: export to soak-picky failed: {e.error_message[:200]}")
    return problems[:40]


def summary_counts() -> dict[str, Any]:
    from django.db.models import Count, Sum

    from core.models import Export, Record, Run

    runs = dict(Run.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    full_runs = Run.objects.filter(full=True).count()
    exports = dict(Export.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    retried = Export.objects.filter(attempts__gt=1).count()
    attempts = Export.objects.aggregate(s=Sum("attempts"))["s"] or 0
    records = dict(Record.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    return {"runs": runs, "full_runs": full_runs, "exports": exports, "exports_retried": retried,
            "attempts": attempts, "records": records}
