"""A 20,000-customer shop synced by real worker processes, and the exact checks every fault test
makes afterwards.

The application database is the test's PostgreSQL database, shared with the workers (the test
runs with transaction=True so the workers see what it commits). The source and the destination
are SQLite files. The destination logs every row it receives (a trigger on insert and update),
so the tests can tell a harmless re-send of the same content from a record sent twice with
different content.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count

from core import models as m
from core.choices import ExportState, RunState
from tests.engine.conftest import Shop, make_shop

ROOT = Path(__file__).resolve().parents[2]
N = 20_000
LEASE_SECONDS = 2


def require_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("worker processes share the application database with the test: PostgreSQL only")


def users(n: int = N) -> list[tuple]:
    return [
        (i, f"user{i}@example.com", f"U{i}", float(i % 1000), f"2026-01-{1 + i % 28:02d}T00:00:00")
        for i in range(1, n + 1)
    ]


def purchases(n: int = N) -> list[tuple]:
    out = []
    for i in range(1, n + 1):
        if i % 4 == 0:
            out.append((len(out) + 1, i, float(i % 50), "2026-02-01T00:00:00"))
        if i % 10 == 0:
            out.append((len(out) + 1, i, 7.5, "2026-02-03T00:00:00"))
    return out


def big_shop(tmp_path: Path, n: int = N) -> Shop:
    """The shop world with n customers, a short run lease, and a write log at the destination."""
    shop = make_shop(tmp_path, users=users(n), purchases=purchases(n))
    m.Setting.objects.update_or_create(
        plugin="core", key="runs-lease-seconds", defaults={"value": str(LEASE_SECONDS)}
    )
    with sqlite3.connect(shop.dst) as conn:
        conn.execute(
            "CREATE TABLE crm_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, content TEXT)"
        )
        content = (
            "json_array(NEW.email, NEW.first_name, NEW.ltv, NEW.purchase_count, NEW.total_spend, "
            "NEW.last_purchase_at)"
        )
        for event in ("INSERT", "UPDATE"):
            conn.execute(
                f"CREATE TRIGGER crm_log_{event.lower()} AFTER {event} ON crm BEGIN "
                f"INSERT INTO crm_log (id, content) VALUES (NEW.id, {content}); END"
            )
    return shop


def expected_rows(n: int = N) -> dict[str, tuple]:
    """What the destination must hold: one row per customer, from the source's truth."""
    spend: dict[int, list[tuple[float, str]]] = {}
    for _pid, uid, amount, at in purchases(n):
        spend.setdefault(uid, []).append((amount, at))
    out = {}
    for i, email, first, ltv, _updated in users(n):
        bought = spend.get(i, [])
        out[str(i)] = (
            email,
            first,
            ltv,
            len(bought),
            sum(a for a, _ in bought) if bought else 0,
            max(at for _, at in bought) + "+00:00" if bought else None,
        )
    return out


