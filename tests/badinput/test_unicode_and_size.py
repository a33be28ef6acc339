"""Text from every Unicode plane, NUL bytes and very long strings through import, group rules and
export, on the application database the run uses (SQLite, or PostgreSQL with DATABASE_URL)."""

from __future__ import annotations

import random

import pytest

from core import models as m
from core.choices import RuleOp, RunState
from core.values import MAX_TEXT_BYTES, MAX_UNIQUE_TEXT
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db

SAMPLES = {
    "latin": "Zoë Ångström Łódź",
    "cyrillic-greek": "Дмитрий Ελένη",
    "cjk": "日本語 中文 한국어",
    "rtl": "مرحبا שלום",
    "combining": "e\u0301 a\u0308 \u0915\u094d\u0937 Z\u0351\u036b",
    "emoji": "🚀 👩\u200d👩\u200d👧 🇮🇪",
    "plane1": "\U0001d11e\U0001f600",
    "plane2": "\U00020000\U0002a6d6",
    "plane3": "\U00030000",
    "plane14": "\U000e0001\U000e0041\U000e0100",
    "plane15-16": "\U000f0000\U0010fffd",
    "invisible": "\ufeff\u200b\u2028x\u00a0",
    "quotes": "O'Brien \"Bob\" `tick` \\ back; -- ",
}


