"""Values of the wrong type, and empty / NULL / blank values, for every property type, through a
real run: the bad value is flagged on its record with a reason and its raw text kept, the run
completes, the record's other values (and every other record) are imported and exported, and the
destination gets no value for the invalid property (an invalid value is never sent)."""

from __future__ import annotations

import pytest

from core import models as m
from core.choices import RunState
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db

# property key -> (source column, bad raw value, a part of the reason)
WRONG = {
    "ltv": ("ltv", "lots", "'lots' is not a number"),
    "visits": ("visits", "3.5", "'3.5' is not a whole number"),
    "signed_up_at": ("signed_up", "last tuesday", "is not a date"),
    "vip": ("vip", "maybe", "'maybe' is not a boolean"),
    "email": ("email", "bob-at-example.com", "is not an email address"),
    "phone": ("phone", "call me", "is not a phone number"),
    "website": ("website", "javascript:alert(1)", "is not an http(s) URL"),
}


def test_wrong_types_are_flagged_on_their_record_and_the_rest_is_synced(wide):
    sync(wide.shop.users_schedule)
    before = wide.crm()
    wide.set_user(2, **{column: bad for column, bad, _ in WRONG.values()}, first_name="Robert")
    run = sync(wide.shop.users_schedule)

    assert run.state == RunState.COMPLETE, run.error
    assert run.records_invalid == 1
    for key, (_, bad, reason) in WRONG.items():
        rp = wide.value(2, key)
        assert reason in (rp.invalid_reason or ""), (key, rp.invalid_reason)
        assert rp.raw_value == bad  # nothing lost: the source's text is kept as given
        assert (rp.value_text, rp.value_number, rp.value_datetime, rp.value_boolean) == (None,) * 4
        assert any(message.startswith(f"{key}: ") for message in run.errors), run.errors
    record = wide.value(2, "first_name").record
    assert record.invalid is True
    assert wide.value(2, "first_name").value_text == "Robert"
    assert m.Record.objects.filter(invalid=True).count() == 1

    crm = wide.crm()
    assert crm["2"]["first_name"] == "Robert"  # the valid change arrived
    for remote in ("ltv", "visits", "signed_up_at", "vip", "email", "phone", "website"):
        assert crm["2"][remote] is None, remote  # invalid values are sent as no value
    assert {k: v for k, v in crm.items() if k != "2"} == {k: v for k, v in before.items() if k != "2"}

    # The source is fixed: the next run clears the flag and sends the values.
    wide.set_user(2, "2026-03-02T00:00:00", ltv=120.5, visits=4, signed_up="2024-02-29", vip="no",
                  email="bob@example.com", phone="+44 20 7946 0000", website="https://example.org")
    run = sync(wide.shop.users_schedule)
    assert run.state == RunState.COMPLETE and run.records_invalid == 0
    assert not m.Record.objects.filter(invalid=True).exists()
    assert not m.RecordProperty.objects.filter(invalid_reason__isnull=False).exists()
    row = wide.crm()["2"]
    assert (row["ltv"], row["visits"], row["vip"], row["email"], row["phone"], row["website"]) == (
        120.5, 4, 0, "bob@example.com", "+44 20 7946 0000", "https://example.org")
    assert row["signed_up_at"].startswith("2024-02-29T00:00:00")


NON_TEXT = {"ltv": "ltv", "visits": "visits", "signed_up_at": "signed_up", "vip": "vip", "email": "email",
            "phone": "phone", "website": "website"}


@pytest.mark.parametrize("empty", [None, ""], ids=["null", "empty"])
def test_null_and_empty_values_are_no_value_for_every_non_text_type(wide, empty):
    sync(wide.shop.users_schedule)
    wide.set_user(1, **{column: empty for column in NON_TEXT.values()})
    run = sync(wide.shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_invalid == 0, run.errors
    for key in NON_TEXT:
        rp = wide.value(1, key)
        assert rp.invalid_reason is None, (key, rp.invalid_reason)
        assert (rp.value_text, rp.value_number, rp.value_datetime, rp.value_boolean) == (None,) * 4, key
    row = wide.crm()["1"]
    for remote in ("ltv", "visits", "signed_up_at", "vip", "email", "phone", "website"):
        assert row[remote] is None, remote  # the old value was cleared at the destination too
    assert row["first_name"] == "Ada"


@pytest.mark.parametrize("blank", ["   ", "\t\n"], ids=["spaces", "tab-newline"])
def test_blank_text_in_a_non_text_property_is_flagged_not_guessed(wide, blank):
    """A cell of whitespace is not silently read as "no value" for typed properties (core/values.py
    policy, tests/core/test_values.py): it is flagged with the type's reason, the raw text kept."""
    sync(wide.shop.users_schedule)
    wide.set_user(1, **{column: blank for column in NON_TEXT.values()})
    run = sync(wide.shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_invalid == 1
    reasons = {key: wide.value(1, key).invalid_reason or "" for key in NON_TEXT}
    for key, part in [("ltv", "is not a number"), ("visits", "is not a number"), ("signed_up_at", "is not a date"),
                      ("vip", "is not a boolean"), ("email", "is not an email address"),
                      ("phone", "is not a phone number"), ("website", "is not an http(s) URL")]:
        assert reasons[key] == f"{blank!r} {part}" or reasons[key].startswith(f"{blank!r} {part}"), reasons
        assert wide.value(1, key).raw_value == blank
    assert wide.crm()["1"]["first_name"] == "Ada"
    assert wide.crm()["1"]["ltv"] is None


@pytest.mark.parametrize("raw, expected", [(None, None), ("", None), ("   ", "   ")],
                         ids=["null", "empty", "spaces"])
def test_text_properties_keep_blank_strings_verbatim_and_empty_means_no_value(wide, raw, expected):
    sync(wide.shop.users_schedule)
    wide.set_user(3, first_name=raw)
    run = sync(wide.shop.users_schedule)
    assert run.state == RunState.COMPLETE and run.records_invalid == 0
    rp = wide.value(3, "first_name")
    assert rp.invalid_reason is None and rp.value_text == expected
    assert wide.crm()["3"]["first_name"] == expected


def test_a_bad_primary_key_skips_only_that_row_and_says_why(wide):
    wide.shop.src_sql("CREATE TABLE tmp AS SELECT * FROM users")  # keep the columns in step
    wide.shop.src_sql("DROP TABLE users")
    wide.shop.src_sql("CREATE TABLE users AS SELECT * FROM tmp WHERE 0")  # untyped id column
    wide.shop.src_sql("INSERT INTO users SELECT * FROM tmp")
    wide.shop.src_sql("INSERT INTO users (id, email, first_name, updated_at) VALUES "
                      "('ten', 'ten@example.com', 'Ten', '2026-01-09')")
    run = sync(wide.shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_created == 4 and run.records_skipped == 1, (run.records_skipped, run.errors)
    assert any("'ten' is not a number" in message and "row skipped" in message for message in run.errors), run.errors
    assert sorted(wide.crm()) == ["1", "2", "3", "4"]
