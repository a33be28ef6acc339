"""The README's set-up commands exist and are what CI runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_the_readme_sets_up_with_exactly_make_run_and_make_test():
    assert setup_commands() == ["make run", "make test"]


def test_the_make_targets_exist():
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run", "test", "SERVE=0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "manage.py migrate" in result.stdout
    assert "manage.py ensure_admin" in result.stdout
    assert "manage.py load_demo" in result.stdout
    assert "pytest" in result.stdout


def test_ci_runs_the_readme_test_command_on_sqlite_and_postgres():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in ci
    assert ci.count("make test") >= 2
    assert "makemigrations --check --dry-run" in ci
