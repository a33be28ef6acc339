"""`apply` while a run is going: the run either finishes with the configuration it started
with or stops cleanly at a batch boundary; it never writes for objects the apply removed, and
what the apply changed is read by the run after it (never lost because a run was active)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from core import models as m
from core.choices import RunCreator, RunState
from core.config.apply import config_apply
from core.engine.runs import run_process
from core.services.runs import run_create
from tests.engine.helpers import run_and_send, sync

pytestmark = pytest.mark.django_db

# 200 more users after the fixture's four: four batches of 50 (tests.settings).
MORE = [(i, f"user{i}@example.com", f"First{i}", float(i), "GB", "2026-01-04T00:00:00") for i in range(10, 210)]


def _orphans() -> int:
    return m.RecordProperty.objects.exclude(property_id__in=m.Property.objects.values("pk")).count()


def _edit(directory, rel: str, change) -> None:
    path = directory / rel
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def _run_applying(shop_files, directory, edit) -> m.Run:
    """The users schedule's run, with `edit(directory)` applied after its first batch."""
    with sqlite3.connect(shop_files.shop) as conn:
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", MORE)
    schedule = m.Schedule.objects.get(config_id="users_schedule")
    run, _ = run_create(source=schedule.source, schedule=schedule, creator_type=RunCreator.MANUAL, enqueue=False)
    applied = []

    def apply_after_the_first_batch(r):
        if not applied:
            edit(directory)
            applied.append(config_apply(directory=directory))

    run = run_process(run.pk, progress=apply_after_the_first_batch)
    assert applied and applied[0].applied
    return run


def test_a_property_removed_by_apply_stops_the_run_cleanly_and_leaves_no_orphans(shop_files, fixture_dir):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)

    def drop_first_name(d):
        (d / "properties" / "first_name.json").unlink()
        _edit(d, "destinations/crm.json", lambda dest: dest["mapping"].pop("first_name"))

    run = _run_applying(shop_files, directory, drop_first_name)
    assert run.state == RunState.STOPPED
    assert 'property "firstName" was removed' in run.error, run.error
    assert run.batches_done == 1
    assert _orphans() == 0
    schedule = m.Schedule.objects.get(config_id="users_schedule")
    assert schedule.high_watermark is None  # not moved: the next run reads what this one did not
    nxt = sync(schedule)
    assert nxt.state == RunState.COMPLETE, nxt.error
    assert _orphans() == 0
    assert m.Record.objects.filter(model__config_id="customers").count() == 3 + len(MORE)


def test_a_property_changed_by_apply_during_a_run_is_read_in_full_after_it(shop_files, fixture_dir):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)

    def first_name_from_email(d):
        _edit(d, "properties/first_name.json", lambda p: p["options"].update(column="email"))

    run = _run_applying(shop_files, directory, first_name_from_email)
    assert run.state == RunState.COMPLETE  # with the configuration it started with
    follow = m.Run.objects.get(source=run.source, state=RunState.PENDING)
    assert follow.full and follow.pk != run.pk
    follow = run_and_send(follow.pk)
    assert follow.state == RunState.COMPLETE
    assert _first_name(15) == "user15@example.com" and _first_name(1) == "ada@example.com"


def _first_name(user_id: int) -> str:
    record = m.RecordProperty.objects.get(property__config_id="user_id", raw_value=str(user_id)).record_id
    return m.RecordProperty.objects.get(property__config_id="first_name", record_id=record).raw_value


def test_a_schedule_filter_changed_during_a_run_makes_the_next_run_read_everything(shop_files, fixture_dir):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)

    def drop_the_filter(d):
        _edit(d, "sources/users.json", lambda objs: objs[1].update(filters=[]))

    run = _run_applying(shop_files, directory, drop_the_filter)
    assert run.state == RunState.COMPLETE
    dee = m.Record.objects.filter(properties__property__config_id="email", properties__raw_value="dee@example.com")
    assert not dee.exists()  # the run read with the filter it started with
    nxt = sync(m.Schedule.objects.get(config_id="users_schedule"))
    assert nxt.state == RunState.COMPLETE
    assert nxt.rows_read == 4 + len(MORE)  # everything: what decides the rows changed
    assert dee.exists()