def test_every_unicode_plane_survives_import_group_rules_and_export(shop):
    ids = {}
    groups = {}
    for n, (name, text) in enumerate(SAMPLES.items(), start=10):
        shop.src_sql("INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                     (n, f"u{n}@example.com", text, 1.0, "2026-01-05T00:00:00"))
        ids[name] = n
        group = m.Group.objects.create(model=shop.model, name=f"is {name} {text}"[:100])
        m.GroupRule.objects.create(group=group, property=shop.props["first_name"], op=RuleOp.EQ, match=text)
        m.DestinationGroupMembership.objects.create(destination=shop.destination, group=group, remote_key=f"{name} {text}")
        groups[name] = group
    contains = m.Group.objects.create(model=shop.model, name="has a rocket")
    m.GroupRule.objects.create(group=contains, property=shop.props["first_name"], op=RuleOp.SUBSTRING, match="🚀")

    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_invalid == 0, run.errors

    crm = {r["id"]: r for r in shop.dst_rows()}
    tags = shop.dst_groups()
    for name, text in SAMPLES.items():
        rp = m.RecordProperty.objects.get(property=shop.props["first_name"], value_text=text)
        assert rp.raw_value == text
        member_ids = set(m.GroupMember.objects.filter(group=groups[name], left_at__isnull=True)
                         .values_list("record_id", flat=True))
        assert member_ids == {rp.record_id}, name  # exactly the record holding that text
        assert crm[str(ids[name])]["first_name"] == text, name  # sent unchanged
        assert (str(ids[name]), f"{name} {text}") in tags, name
    rocket = m.GroupMember.objects.get(group=contains, left_at__isnull=True)
    assert rocket.record.properties.get(property=shop.props["first_name"]).value_text == SAMPLES["emoji"]


def test_a_nul_character_is_flagged_on_its_value_and_the_batch_goes_on(shop):
    shop.src_sql("UPDATE users SET first_name = ? WHERE id = 2", ("Bo\x00b",))
    shop.src_sql("UPDATE users SET email = ? WHERE id = 3", ("cy\x00@example.com",))
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_invalid == 2 and run.records_created == 4, (run.errors, list(m.RecordProperty.objects.filter(property__key__in=["email", "first_name"]).values_list("raw_value", "invalid_reason")))
    name = m.RecordProperty.objects.get(property=shop.props["first_name"], raw_value="Bo\ufffdb")
    assert name.invalid_reason == "contains a NUL character" and name.value_text is None
    email = m.RecordProperty.objects.get(property=shop.props["email"], raw_value="cy\ufffd@example.com")
    assert "contains a NUL character" in email.invalid_reason and email.unique_value is None
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert sorted(crm) == ["1", "2", "3", "4"]
    assert crm["2"]["first_name"] is None and crm["2"]["email"] == "bob@example.com"
    assert crm["3"]["email"] is None and crm["3"]["first_name"] == "Cy"
    assert crm["1"]["first_name"] == "Ada"


def _noise(n_chars: int, seed: int, alphabet: str = "abcdefghijklmnopqrstuvwxyzé日🚀 ") -> str:
    """Text that does not compress (a database could squeeze repetitive text under its limits)."""
    rnd = random.Random(seed)
    return "".join(rnd.choice(alphabet) for _ in range(n_chars))


def test_a_1mb_string_round_trips_exactly(shop):
    """Typed text is not indexed, so long text (notes, descriptions) syncs whole: 1 MB of
    incompressible text from every plane reaches the destination unchanged."""
    big = _noise(1_000_000, 2)
    shop.src_sql("UPDATE users SET first_name = ?, ltv = 700 WHERE id = 2", (big,))
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE and run.records_invalid == 0, (run.error, run.errors)
    rp = m.RecordProperty.objects.get(property=shop.props["first_name"], record__properties__unique_value="2")
    assert rp.value_text == big and rp.invalid_reason is None
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert crm["2"]["first_name"] == big and crm["2"]["ltv"] == 700
    assert ("2", "high-value") in shop.dst_groups()


def test_text_over_the_limit_is_refused_with_a_reason_kept_raw_and_the_rest_synced(shop):
    huge = "x" * (MAX_TEXT_BYTES + 1)
    shop.src_sql("UPDATE users SET first_name = ?, ltv = 700 WHERE id = 2", (huge,))
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_invalid == 1 and run.records_created == 4
    rp = m.RecordProperty.objects.get(property=shop.props["first_name"], record__properties__unique_value="2")
    assert rp.raw_value == huge  # nothing lost
    assert rp.value_text is None
    assert rp.invalid_reason == f"is too long: {len(huge):,} bytes of text (at most {MAX_TEXT_BYTES:,})"
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert crm["2"]["first_name"] is None and crm["2"]["ltv"] == 700 and crm["2"]["email"] == "bob@example.com"
    assert ("2", "high-value") in shop.dst_groups()


def test_a_unique_value_too_long_to_identify_a_record_is_flagged(shop):
    first_name = shop.props["first_name"]
    first_name.unique = True
    first_name.save()
    too_long, longest = "é" * (MAX_UNIQUE_TEXT + 1), "é" * MAX_UNIQUE_TEXT
    shop.src_sql("UPDATE users SET first_name = ? WHERE id = 2", (too_long,))
    shop.src_sql("UPDATE users SET first_name = ? WHERE id = 3", (longest,))
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE, run.error
    assert run.records_invalid == 1 and run.records_created == 4
    bad = m.RecordProperty.objects.get(property=first_name, raw_value=too_long)
    assert bad.unique_value is None and bad.value_text is None
    assert bad.invalid_reason == f"is longer than {MAX_UNIQUE_TEXT} characters, too long to identify a record"
    good = m.RecordProperty.objects.get(property=first_name, raw_value=longest)
    assert good.unique_value == longest and good.invalid_reason is None
    crm = {r["id"]: r for r in shop.dst_rows()}
    assert crm["2"]["first_name"] is None and crm["2"]["email"] == "bob@example.com"
    assert crm["3"]["first_name"] == longest


def test_an_overlong_email_is_not_an_email_address(shop):
    email = "a" * 250 + "@example.com"
    shop.src_sql("UPDATE users SET email = ? WHERE id = 2", (email,))
    run = sync(shop.users_schedule)
    assert run.state == RunState.COMPLETE and run.records_invalid == 1, run.error
    rp = m.RecordProperty.objects.get(property=shop.props["email"], raw_value=email)
    assert rp.invalid_reason == "is longer than 254 characters, too long for an email address"
    assert rp.unique_value is None


EDGE_VALUES = [
    "ada\x00@example.com", "a\x00b", "é" * (MAX_UNIQUE_TEXT + 1), "x" * (MAX_TEXT_BYTES + 1),
    "🚀" * (MAX_TEXT_BYTES // 4 + 1), "a" * 250 + "@example.com", " " + "b" * 240 + "@example.com ",
    "\U0010fffd" * 3, "https://example.com/" + "p" * MAX_TEXT_BYTES,
]


@pytest.mark.parametrize("unique", [False, True])
@pytest.mark.parametrize("ptype", ["string", "email", "url", "phoneNumber"])
def test_the_import_fast_paths_agree_with_the_general_path_on_edge_values(ptype, unique):
    from core.engine.imports import stage_value, stager

    prop = m.Property(pk=1, key="p", type=ptype, unique=unique)
    fast = stager(prop)
    for raw in EDGE_VALUES:
        assert fast(raw) == stage_value(prop, raw), (ptype, unique, raw[:20])
