"""The application database connection lost in the middle of one of the engine's own COPY
statements (raw psycopg, not through Django's cursor wrapper): the batch rolls back and the run
retries it like any other lost connection, instead of failing."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection

from core import models as m
from core.choices import RunCreator, RunState
from core.engine import db, runs
from core.services.runs import run_create
from tests.faults_destinations.helpers import make_world, user

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_connection_lost_during_a_copy_is_retried(tmp_path, monkeypatch, settings, postgres_url):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is the PostgreSQL application database's")
    settings.GROUPAROO_BATCH_SIZE = 50
    monkeypatch.setattr(runs, "DB_RETRY_BASE", 0.001)
    # A destination, so each batch COPYs its exports (never sent here: the run only builds them).
    world = make_world(tmp_path, 0, ["http://127.0.0.1:9/hook"], users=[user(i) for i in range(1, 201)])
    real = db._copy
    dropped = []

    def copy_after_losing_the_connection(cursor, *args, **kwargs):
        # A COPY of the run's own thread (values' COPYs may run in a thread of their own, whose
        # errors were always handed over as Django's): the exports' one, say.
        if not dropped and threading.current_thread() is threading.main_thread():
            pid = cursor.connection.info.backend_pid
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            dropped.append(pid)
        return real(cursor, *args, **kwargs)

    monkeypatch.setattr(db, "_copy", copy_after_losing_the_connection)
    run, _ = run_create(source=world.source, schedule=world.schedule, creator_type=RunCreator.MANUAL,
                        enqueue=False)
    run = runs.run_process(run.pk)
    assert dropped
    assert run.state == RunState.COMPLETE, run.error
    assert run.rows_read == 200 and m.Record.objects.count() == 200
