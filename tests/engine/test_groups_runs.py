"""Group recomputes, relative-date groups on the clock, triggers and task idempotency."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core import models as m
from core import tasks
from core.choices import RuleOp, RunState
from core.engine.runs import run_process
from core.services.groups import group_recompute_enqueue
from core.services.runs import run_create
from tests.engine.helpers import run_and_send, sync, sync_all

pytestmark = pytest.mark.django_db


def members(group) -> set[int]:
    return set(m.GroupMember.objects.filter(group=group, left_at__isnull=True).values_list("record_id", flat=True))


def test_new_group_recompute_run_adds_members_and_exports(shop, django_capture_on_commit_callbacks):
    sync_all(shop)
    low = m.Group.objects.create(model=shop.model, name="Low value")
    m.GroupRule.objects.create(group=low, property=shop.props["ltv"], op=RuleOp.LT, match="200")
    m.DestinationGroupMembership.objects.create(destination=shop.destination, group=low, remote_key="low")
    with django_capture_on_commit_callbacks(execute=True):
        run = group_recompute_enqueue(group=low)
    run.refresh_from_db()
    assert run.state == RunState.COMPLETE, run.error
    assert run.groups_changed == 2
    low.refresh_from_db()
    assert low.member_count == 2 and low.calculated_at is not None
    assert {g for _, g in shop.dst_groups() if g == "low"} == {"low"}
    assert {c for c, g in shop.dst_groups() if g == "low"} == {"2", "4"}


def test_group_rule_change_moves_members_out(shop):
    sync_all(shop)
    assert len(members(shop.high_value)) == 2
    m.GroupRule.objects.filter(group=shop.high_value).update(match="800")
    run, _ = run_create(group=shop.high_value, enqueue=False)
    run = run_and_send(run.pk)
    assert run.state == RunState.COMPLETE
    assert len(members(shop.high_value)) == 1
    left = m.GroupMember.objects.get(group=shop.high_value, left_at__isnull=False)
    assert left.joined_at <= left.left_at
    assert shop.dst_groups() == {("1", "high-value")}


def test_relative_date_group_is_recomputed_on_the_clock(shop, django_capture_on_commit_callbacks):
    recent = m.Group.objects.create(model=shop.model, name="Recent buyers")
    m.GroupRule.objects.create(group=recent, property=shop.props["last_purchase_at"], op=RuleOp.IN_LAST,
                               relative_match_number=30, relative_match_unit="days")
    now = timezone.now()
    shop.src_sql("UPDATE purchases SET purchased_at = ?", ((now - dt.timedelta(days=2)).isoformat(),))
    sync_all(shop)
    assert len(members(recent)) == 2
    # Time passes: the purchases age out of the window without any source change.
    shop.src_sql("UPDATE purchases SET purchased_at = ?", ((now - dt.timedelta(days=40)).isoformat(),))
    m.Schedule.objects.update(recurring=False)
    sync(shop.purchases_schedule, full=True)
    assert len(members(recent)) == 0  # the property change itself moved them
    # And the clock: a group whose window moved is recomputed when due.
    shop.src_sql("UPDATE purchases SET purchased_at = ?", ((now - dt.timedelta(days=29, hours=23)).isoformat(),))
    sync(shop.purchases_schedule, full=True)
    assert len(members(recent)) == 2
    m.Group.objects.filter(pk=recent.pk).update(next_calculate_at=now - dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.tick()
    assert result["groups"] == 1
    assert m.Run.objects.filter(group=recent, state=RunState.COMPLETE).exists()
    recent.refresh_from_db()
    assert recent.next_calculate_at is not None and recent.next_calculate_at > now


def test_tick_starts_due_schedules_once(shop, django_capture_on_commit_callbacks):
    m.Schedule.objects.filter(pk=shop.users_schedule.pk).update(recurring=True, recurring_frequency=600,
                                                                 next_run_at=timezone.now() - dt.timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        first = tasks.tick()
    with django_capture_on_commit_callbacks(execute=True):
        second = tasks.tick()
    assert first["started"] == 1 and second["started"] == 0
    runs = m.Run.objects.filter(source=shop.users)
    assert runs.count() == 1 and runs.get().state == RunState.COMPLETE
    assert m.Schedule.objects.get(pk=shop.users_schedule.pk).next_run_at > timezone.now()


def test_process_run_task_twice_does_the_work_once(shop):
    run, _ = run_create(source=shop.users, schedule=shop.users_schedule, enqueue=False)
    tasks.process_run(run.pk)
    tasks.process_run(run.pk)
    run.refresh_from_db()
    assert run.state == RunState.COMPLETE and run.records_created == 4 and run.batches_done == 1
    assert m.Import.objects.filter(run=run).count() == 1


def test_two_triggers_of_one_schedule_make_one_run(shop):
    a, created_a = run_create(source=shop.users, schedule=shop.users_schedule, enqueue=False)
    b, created_b = run_create(source=shop.users, schedule=shop.users_schedule, enqueue=False)
    assert created_a and not created_b and a.pk == b.pk


def test_stopped_run_stops_at_the_next_batch(shop, settings):
    from core.services.runs import run_stop

    settings.GROUPAROO_BATCH_SIZE = 1
    run, _ = run_create(source=shop.users, schedule=shop.users_schedule, enqueue=False)
    calls = []

    def progress(r):
        calls.append(r.rows_read)
        if len(calls) == 2:
            run_stop(run=r)

    result = run_process(run.pk, progress=progress)
    assert result.state == RunState.STOPPED
    assert result.rows_read == 2
    assert m.Record.objects.count() == 2


def test_app_refresh_query_starts_refresh_enabled_schedules(shop, django_capture_on_commit_callbacks):
    from core.services.schedules import app_refresh_query_run

    arq = m.AppRefreshQuery.objects.create(app=shop.users.app, query="SELECT MAX(updated_at) FROM users")
    assert app_refresh_query_run(refresh_query=arq) == 0  # first value is the baseline
    arq.refresh_from_db()
    assert arq.value == "2026-01-03T00:00:00"
    shop.src_sql("UPDATE users SET updated_at = '2026-09-09' WHERE id = 1")
    m.Schedule.objects.filter(pk=shop.purchases_schedule.pk).update(refresh_enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        started = app_refresh_query_run(refresh_query=arq)
    assert started == 1
    assert m.Run.objects.filter(source=shop.users).count() == 1
    assert not m.Run.objects.filter(source=shop.purchases).exists()


def test_destination_mapping_change_re_exports_every_record(shop):
    from core.services.destinations import destination_resync_enqueue

    sync_all(shop)
    shop.dst_rows()
    m.DestinationMapping.objects.filter(destination=shop.destination, remote_key="first_name").delete()
    run = destination_resync_enqueue(destination=shop.destination)
    run = run_and_send(run.pk)
    assert run.state == RunState.COMPLETE
    assert run.exports_created == 4
    assert all(r["first_name"] is None for r in shop.dst_rows())


def test_a_run_left_exporting_by_an_earlier_version_completes_and_its_exports_are_sent(shop):
    # Runs used to wait in an "exporting" phase until every export was sent.
    from datetime import timedelta

    from core.choices import RunPhase

    run, _ = run_create(source=shop.users, schedule=shop.users_schedule, enqueue=False)
    run = run_process(run.pk)  # not sending: exports queued
    m.Export.objects.filter(run=run).update(state="pending", send_after=None)
    stale = timezone.now() - timedelta(hours=1)
    m.Run.objects.filter(pk=run.pk).update(state=RunState.RUNNING, phase=RunPhase.EXPORTING, heartbeat_at=stale)
    result = run_and_send(run.pk)
    assert result.state == RunState.COMPLETE and result.phase == RunPhase.DONE
    assert len(shop.dst_rows()) == 4 and result.exports_sent == 4


def test_new_records_join_a_group_whose_rule_no_source_has_written_for_them(shop, settings):
    # "Not signed up": a negative rule on a property of another record-creating source, which
    # holds nothing for these customers yet and is not read by this run. New records are members
    # of nothing: every group must be evaluated for them, not only the groups whose rules use a
    # property the page wrote.
    from core.choices import PropertyType

    shop.src_sql("CREATE TABLE signups (email TEXT, token TEXT, signed_up_at TEXT)")
    signups = m.Source.objects.create(name="signups", app=shop.users.app, model=shop.model, type="sqlite-table",
                                      options={"table": "signups"})
    token = m.Property.objects.create(model=shop.model, source=signups, key="signup_token",
                                      type=PropertyType.STRING, unique=True, options={"column": "token"})
    m.SourceMapping.objects.create(source=signups, remote_key="email", property=shop.props["email"])
    m.Schedule.objects.create(source=signups, options={"column": "signed_up_at"})
    not_signed_up = m.Group.objects.create(model=shop.model, name="Not signed up")
    m.GroupRule.objects.create(group=not_signed_up, property=token, op=RuleOp.NOT_EXISTS)
    m.DestinationGroupMembership.objects.create(destination=shop.destination, group=not_signed_up,
                                                remote_key="not-signed-up")
    settings.GROUPAROO_BATCH_SIZE = 2
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert members(not_signed_up) == set(m.Record.objects.values_list("pk", flat=True))
    not_signed_up.refresh_from_db()
    assert not_signed_up.member_count == 4
    assert {c for c, g in shop.dst_groups() if g == "not-signed-up"} == {"1", "2", "3", "4"}


def test_a_member_leaves_rejoins_and_stays_with_its_times_and_the_count_kept(shop):
    sync(shop.users_schedule)
    ada = m.RecordProperty.objects.get(property=shop.props["user_id"], value_number=1).record_id
    first = m.GroupMember.objects.get(group=shop.high_value, record_id=ada)
    assert first.left_at is None

    def set_ltv(value, when):
        shop.src_sql("UPDATE users SET ltv = ?, updated_at = ? WHERE id = 1", (value, when))
        return sync(shop.users_schedule)

    def count():
        shop.high_value.refresh_from_db()
        return shop.high_value.member_count

    run = set_ltv(100.0, "2026-05-01T00:00:00")  # leaves
    gone = m.GroupMember.objects.get(group=shop.high_value, record_id=ada)
    assert (run.groups_changed, gone.joined_at, gone.left_at is not None) == (1, first.joined_at, True)
    assert count() == len(members(shop.high_value)) == 1
    run = set_ltv(950.0, "2026-05-02T00:00:00")  # comes back: the same row, joined again
    back = m.GroupMember.objects.get(group=shop.high_value, record_id=ada)
    assert (run.groups_changed, back.pk, back.left_at) == (1, first.pk, None)
    assert back.joined_at > first.joined_at
    assert count() == len(members(shop.high_value)) == 2
    run = set_ltv(960.0, "2026-05-03T00:00:00")  # still matches: nothing moves
    stayed = m.GroupMember.objects.get(group=shop.high_value, record_id=ada)
    assert (run.groups_changed, stayed.joined_at, stayed.left_at) == (0, back.joined_at, None)
    assert count() == 2


def test_ne_rule_leaves_out_records_without_the_value_in_runs_and_one_record_imports(shop):
    """As Grouparoo: a record without a value (a user without a first name) is not "not
    equal" to anything, in a run's memberships and in a one-record import; `notExists` takes it."""
    from core.engine.single import record_import_now

    shop.src_sql("UPDATE users SET first_name = NULL WHERE id = 4")
    not_bob = m.Group.objects.create(model=shop.model, name="Not Bob")
    m.GroupRule.objects.create(group=not_bob, property=shop.props["first_name"], op=RuleOp.NE, match="Bob")
    nameless = m.Group.objects.create(model=shop.model, name="Nameless")
    m.GroupRule.objects.create(group=nameless, property=shop.props["first_name"], op=RuleOp.NOT_EXISTS)
    sync_all(shop)
    ids = {int(rp.raw_value): rp.record_id for rp in m.RecordProperty.objects.filter(property=shop.props["user_id"])}
    assert members(not_bob) == {ids[1], ids[3]}
    assert members(nameless) == {ids[4]}
    shop.src_sql("UPDATE users SET first_name = 'Dee' WHERE id = 4")
    record_import_now(model=shop.model, property_key="user_id", value="4", export=False)
    assert members(not_bob) == {ids[1], ids[3], ids[4]} and members(nameless) == set()
    shop.src_sql("UPDATE users SET first_name = NULL WHERE id = 4")
    record_import_now(model=shop.model, property_key="user_id", value="4", export=False)
    assert members(not_bob) == {ids[1], ids[3]} and members(nameless) == {ids[4]}
