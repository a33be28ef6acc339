"""A worker SIGKILLed mid-run loses nothing and sends nothing twice with different content.

Runs on PostgreSQL only (the application database must be shared with a real worker process);
CI runs the suite on PostgreSQL too.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from core import models as m
from core.choices import ExportState, RunState
from tests.engine.conftest import make_shop

ROOT = Path(__file__).resolve().parents[2]
N = 3000


def _worker_env() -> dict:
    s = connection.settings_dict
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["DATABASE_URL"] = f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return env


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigkilled_worker_resumes_and_destination_is_exact(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the crash test shares the application database with a worker process: PostgreSQL only")
    users = [(i, f"user{i}@example.com", f"U{i}", float(i % 1000), "2026-01-01T00:00:00") for i in range(1, N + 1)]
    shop = make_shop(tmp_path, users=users, purchases=[])
    m.Setting.objects.update_or_create(plugin="core", key="runs-lease-seconds", defaults={"value": "2"})
    cmd = [sys.executable, "manage.py", "run_schedule", str(shop.users_schedule.pk)]
    worker = subprocess.Popen(cmd, cwd=ROOT, env=_worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    run = None
    while time.monotonic() < deadline:
        run = m.Run.objects.filter(source=shop.users).first()
        if run and run.batches_done >= 3:
            break
        assert worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    run.refresh_from_db()
    assert run.state == RunState.RUNNING and 0 < run.rows_read < N, (run.state, run.rows_read)
    time.sleep(2.5)  # let the lease expire
    done = subprocess.run(cmd, cwd=ROOT, env=_worker_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    run.refresh_from_db()
    assert run.state == RunState.COMPLETE
    assert m.Record.objects.count() == N
    with sqlite3.connect(shop.dst) as conn:
        rows = dict(conn.execute("SELECT id, ltv FROM crm"))
    assert rows == {str(i): float(i % 1000) for i in range(1, N + 1)}
    # Nothing sent twice with different content: one distinct payload per record.
    exports = m.Export.objects.filter(destination=shop.destination).exclude(state=ExportState.CANCELED)
    seen: dict[int, set[str]] = {}
    for record_id, props in exports.values_list("record_id", "new_properties"):
        seen.setdefault(record_id, set()).add(repr(sorted(props.items())))
    assert len(seen) == N
    assert all(len(v) == 1 for v in seen.values())
    assert not exports.exclude(state=ExportState.COMPLETE).exists()
