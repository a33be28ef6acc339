"""Claims of docs/guarantees.md that no other test pins down: retry numbers, ordering in flight,
lease re-sends, batch atomicity, task arguments, secrets kept out of outputs, a vanished table."""
from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta
from typing import ClassVar

import pytest
from django.utils import timezone

from connectors import registry
from connectors.base import (
    ConnectorError,
    DestinationConnector,
    ExportPayload,
    MappingOptions,
    SyncOperations,
)
from core import models as m
from core.choices import ExportState, RunState
from core.engine.exports import exports_send
from core.settings_registry import setting_number
from tests.engine import fakes
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db
SECRET = "tok-3a9f-guarantee-secret"


@registry.register
class ScriptedDestination(DestinationConnector):
    """Raises what the test puts in RAISE (once per call, in order); otherwise accepts all."""

    key = "guarantee-export"
    app_key = "memory"
    label = "Scripted (guarantee tests)"
    RAISE: ClassVar[list[BaseException]] = []
    SENT: ClassVar[list[ExportPayload]] = []

    def mapping_options(self) -> MappingOptions:
        return MappingOptions(required=(("id", "any"),))

    def export_batch(self, exports, *, operations: SyncOperations):
        from connectors.base import ExportResult

        if self.RAISE:
            raise self.RAISE.pop(0)
        self.SENT.extend(exports)
        return [ExportResult(e.export_id, True) for e in exports]


@pytest.fixture(autouse=True)
def _reset():
    fakes.reset()
    ScriptedDestination.RAISE.clear()
    ScriptedDestination.SENT.clear()
    yield
    fakes.reset()
    ScriptedDestination.RAISE.clear()
    ScriptedDestination.SENT.clear()


def scripted(shop, *, secret: str | None = None) -> m.Destination:
    app = m.App.objects.create(
        name="scripted", type="memory", options={"name": "scripted"},
        secret_options={"token": secret} if secret else {},
    )
    dest = m.Destination.objects.create(
        name="scripted", app=app, model=shop.model, type="guarantee-export", sync_mode="sync", collection="model",
    )
    m.DestinationMapping.objects.create(destination=dest, remote_key="id", property=shop.props["user_id"])
    m.DestinationMapping.objects.create(destination=dest, remote_key="ltv", property=shop.props["ltv"])
    return dest


def queue(shop) -> None:
    """Build exports for the shop's users without sending them."""
    sync(shop.users_schedule, export=False)


def set_setting(key: str, value: str) -> None:
    m.Setting.objects.update_or_create(plugin="core", key=key, defaults={"value": value})


def test_retry_defaults_are_five_attempts_thirty_seconds_and_a_five_minute_lease():
    assert setting_number("exports-max-attempts") == 5
    assert setting_number("exports-retry-base-seconds") == 30
    assert setting_number("runs-lease-seconds") == 300


def test_backoff_doubles_from_the_base_delay_per_attempt(shop):
    dest = scripted(shop)
    queue(shop)
    set_setting("exports-retry-base-seconds", "30")
    delays = []
    for attempt in range(1, 4):
        ScriptedDestination.RAISE.append(ConnectorError("connection refused"))
        m.Export.objects.filter(destination=dest).update(send_after=None)  # due now
        assert exports_send(destination_id=dest.pk).retried == 4
        e = m.Export.objects.filter(destination=dest).first()
        assert e.state == ExportState.PENDING and e.attempts == attempt and e.error_message == "connection refused"
        delays.append(round((e.send_after - e.updated_at).total_seconds()))
    assert delays == [30, 60, 120]
    assert ScriptedDestination.SENT == []


def test_an_export_is_not_sent_before_its_retry_time(shop):
    dest = scripted(shop)
    queue(shop)
    ScriptedDestination.RAISE.append(ConnectorError("503"))
    exports_send(destination_id=dest.pk)
    assert exports_send(destination_id=dest.pk).claimed == 0  # all wait 30 s
    later = timezone.now() + timedelta(seconds=31)
    assert exports_send(destination_id=dest.pk, now=later).sent == 4


def test_throttling_waits_the_retry_after_and_spends_no_attempt(shop):
    dest = scripted(shop)
    queue(shop)
    ScriptedDestination.RAISE.append(ConnectorError("429 Too Many Requests", retry_after=120))
    summary = exports_send(destination_id=dest.pk)
    assert summary.throttled == 4 and summary.retried == 0
    for e in m.Export.objects.filter(destination=dest):
        assert e.state == ExportState.PENDING and e.attempts == 0
        assert round((e.send_after - e.updated_at).total_seconds()) == 120


