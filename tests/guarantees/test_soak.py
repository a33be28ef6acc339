"""The soak command (`make soak`) keeps working: a short run passes, and its check can fail."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from core.soak import GROUP_REMOTE, compare

ROOT = Path(__file__).resolve().parents[2]


def test_compare_finds_missing_extra_stale_and_wrong_group_rows():
    truth = {1: ("a@x.io", "Ada", 900.0), 2: ("b@x.io", "Bob", 10.0), 3: ("c@x.io", "Cy", 600.0)}
    exact = {
        1: ({"id": 1, "email": "a@x.io", "name": "Ada", "score": 900.0}, [GROUP_REMOTE]),
        2: ({"id": 2, "email": "b@x.io", "name": "Bob", "score": 10.0}, []),
        3: ({"id": 3, "email": "c@x.io", "name": "Cy", "score": 600.0}, [GROUP_REMOTE]),
    }
    assert compare(truth, exact) == []
    assert compare(truth, {k: v for k, v in exact.items() if k != 3}, refused={3}) == []
    stale = {**exact, 2: ({"id": 2, "email": "b@x.io", "name": "Bob", "score": 11.0}, [])}
    wrong_group = {**exact, 1: (exact[1][0], [])}
    extra = {**exact, 4: ({"id": 4}, [])}
    missing = {k: v for k, v in exact.items() if k != 1}
    assert [p.split(":")[0] for p in compare(truth, stale)] == ["id 2"]
    assert [p.split(":")[0] for p in compare(truth, wrong_group)] == ["id 1"]
    assert compare(truth, extra) == ["id 4: at the destination but not in the source"]
    assert compare(truth, missing) == ["id 1: missing at the destination"]
    assert compare(truth, exact, refused={3}) == ["id 3: at the destination but refused"]


@pytest.mark.slow
def test_a_short_soak_passes_with_faults_injected(postgres_url, tmp_path):
    name = f"gt_soak_{uuid.uuid4().hex[:10]}"
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"{postgres_url.rsplit('/', 1)[0]}/{name}".replace("postgresql://", "postgres://"),
        "Q_SYNC": "false",
        "DEBUG": "false",
    })
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
        done = subprocess.run(
            [sys.executable, "manage.py", "soak", "--seconds", "25", "--rows", "300", "--rate", "8",
             "--tick-seconds", "2", "--seed", "7", "--drain-seconds", "180", "--workdir", str(tmp_path)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
        )
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    assert "soak: OK" in out and "PROBLEM" not in out
    assert "soak-steady:" in out and "soak-picky:" in out
    source_line = next(line for line in out.splitlines() if line.strip().startswith("source:"))
    for op in ("inserted", "updated", "deleted"):
        assert int(re.search(rf"'{op}': (\d+)", source_line).group(1)) > 0, out
    refused = int(re.search(r"(\d+) refused", out).group(1))
    assert refused > 0, out  # the picky destination did refuse records, and the check accounted for them
    retried = int(re.search(r"(\d+) retried", out).group(1))
    assert retried > 0, out  # faults were injected and survived
