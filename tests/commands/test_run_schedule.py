"""`manage.py run_schedule` and `manage.py status`, and the clock's schedule row."""
from __future__ import annotations

import importlib
import io

import pytest
from django.core.management import CommandError, call_command

from core import models as m
from core.choices import RunState
from core.engine.runs import run_claim
from core.management.commands import run_schedule as run_schedule_command
from core.services.runs import run_create
from tests.engine.conftest import make_shop

pytestmark = pytest.mark.django_db


def test_run_schedule_all_syncs_primary_first_and_prints_a_summary(tmp_path):
    shop = make_shop(tmp_path)
    out = io.StringIO()
    call_command("run_schedule", "--all", stdout=out)
    text = out.getvalue()
    assert text.index("users: run") < text.index("purchases: run")
    assert "records created 4" in text
    assert "exports created 4, sent 4, failed 0" in text
    assert len(shop.dst_rows()) == 4
    assert set(m.Run.objects.values_list("state", flat=True)) == {RunState.COMPLETE}


def test_run_schedule_by_source_name_full_and_no_export(tmp_path):
    shop = make_shop(tmp_path)
    call_command("run_schedule", "users", "--no-export", stdout=io.StringIO())
    assert shop.dst_rows() == []
    assert m.Export.objects.filter(state="pending").count() == 4
    call_command("run_schedule", "users", "--full", stdout=io.StringIO())
    run = m.Run.objects.filter(source=shop.users).order_by("-pk").first()
    assert run.full and run.starting_watermark is None


def test_run_schedule_exits_non_zero_when_a_run_fails(tmp_path):
    shop = make_shop(tmp_path)
    m.Source.objects.filter(pk=shop.users.pk).update(options={"table": "no_such_table"})
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("run_schedule", "users", stdout=out)
    assert "failed" in out.getvalue() and "no_such_table" in out.getvalue()


def test_run_schedule_leaves_a_run_another_process_holds_and_exits_zero(tmp_path):
    shop = make_shop(tmp_path)
    run, _ = run_create(source=shop.users, enqueue=False)
    assert run_claim(run.pk)  # another worker holds it, its lease fresh
    out = io.StringIO()
    call_command("run_schedule", "users", stdout=out)  # no CommandError: not a failure
    assert f"users: run {run.pk} is already active in another process; left to it" in out.getvalue()
    run.refresh_from_db()
    assert (run.state, run.rows_read) == (RunState.RUNNING, 0)
    assert shop.dst_rows() == []


def test_run_schedule_that_created_the_run_but_lost_the_claim_says_so(tmp_path, monkeypatch):
    # The race two overlapping cron starts can have: this process creates the run, the other
    # one (which found it existing) claims it first.
    make_shop(tmp_path)
    real = run_schedule_command.run_create

    def create_then_lose_the_claim(**kwargs):
        run, created = real(**kwargs)
        assert created and run_claim(run.pk)
        return run, created

    monkeypatch.setattr(run_schedule_command, "run_create", create_then_lose_the_claim)
    out = io.StringIO()
    call_command("run_schedule", "users", stdout=out)
    text = out.getvalue()
    run = m.Run.objects.get()
    assert f"run {run.pk} is already active in another process; left to it" in text
    assert "records created" not in text  # no summary for work this process did not do
    assert run.state == RunState.RUNNING


def test_run_schedule_names_an_unknown_schedule(tmp_path):
    make_shop(tmp_path)
    with pytest.raises(CommandError, match="No schedule 'nope'"):
        call_command("run_schedule", "nope")


def test_status_prints_records_groups_queues_and_runs(tmp_path):
    make_shop(tmp_path)
    call_command("run_schedule", "--all", stdout=io.StringIO())
    out = io.StringIO()
    call_command("status", stdout=out)
    text = out.getvalue()
    assert "customers: 4 records (0 invalid, 0 deleted)" in text
    assert "customers / High value: 2 members" in text
    assert "crm (sync): 0 pending, 0 failed, 4 complete" in text
    assert "Active runs\n  none" in text


def test_the_clock_schedule_row_names_an_importable_function():
    from django_q.models import Schedule

    from core import tasks

    row = Schedule.objects.get(name="grouparoo-tick")
    assert row.func == tasks.TICK_FUNC
    module, name = row.func.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))