def test_the_last_attempt_fails_the_export_with_the_reason(shop):
    dest = scripted(shop)
    queue(shop)
    set_setting("exports-max-attempts", "2")
    for _ in range(2):
        ScriptedDestination.RAISE.append(ConnectorError("HTTP 503 from the CRM"))
        m.Export.objects.filter(destination=dest).update(send_after=None)
        exports_send(destination_id=dest.pk)
    states = set(m.Export.objects.filter(destination=dest).values_list("state", "attempts", "error_message"))
    assert states == {(ExportState.FAILED, 2, "HTTP 503 from the CRM")}


def test_a_permanent_error_fails_at_once_without_retry(shop):
    dest = scripted(shop)
    queue(shop)
    ScriptedDestination.RAISE.append(ConnectorError("401 bad credentials", permanent=True))
    assert exports_send(destination_id=dest.pk).failed == 4
    states = set(m.Export.objects.filter(destination=dest).values_list("state", "attempts"))
    assert states == {(ExportState.FAILED, 1)}


def test_a_connector_crash_releases_the_batch_with_only_the_exception_type(shop, caplog):
    dest = scripted(shop)
    queue(shop)
    ScriptedDestination.RAISE.append(RuntimeError(f"boom {SECRET}"))
    with caplog.at_level(logging.ERROR):
        assert exports_send(destination_id=dest.pk).retried == 4
    messages = set(m.Export.objects.filter(destination=dest).values_list("state", "error_message"))
    assert messages == {(ExportState.PENDING, "unexpected error: RuntimeError")}
    assert "failed to export a batch" in caplog.text  # logged for the operator, with its traceback


def test_a_record_never_has_two_exports_in_flight(shop):
    dest = scripted(shop)
    queue(shop)
    first = m.Export.objects.get(destination=dest, record__properties__property=shop.props["user_id"],
                                 record__properties__value_number=2)
    m.Export.objects.filter(pk=first.pk).update(state=ExportState.PROCESSING, started_at=timezone.now())
    shop.src_sql("UPDATE users SET ltv = 5, updated_at = '2026-07-01' WHERE id = 2")
    queue(shop)  # a newer state of record 2 is pending behind the one in flight
    newer = m.Export.objects.get(destination=dest, record_id=first.record_id, state=ExportState.PENDING)
    assert newer.new_properties["ltv"] == 5.0
    exports_send(destination_id=dest.pk)
    assert {p.record_id for p in ScriptedDestination.SENT} == set(
        m.Export.objects.filter(destination=dest).exclude(record_id=first.record_id).values_list("record_id", flat=True)
    )
    assert m.Export.objects.get(pk=newer.pk).state == ExportState.PENDING  # waits for the one in flight


def test_an_expired_processing_lease_is_sent_again_with_the_same_content(shop):
    dest = scripted(shop)
    queue(shop)
    set_setting("runs-lease-seconds", "60")
    stale = timezone.now() - timedelta(seconds=61)
    claimed = list(m.Export.objects.filter(destination=dest).values_list("pk", "new_properties"))
    m.Export.objects.filter(destination=dest).update(state=ExportState.PROCESSING, started_at=stale)
    assert exports_send(destination_id=dest.pk).sent == 4
    assert sorted((p.export_id, p.new_properties) for p in ScriptedDestination.SENT) == sorted(claimed)


def test_a_fresh_processing_lease_is_left_alone(shop):
    dest = scripted(shop)
    queue(shop)
    m.Export.objects.filter(destination=dest).update(state=ExportState.PROCESSING, started_at=timezone.now())
    assert exports_send(destination_id=dest.pk).claimed == 0


