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
