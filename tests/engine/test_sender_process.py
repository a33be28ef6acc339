"""The sender process of a large run (`python -m core.engine.sender`) ends with its own exit
status, also when it stops on an error while its input is still open: it never aborts at
interpreter shutdown (a thread blocked in sys.stdin's buffer made Python abort with SIGABRT)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_sender_that_fails_exits_with_status_1_while_its_input_is_open():
    if connection.vendor != "postgresql":
        pytest.skip("the sender process runs beside PostgreSQL runs only")
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["GROUPAROO_SENDER_DATABASE_NAME"] = str(connection.settings_dict["NAME"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.engine.sender", "1", "987654321"],  # no such destination
        cwd=str(settings.BASE_DIR), env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:  # stdin stays open: the process must stop on its own, on its error
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        proc.stdin.close()
    text = err.decode(errors="replace")
    assert code == 1, text[-2000:]
    assert "Fatal Python error" not in text
    assert "the sender process stopped" in text
