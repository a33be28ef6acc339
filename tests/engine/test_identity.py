"""Identity: records found by unique properties; two records that are one customer merge."""
from __future__ import annotations

import logging

import pytest

from core import models as m
from core.choices import PropertyType, RunState
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db


def add_signups(shop):
    """A second record-creating source keyed by email (it owns the unique signup_token)."""
    shop.src_sql("CREATE TABLE signups (email TEXT, token TEXT, signed_up_at TEXT)")
    src = m.Source.objects.create(name="signups", app=shop.users.app, model=shop.model, type="sqlite-table",
                                  options={"table": "signups"})
    m.Property.objects.create(model=shop.model, source=src, key="signup_token", type=PropertyType.STRING,
                              unique=True, options={"column": "token"})
    m.SourceMapping.objects.create(source=src, remote_key="email", property=shop.props["email"])
    schedule = m.Schedule.objects.create(source=src, options={"column": "signed_up_at"})
    return schedule


def test_records_from_two_sources_that_share_an_email_merge_into_the_older(shop, caplog):
    signups = add_signups(shop)
    shop.src_sql("INSERT INTO signups VALUES ('cy@example.com', 'tok-cy', '2025-12-01')")
    first = sync(signups)
    assert first.records_created == 1
    lead = m.Record.objects.get()
    with caplog.at_level(logging.INFO, logger="core.merge"):
        run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE
    assert run.records_merged == 1
    assert m.Record.objects.count() == 4
    survivor = m.Record.objects.get(pk=lead.pk)  # the older record survives
    values = {rp.property.key: rp.value for rp in survivor.properties.select_related("property")}
    assert values["signup_token"] == "tok-cy"
    assert values["email"] == "cy@example.com"
    assert values["user_id"] == 3
    assert any("merged record" in r.message for r in caplog.records)
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert crm["3"]["email"] == "cy@example.com"


def test_two_customers_claiming_one_email_are_flagged_not_merged(shop):
    sync(shop.users_schedule)
    shop.src_sql("UPDATE users SET email = 'ada@example.com', updated_at = '2026-04-01' WHERE id = 2")
    run = sync(shop.users_schedule)
    assert run.records_merged == 0
    assert m.Record.objects.count() == 4
    rp = m.RecordProperty.objects.get(property=shop.props["email"], raw_value="ada@example.com", invalid_reason__isnull=False)
    assert "duplicate unique value" in rp.invalid_reason
    assert any("duplicate" in k for k in run.errors)


def test_a_second_identical_sync_is_a_noop(shop):
    sync(shop.users_schedule)
    run = sync(shop.users_schedule, full=True)
    assert (run.records_created, run.records_updated, run.exports_created) == (0, 0, 0)


# A first sync takes every key of a page for new while pages keep creating a record for each key
# (import_batch's assume_new): no lookups, the unique index checks. A page that proves it wrong
# is written again, looking keys up, with the result a careful page would have had.

KEY_LOOKUP = "SELECT unique_value, record_id FROM core_recordproperty"


def test_a_first_sync_looks_up_no_keys_and_a_later_sync_does(shop, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.GROUPAROO_BATCH_SIZE = 2
    with CaptureQueriesContext(connection) as first:
        run = sync(shop.users_schedule)
    assert (run.state, run.records_created) == (RunState.COMPLETE, 4)
    assert not [q for q in first.captured_queries if KEY_LOOKUP in q["sql"]]
    with CaptureQueriesContext(connection) as again:
        run = sync(shop.users_schedule, full=True)
    assert (run.state, run.records_created, m.Record.objects.count()) == (RunState.COMPLETE, 0, 4)
    assert len([q for q in again.captured_queries if KEY_LOOKUP in q["sql"]]) == 2  # one per page


def test_a_page_assumed_new_whose_keys_exist_is_written_again_with_lookups(shop, settings, caplog):
    settings.GROUPAROO_BATCH_SIZE = 2
    shop.src_sql("DELETE FROM users WHERE id IN (1, 2)")
    sync(shop.users_schedule)  # records for users 3 and 4
    first_ids = set(m.Record.objects.values_list("pk", flat=True))
    shop.src_many("INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                  [(1, "ada@example.com", "Ada", 900.0, "2026-01-01T00:00:00"),
                   (2, "bob@example.com", "Bob", 100.0, "2026-01-02T00:00:00")])
    shop.src_sql("UPDATE users SET first_name = 'Cyrus' WHERE id = 3")
    # Page 1 (users 1, 2) creates both records, so page 2 (users 3, 4) is taken for new: the
    # unique index refuses user 3's and 4's keys, and the page is written again with lookups.
    with caplog.at_level(logging.INFO, logger="core.engine.runs"):
        run = sync(shop.users_schedule, full=True)
    assert any("written again with lookups" in r.getMessage() for r in caplog.records)
    assert (run.state, run.records_created, run.records_updated) == (RunState.COMPLETE, 2, 1)
    assert m.Record.objects.count() == 4
    assert first_ids < set(m.Record.objects.values_list("pk", flat=True))
    names = dict(
        m.RecordProperty.objects.filter(property=shop.props["first_name"]).values_list("record_id", "value_text")
    )
    assert sorted(names.values()) == ["Ada", "Bob", "Cyrus", "Dee"]
    assert sorted(r["first_name"] for r in shop.dst_rows()) == ["Ada", "Bob", "Cyrus", "Dee"]
    assert not m.RecordProperty.objects.filter(invalid_reason__isnull=False).exists()


def test_a_page_assumed_new_whose_email_another_record_holds_merges_as_a_careful_page_would(shop, settings):
    settings.GROUPAROO_BATCH_SIZE = 2
    signups = add_signups(shop)
    shop.src_sql("INSERT INTO signups VALUES ('dee@example.com', 'tok-dee', '2025-12-01')")
    sync(signups)
    lead = m.Record.objects.get()
    # The model has a record, so page 1 (users 1, 2) looks keys up; it creates both, so page 2
    # (users 3, 4) is taken for new, and Dee's email, held by the signup, sends it round again.
    run = sync(shop.users_schedule)
    assert (run.state, run.records_created, run.records_merged) == (RunState.COMPLETE, 3, 1)
    assert m.Record.objects.count() == 4
    values = {rp.property.key: rp.value for rp in m.Record.objects.get(pk=lead.pk).properties.select_related("property")}
    assert (values["user_id"], values["signup_token"]) == (4, "tok-dee")


def test_rows_without_a_key_are_reported_on_the_run_not_dropped_silently(shop):
    signups = add_signups(shop)
    shop.src_many("INSERT INTO signups VALUES (?, ?, ?)", [
        ("cy@example.com", "tok-cy", "2025-12-01"),
        (None, "tok-nobody", "2025-12-02"),
        (None, "tok-nobody-2", "2025-12-03"),
        ("zed@example.com", "tok-zed", "2025-12-04"),
    ])
    run = sync(signups)
    assert (run.state, run.records_created, run.rows_read, run.rows_total) == (RunState.COMPLETE, 2, 2, 2)
    assert run.errors["email: no value; row skipped"] == 2
    assert run.percent_complete == 100
    # Counted once per run, for the rows that run reads (past the high watermark).
    shop.src_sql("INSERT INTO signups VALUES (NULL, 'tok-late', '2026-01-01')")
    again = sync(signups)
    assert again.starting_watermark is not None
    assert again.errors["email: no value; row skipped"] == 1
