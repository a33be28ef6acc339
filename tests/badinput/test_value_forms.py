"""Values reach destinations in one form, as Grouparoo normalised them: phone numbers in
international format (read in the default country setting when they have no prefix), URLs with
their scheme and host in lower case. A phone number that is not valid is flagged, not sent."""

from __future__ import annotations

import pytest

from core import models as m
from core.choices import RuleOp, RunState
from core.services.runs import run_create
from tests.engine.helpers import run_and_send, sync

pytestmark = pytest.mark.django_db


def test_every_spelling_of_a_phone_number_arrives_in_one_form(wide):
    spellings = {1: "4128880100", 2: "(412) 888-0100", 3: "+1.412.888.0100", 4: "1 412 888 0100"}
    for user_id, phone in spellings.items():
        wide.set_user(user_id, phone=phone)
    run = sync(wide.shop.users_schedule)
    assert run.state == RunState.COMPLETE and run.records_invalid == 0, (run.error, run.errors)
    assert {u: wide.value(u, "phone").value for u in spellings} == dict.fromkeys(
        spellings, "+1 412 888 0100"
    )
    assert {
        u: wide.value(u, "phone").raw_value for u in spellings
    } == spellings  # the source's text is kept
    assert {r["phone"] for r in wide.crm().values()} == {"+1 412 888 0100"}
    group = m.Group.objects.create(model=wide.shop.model, name="Pittsburgh")
    m.GroupRule.objects.create(
        group=group, property=wide.props["phone"], op=RuleOp.STARTS_WITH, match="+1 412"
    )
    run, _ = run_create(group=group, enqueue=False)
    assert run_and_send(run.pk).state == RunState.COMPLETE
    assert m.GroupMember.objects.filter(group=group, left_at__isnull=True).count() == 4


def test_the_default_country_setting_reads_numbers_without_a_prefix(wide):
    m.Setting.objects.update_or_create(
        plugin="core", key="records-default-country-code", defaults={"value": "GB"}
    )
    wide.set_user(1, phone="020 7946 0958")
    wide.set_user(2, phone="4128880100")  # a US number without its prefix is not British
    run = sync(wide.shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert wide.value(1, "phone").value == "+44 20 7946 0958"
    bad = wide.value(2, "phone")
    assert bad.value is None and bad.raw_value == "4128880100"
    assert (
        bad.invalid_reason == "'4128880100' is not a valid phone number in GB (the default country)"
    )
    crm = wide.crm()
    assert (crm["1"]["phone"], crm["2"]["phone"]) == ("+44 20 7946 0958", None)


def test_urls_arrive_with_scheme_and_host_in_lower_case(wide):
    wide.set_user(1, website="HTTPS://Shop.Example.COM/Users/Ada?Ref=X")
    run = sync(wide.shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert wide.crm()["1"]["website"] == "https://shop.example.com/Users/Ada?Ref=X"
