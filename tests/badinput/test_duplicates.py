"""Duplicate unique values, within one batch and across sources: the documented identity policy
(DESIGN.md section 3) — one customer seen by two sources merges into the older record; two
customers claiming one identifier are both kept, the later claim flagged "duplicate"."""

from __future__ import annotations

import pytest

from core import models as m
from core.choices import PropertyType, RuleOp, RunState
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db


def add_signups(shop):
    """A second record-creating source keyed by email; it owns the unique signup token."""
    shop.src_sql("CREATE TABLE signups (email TEXT, token TEXT, signed_up_at TEXT)")
    src = m.Source.objects.create(name="signups", app=shop.users.app, model=shop.model, type="sqlite-table",
                                  options={"table": "signups"})
    token = m.Property.objects.create(model=shop.model, source=src, key="signup_token", type=PropertyType.STRING,
                                      unique=True, options={"column": "token"})
    m.SourceMapping.objects.create(source=src, remote_key="email", property=shop.props["email"])
    return m.Schedule.objects.create(source=src, options={"column": "signed_up_at"}), token


def email_of(shop, user_id: int) -> m.RecordProperty:
    record = m.RecordProperty.objects.get(property=shop.props["user_id"], unique_value=str(user_id)).record
    return record.properties.get(property=shop.props["email"])


def test_two_new_rows_with_one_email_in_the_same_batch_keep_both_records(shop):
    shop.src_many("INSERT INTO users VALUES (?, ?, ?, ?, ?)", [
        (5, "twin@example.com", "Tom", 10.0, "2026-01-04T00:00:00"),
        (6, "twin@example.com", "Tim", 20.0, "2026-01-04T00:00:00"),
    ])
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_created == 6 and run.records_merged == 0
    first, second = email_of(shop, 5), email_of(shop, 6)
    holders = [rp for rp in (first, second) if rp.unique_value == "twin@example.com"]
    flagged = [rp for rp in (first, second) if rp.invalid_reason]
    assert len(holders) == 1 and len(flagged) == 1 and holders[0] != flagged[0]
    assert flagged[0].invalid_reason.startswith("duplicate unique value 'twin@example.com': already held by record")
    assert flagged[0].raw_value == "twin@example.com"
    assert any("duplicate unique value" in message for message in run.errors), run.errors
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert (crm["5"]["first_name"], crm["6"]["first_name"]) == ("Tom", "Tim")  # both customers arrive


def test_a_flagged_duplicate_counts_in_no_group_rule_and_is_not_exported(shop):
    """Grouparoo stores a duplicate unique value as empty (kept only as its invalid value): the
    later claim matches no rule on the value, `ne` included, and its destination row gets
    none; the raw value stays on the record, for display."""
    twins = m.Group.objects.create(model=shop.model, name="Twins")
    m.GroupRule.objects.create(group=twins, property=shop.props["email"], op=RuleOp.EQ, match="twin@example.com")
    others = m.Group.objects.create(model=shop.model, name="Not Ada")
    m.GroupRule.objects.create(group=others, property=shop.props["email"], op=RuleOp.NE, match="ada@example.com")
    shop.src_many("INSERT INTO users VALUES (?, ?, ?, ?, ?)", [
        (5, "twin@example.com", "Tom", 10.0, "2026-01-04T00:00:00"),
        (6, "twin@example.com", "Tim", 20.0, "2026-01-04T00:00:00"),
    ])
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    holder, claim = sorted((email_of(shop, 5), email_of(shop, 6)), key=lambda rp: rp.invalid_reason is not None)
    assert holder.value == "twin@example.com" and claim.invalid_reason.startswith("duplicate unique value")
    assert claim.raw_value == "twin@example.com" and claim.value is None and claim.unique_value is None
    current = m.GroupMember.objects.filter(left_at__isnull=True)
    assert set(current.filter(group=twins).values_list("record_id", flat=True)) == {holder.record_id}
    assert claim.record_id not in set(current.filter(group=others).values_list("record_id", flat=True))
    crm = {r["id"]: r for r in shop.dst_rows()}
    by_record = {email_of(shop, 5).record_id: "5", email_of(shop, 6).record_id: "6"}
    assert crm[by_record[holder.record_id]]["email"] == "twin@example.com"
    assert crm[by_record[claim.record_id]]["email"] is None
    assert crm[by_record[claim.record_id]]["first_name"] in ("Tom", "Tim")  # the customer still arrives


def test_an_email_taken_by_another_customer_later_is_flagged_and_freed_when_fixed(shop):
    sync(shop.users_schedule)
    shop.src_sql("UPDATE users SET email = 'ada@example.com', updated_at = '2026-04-01' WHERE id = 4")
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE and run.records_merged == 0
    assert email_of(shop, 1).unique_value == "ada@example.com"  # the first holder keeps it
    assert "duplicate unique value" in email_of(shop, 4).invalid_reason
    assert m.Record.objects.count() == 4
    shop.src_sql("UPDATE users SET email = 'dee@example.org', updated_at = '2026-04-02' WHERE id = 4")
    run = sync(shop.users_schedule)
    assert run.records_invalid == 0
    assert email_of(shop, 4).unique_value == "dee@example.org" and email_of(shop, 4).invalid_reason is None
    assert {r["id"]: r["email"] for r in shop.dst_rows()}["4"] == "dee@example.org"


def test_two_sources_seeing_one_customer_merge_and_nothing_is_lost(shop):
    signups, token = add_signups(shop)
    shop.src_sql("INSERT INTO signups VALUES ('bob@example.com', 'tok-bob', '2025-12-01')")
    shop.src_sql("INSERT INTO signups VALUES ('new@example.com', 'tok-new', '2025-12-02')")
    sync(signups)
    assert m.Record.objects.count() == 2
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE and run.records_merged == 1
    assert m.Record.objects.count() == 5  # four users + the signup that matches none of them
    bob = email_of(shop, 2).record
    values = {rp.property.key: rp.value for rp in bob.properties.select_related("property")}
    assert (values["signup_token"], values["first_name"], values["user_id"]) == ("tok-bob", "Bob", 2)
    lone = m.RecordProperty.objects.get(property=token, unique_value="tok-new").record
    assert lone.properties.get(property=shop.props["email"]).value == "new@example.com"


def test_two_sources_disagreeing_about_who_owns_an_identifier_merge_nobody(shop):
    """The signups source says Bob's email belongs with Ada's token: two customers, each with its
    own user id, are never merged; the conflicting claim is flagged and both keep their data."""
    signups, token = add_signups(shop)
    sync(shop.users_schedule)
    shop.src_sql("INSERT INTO signups VALUES ('ada@example.com', 'tok-ada', '2025-12-01')")
    sync(signups)
    assert m.RecordProperty.objects.get(property=token, unique_value="tok-ada").record == email_of(shop, 1).record
    shop.src_sql("INSERT INTO signups VALUES ('bob@example.com', 'tok-ada', '2025-12-02')")
    run = sync(signups)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_merged == 0 and m.Record.objects.count() == 4
    claims = m.RecordProperty.objects.filter(property=token, raw_value="tok-ada")
    assert {rp.record_id for rp in claims if rp.unique_value == "tok-ada"} == {email_of(shop, 1).record_id}
    bob_claim = claims.get(record=email_of(shop, 2).record)
    assert bob_claim.unique_value is None and "duplicate unique value 'tok-ada'" in bob_claim.invalid_reason
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert (crm["1"]["email"], crm["2"]["email"]) == ("ada@example.com", "bob@example.com")