def worker_env(**extra: str) -> dict:
    s = connection.settings_dict
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.faults_process.worker_settings"
    env["DATABASE_URL"] = (
        f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Worker:
    """A `manage.py run_schedule` process whose output goes to a file (a pipe could fill up)."""

    def __init__(self, tmp_path: Path, schedule: m.Schedule, name: str, **env: str):
        self.log = tmp_path / f"{name}.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 (closed in wait)
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_schedule", str(schedule.pk)],
            cwd=ROOT,
            env=worker_env(**env),
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._out.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait(30)


def wait_until(
    check: Callable[[], object], *, worker: Worker | None = None, timeout: float = 120, step=0.01
):
    """Poll until check() is truthy; fail early if the worker exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if worker is not None and not worker.alive():
            pytest.fail(f"the worker exited early:\n{worker.output()[-3000:]}")
        time.sleep(step)
    pytest.fail(f"timed out waiting{'' if worker is None else ':' + worker.output()[-3000:]}")


def the_run(shop: Shop) -> m.Run | None:
    return m.Run.objects.filter(source=shop.users).order_by("pk").first()


def assert_synced_exactly(shop: Shop, run: m.Run, n: int = N) -> None:
    """The run completed once, every batch was written once, and the destination is exact."""
    run.refresh_from_db()
    assert run.state == RunState.COMPLETE, (run.state, run.error)
    assert m.Run.objects.filter(source=shop.users).count() == 1
    # Each committed batch left one Import row; the batches tile the source exactly once.
    imports = list(m.Import.objects.filter(run=run).order_by("batch").values_list("batch", "rows_read"))
    assert [b for b, _ in imports] == list(range(1, len(imports) + 1))
    assert sum(r for _, r in imports) == n == run.rows_read
    assert run.records_created == n
    assert m.Record.objects.filter(model=shop.model).count() == n
    # Every customer has exactly its properties: nothing half-written, nothing twice.
    per_prop = dict(
        m.RecordProperty.objects.filter(record__model=shop.model)
        .values_list("property__key")
        .annotate(c=Count("*"))
    )
    for key in ("user_id", "email", "first_name", "ltv", "purchase_count"):
        assert per_prop.get(key) == n, (key, per_prop.get(key))
    # Exports: one live payload per record, all complete, none left in flight.
    exports = m.Export.objects.filter(destination=shop.destination).exclude(state=ExportState.CANCELED)
    payloads: dict[int, set[str]] = {}
    for record_id, props in exports.values_list("record_id", "new_properties"):
        payloads.setdefault(record_id, set()).add(repr(sorted(props.items())))
    assert len(payloads) == n
    assert all(len(v) == 1 for v in payloads.values())
    assert not exports.exclude(state=ExportState.COMPLETE).exists()
    assert run.exports_created == exports.count()
    # The destination holds exactly the expected rows and group memberships ...
    with sqlite3.connect(shop.dst) as conn:
        rows = {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                "SELECT id, email, first_name, ltv, purchase_count, total_spend, last_purchase_at FROM crm"
            )
        }
        groups = set(conn.execute("SELECT contact_id, group_name FROM crm_groups"))
        log = list(conn.execute("SELECT id, content FROM crm_log"))
    assert rows == expected_rows(n)
    assert groups == {(str(i), "high-value") for i in range(1, n + 1) if i % 1000 > 500}
    # ... and no record was ever written there with two different contents.
    contents: dict[str, set[str]] = {}
    for rid, content in log:
        contents.setdefault(rid, set()).add(content)
    assert len(contents) == n
    twice = {rid: c for rid, c in contents.items() if len(c) > 1}
    assert not twice, list(twice.items())[:5]


class Pause:
    """A test-only trigger in the application database that holds one worker transaction open
    (pg_sleep), once, at a chosen statement: the test then acts on the worker at a known point.

        with Pause("core_import", "BEFORE INSERT", "NEW.batch = 5", seconds=60) as pause:
            pid = wait_until(pause.backend)
    """

    def __init__(self, table: str, timing: str, condition: str, *, seconds: float):
        self.table, self.timing, self.condition, self.seconds = table, timing, condition, seconds

    def __enter__(self) -> Pause:
        with connection.cursor() as cur:
            cur.execute("CREATE SEQUENCE fault_once")
            cur.execute(
                "CREATE FUNCTION fault_pause() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF {self.condition} THEN IF nextval('fault_once') = 1 THEN "
                f"PERFORM pg_sleep({float(self.seconds)}); END IF; END IF; RETURN NEW; END $$"
            )
            cur.execute(
                f"CREATE TRIGGER fault_pause {self.timing} ON {self.table} "
                "FOR EACH ROW EXECUTE FUNCTION fault_pause()"
            )
        return self

    def __exit__(self, *exc) -> None:
        with connection.cursor() as cur:
            cur.execute(f"DROP TRIGGER IF EXISTS fault_pause ON {self.table}")
            cur.execute("DROP FUNCTION IF EXISTS fault_pause()")
            cur.execute("DROP SEQUENCE IF EXISTS fault_once")

    def backend(self) -> int | None:
        """The paused worker backend: sleeping in the trigger, in a transaction that has written."""
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND wait_event = 'PgSleep' AND backend_xid IS NOT NULL"
            )
            row = cur.fetchone()
        return row[0] if row else None

    @staticmethod
    def terminate(pid: int) -> bool:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [pid])
            return bool(cur.fetchone()[0])


# Recording the outcomes of an export batch the destination has already received and committed,
# once at least 2,000 exports of the run are recorded as sent.
OUTCOMES_AFTER_2000 = (
    "core_export",
    "BEFORE UPDATE",
    "OLD.state = 'processing' AND NEW.state = 'complete' AND "
    "(SELECT exports_sent FROM core_run WHERE id = NEW.run_id) >= 2000",
)


def deliveries(shop: Shop) -> dict[str, int]:
    """How many times the destination received each record (the write log)."""
    with sqlite3.connect(shop.dst) as conn:
        return dict(conn.execute("SELECT id, COUNT(*) FROM crm_log GROUP BY id"))
