"""Destination-side fault tests: a webhook receiver speaking the contract of docs/connectors.md,
a small world syncing a SQLite users table into webhook destinations, and real worker processes
(`manage.py run_schedule`, `manage.py qcluster`) sharing the test's PostgreSQL database."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.db import connection

from core import models as m
from core.choices import DestinationCollection, PropertyType, RuleOp, SyncMode

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec-faults-0123456789abcdef"

# A behaviour answers one request: (status, headers, body) from the request's records.
Behaviour = Callable[[list[dict]], tuple[int, dict[str, str], bytes]]


def ok(records: list[dict]) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, b"ok"


def _open_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@dataclass
class Request:
    at: float  # time.time() when it arrived
    status: int  # what the receiver answered
    records: list[dict]


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1. `start()`/`stop()` make the port listen or refuse
    connections (the port stays reserved for this receiver); `behaviour` decides each answer.
    It checks every signature, keeps every request, and applies the records of 2xx answers
    (minus the ones it rejected) to `rows`, keyed by the mapped "id", as an upserting
    destination would."""

    behaviour: Behaviour = ok
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    rows: dict[int, dict] = field(default_factory=dict)
    applied: Counter = field(default_factory=Counter)  # export_id -> times applied
    bad_signatures: int = 0
    # While cleared, requests wait (up to a minute) before being answered.
    gate: threading.Event = field(default_factory=lambda: _open_event())

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        if not self.port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.gate.wait(timeout=60)
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                records = json.loads(body).get("records", [])
                if not hmac.compare_digest(self.headers.get("X-Grouparoo-Signature", ""), expected):
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    status, headers, answer = 401, {}, b"bad signature"
                else:
                    with receiver.lock:
                        status, headers, answer = receiver.behaviour(records)
                        receiver.requests.append(Request(time.time(), status, records))
                        if 200 <= status < 300:
                            rejected = {r["export_id"] for r in json.loads(answer or b"{}").get("rejected", [])} \
                                if answer.startswith(b"{") else set()
                            for r in records:
                                if r["export_id"] in rejected:
                                    continue
                                receiver.applied[r["export_id"]] += 1
                                key = (r["properties"] or r["old_properties"]).get("id")
                                if r["operation"] == "delete":
                                    receiver.rows.pop(key, None)
                                else:
                                    receiver.rows[key] = {**r["properties"], "groups": r["groups"]}
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered_records(self) -> Counter:
        """record_id -> how many times a 2xx answer applied it."""
        with self.lock:
            return Counter(r["record_id"] for q in self.requests if 200 <= q.status < 300 for r in q.records
                           if self.applied.get(r["export_id"]))

    def times_of(self, export_id: int) -> list[float]:
        with self.lock:
            return [q.at for q in self.requests if any(r["export_id"] == export_id for r in q.records)]


def user(i: int) -> tuple:
    return (i, f"user{i}@example.com", float(i % 1000), f"2026-01-01T00:00:{i % 60:02d}")


def expected_row(i: int) -> dict:
    ltv = float(i % 1000)
    return {"id": i, "email": f"user{i}@example.com", "ltv": ltv, "groups": ["high-value"] if ltv > 500 else []}


@dataclass
class World:
    src: Path
    model: m.RecordModel
    source: m.Source
    schedule: m.Schedule
    destinations: list[m.Destination]


def make_world(tmp_path: Path, n: int, urls: list[str], *, request_size: int = 100, timeout: float = 5,
               users=None) -> World:
    """Users 1..n in a SQLite table, synced (id, email, ltv, group "High value": ltv > 500) into
    one webhook destination per URL, `request_size` records per request."""
    src = tmp_path / "users.sqlite3"
    with sqlite3.connect(src) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, ltv REAL, updated_at TEXT)")
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", users or [user(i) for i in range(1, n + 1)])
    model = m.RecordModel.objects.create(name="customers")
    app = m.App.objects.create(name="shop", type="sqlite", options={"path": str(src)})
    source = m.Source.objects.create(name="users", app=app, model=model, type="sqlite-table",
                                     options={"table": "users"}, is_primary=True)
    props = {
        "id": m.Property.objects.create(model=model, source=source, key="user_id", type=PropertyType.INTEGER,
                                        options={"column": "id"}, unique=True, is_primary_key=True),
        "email": m.Property.objects.create(model=model, source=source, key="email", type=PropertyType.EMAIL,
                                           options={"column": "email"}, unique=True),
        "ltv": m.Property.objects.create(model=model, source=source, key="ltv", type=PropertyType.FLOAT,
                                         options={"column": "ltv"}),
    }
    m.SourceMapping.objects.create(source=source, remote_key="id", property=props["id"])
    schedule = m.Schedule.objects.create(source=source, options={"column": "updated_at"}, incremental=True)
    high_value = m.Group.objects.create(model=model, name="High value")
    m.GroupRule.objects.create(group=high_value, property=props["ltv"], op=RuleOp.GT, match="500")
    destinations = []
    for k, url in enumerate(urls):
        hook_app = m.App.objects.create(name=f"hook{k}", type="webhook",
                                        options={"url": url, "batchSize": request_size, "timeout": timeout},
                                        secret_options={"secret": SECRET})
        d = m.Destination.objects.create(name=f"hook{k}", app=hook_app, model=model, type="webhook-export",
                                         sync_mode=SyncMode.SYNC, collection=DestinationCollection.MODEL, options={})
        for remote, prop in props.items():
            m.DestinationMapping.objects.create(destination=d, remote_key=remote, property=prop)
        m.DestinationGroupMembership.objects.create(destination=d, group=high_value, remote_key="high-value")
        destinations.append(d)
    return World(src, model, source, schedule, destinations)


def setting(key: str, value: str) -> None:
    m.Setting.objects.update_or_create(plugin="core", key=key, defaults={"value": value})


def worker_env(**extra: str) -> dict:
    """The environment of a worker process on the test's PostgreSQL database, loopback webhooks allowed."""
    s = connection.settings_dict
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["DATABASE_URL"] = (f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}"
                           f"/{s['NAME']}")
    env["GROUPAROO_ALLOW_PRIVATE_WEBHOOKS"] = "true"
    env.update(extra)
    return env


def run_schedule(schedule: m.Schedule, log: Path) -> subprocess.Popen:
    """`manage.py run_schedule <id>` in a subprocess, output to `log`."""
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "manage.py", "run_schedule", str(schedule.pk)], cwd=ROOT,
                                env=worker_env(), stdout=out, stderr=subprocess.STDOUT)


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, procs=(), every: float = 0.02) -> Any:
    """Poll until condition() is truthy; fail with `what` on timeout or when a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for p in procs:
            if p.poll() is not None and p.returncode != 0:
                raise AssertionError(f"{what}: worker exited with {p.returncode}")
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