def test_a_batch_that_fails_midway_is_rolled_back_whole_and_the_next_run_reads_it_again(shop, settings, monkeypatch, caplog):
    import core.engine.runs as runs

    settings.GROUPAROO_BATCH_SIZE = 2
    real = runs.exports_build
    calls = {"n": 0}

    def flaky_build(**kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("unexpected failure in batch 2")
        return real(**kw)

    monkeypatch.setattr(runs, "exports_build", flaky_build)
    with pytest.raises(RuntimeError), caplog.at_level(logging.ERROR, logger="core.engine.runs"):
        sync(shop.users_schedule)
    run = m.Run.objects.get(source=shop.users)
    assert f"run {run.pk} failed" in caplog.text and "Traceback" in caplog.text
    assert run.state == RunState.FAILED and "unexpected failure in batch 2" in run.error
    # Batch 1 committed whole; batch 2 left nothing behind: no records, values, exports or Import row.
    assert run.batches_done == 1 and m.Import.objects.filter(run=run).count() == 1
    assert m.Record.objects.count() == 2 and m.RecordProperty.objects.filter(property=shop.props["ltv"]).count() == 2
    assert m.Export.objects.count() == 2
    assert m.Schedule.objects.get(pk=shop.users_schedule.pk).high_watermark is None  # the watermark did not move
    monkeypatch.setattr(runs, "exports_build", real)
    again = sync(shop.users_schedule)
    assert again.state == RunState.COMPLETE
    assert len(shop.dst_rows()) == 4


def test_task_arguments_are_ids_only(shop, django_capture_on_commit_callbacks, monkeypatch):
    from django_q import tasks as q

    from core import tasks
    from core.services.runs import run_create

    calls = []
    monkeypatch.setattr(q, "async_task", lambda func, *args, **kw: calls.append((func, args)))
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = run_create(source=shop.users, schedule=shop.users_schedule)
        tasks.enqueue_send(shop.destination.pk)
    assert calls == [(tasks.process_run, (run.pk,)), (tasks.send_exports, (shop.destination.pk,))]


def test_secrets_stay_out_of_exports_run_errors_and_logs(shop, caplog):
    dest = scripted(shop, secret=SECRET)
    ScriptedDestination.RAISE.extend([ConnectorError("connection refused")] * 2)
    set_setting("exports-retry-base-seconds", "0.01")
    with caplog.at_level(logging.DEBUG):
        run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE and len(ScriptedDestination.SENT) == 4
    texts = [caplog.text, repr(run.errors), run.error, repr(m.App.objects.get(pk=dest.app_id).secret_options)]
    for e in m.Export.objects.all():
        texts += [repr(e.new_properties), repr(e.old_properties), e.error_message]
    assert not [t for t in texts if SECRET in t]


def test_a_vanished_source_table_fails_the_run_clearly_and_loses_nothing(shop):
    first = sync(shop.users_schedule)
    assert first.state == RunState.COMPLETE
    before = sorted(m.RecordProperty.objects.values_list("record_id", "property_id", "raw_value"))
    with sqlite3.connect(shop.src) as conn:
        conn.execute("ALTER TABLE users RENAME TO users_old")
    run = sync(shop.users_schedule, full=True)
    assert run.state == RunState.FAILED and "users" in run.error
    assert sorted(m.RecordProperty.objects.values_list("record_id", "property_id", "raw_value")) == before
    assert not m.Record.objects.filter(state="deleted").exists()  # a missing table never confirms deletions
    assert len(shop.dst_rows()) == 4


def test_an_expired_lease_behind_a_newer_pending_export_does_not_jam_the_queue(shop):
    dest = scripted(shop)
    queue(shop)
    set_setting("runs-lease-seconds", "60")
    old = m.Export.objects.get(destination=dest, record__properties__property=shop.props["user_id"],
                               record__properties__value_number=2)
    m.Export.objects.filter(pk=old.pk).update(state=ExportState.PROCESSING,
                                              started_at=timezone.now() - timedelta(seconds=61))
    shop.src_sql("UPDATE users SET ltv = 7, updated_at = '2026-07-01' WHERE id = 2")
    queue(shop)  # the worker that held `old` died; a newer state of the record is pending
    while exports_send(destination_id=dest.pk).claimed:
        pass
    sent = [p.new_properties["ltv"] for p in ScriptedDestination.SENT if p.record_id == old.record_id]
    assert sent[-1] == 7.0  # the newest state arrives last
    assert not m.Export.objects.filter(destination=dest, state__in=[ExportState.PENDING, ExportState.PROCESSING]).exists()


def test_the_clock_sends_only_due_retries(shop, django_capture_on_commit_callbacks, monkeypatch):
    from django_q import tasks as q

    from core import tasks

    due, waiting = scripted(shop), add_second(shop)
    queue(shop)
    m.Export.objects.filter(destination=waiting).update(send_after=timezone.now() + timedelta(minutes=5))
    m.Export.objects.filter(destination=shop.destination).update(state=ExportState.COMPLETE)
    calls = []
    monkeypatch.setattr(q, "async_task", lambda func, *args, **kw: calls.append((func, args)))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.tick()
    assert (tasks.send_exports, (due.pk,)) in calls
    assert not [c for c in calls if c[0] is tasks.send_exports and c[1] != (due.pk,)]


def add_second(shop) -> m.Destination:
    app = m.App.objects.get(name="scripted")
    dest = m.Destination.objects.create(
        name="scripted-2", app=app, model=shop.model, type="guarantee-export", sync_mode="sync", collection="model",
    )
    m.DestinationMapping.objects.create(destination=dest, remote_key="id", property=shop.props["user_id"])
    return dest


def test_run_errors_keep_the_100_most_frequent_messages_cut_to_500_characters(shop):
    from core.engine.runs import run_add_errors

    run = sync(shop.users_schedule)
    run_add_errors(run.pk, {f"problem {i} " + "x" * 600: i + 1 for i in range(150)})
    errors = m.Run.objects.get(pk=run.pk).errors
    assert len(errors) == 100
    assert all(len(message) <= 500 for message in errors)
    assert sorted(errors.values()) == list(range(51, 151))  # the most frequent ones are kept
