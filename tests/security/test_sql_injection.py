"""Hostile strings in source rows (property values and record keys), schedule filter values,
group rule matches and query-property variables travel as data, never as SQL: after a full sync
from a SQLite, PostgreSQL or MariaDB source into a destination table on the same database, every
table still exists, the destination holds each string byte for byte, the filter excluded exactly
its literal and each group holds exactly the records whose value matches the rule literally
(LIKE wildcards and backslashes included)."""
from __future__ import annotations

import pytest

from core import models as m
from core.choices import DestinationCollection, PropertyType, RuleOp, RunState
from tests.engine.helpers import sync
from tests.security.sqlworlds import KINDS, make_db

pytestmark = pytest.mark.django_db

EVIL = [
    "x'); DROP TABLE customers; --",
    "1 OR 1=1",
    "' OR '1'='1",
    "back\\slash\\' \\",
    "$$; DROP TABLE customers; $$",
    "$tag$ DELETE FROM customers $tag$",
    "%s %(code)s {} {0} ? :code",
    "100% _under_",
    '"; DELETE FROM customers; --',
    "Robert'); DROP TABLE students;--",
    "/*!50000 DROP TABLE customers */",
    "plain",
]
FILTERED_OUT = "1 OR 1=1"


def note(code: str) -> str:
    return f"note:{code}"


@pytest.fixture(params=KINDS)
def hostile(request, tmp_path, db):
    src = make_db(request.param, request, tmp_path)
    src.run(
        "INSERT INTO customers VALUES " + ", ".join(["(?, ?, ?, ?)"] * len(EVIL)),
        [v for i, code in enumerate(EVIL, 1) for v in (i, code, note(code), f"2026-01-01 00:00:{i:02d}")],
    )
    kind = src.kind
    model = m.RecordModel.objects.create(name="customers")
    app = m.App.objects.create(name="shop", type=kind, options=src.options)
    out_app = m.App.objects.create(name="out", type=kind, options=src.options)
    table = m.Source.objects.create(name="customers", app=app, model=model, type=f"{kind}-table",
                                    options={"table": "customers"}, is_primary=True)
    query = m.Source.objects.create(name="notes", app=app, model=model, type=f"{kind}-query",
                                    options={"query": "SELECT code FROM customers"})

    def prop(key, source, options, **kw):
        return m.Property.objects.create(model=model, source=source, key=key, type=PropertyType.STRING,
                                         options=options, **kw)

    code = prop("code", table, {"column": "code"}, unique=True, is_primary_key=True)
    note_p = prop("note", table, {"column": "note"})
    # the record's key, a hostile string itself, is the query's variable
    note_q = prop("note_q", query, {"query": "SELECT note FROM customers WHERE code = {{{ code }}}"})
    m.SourceMapping.objects.create(source=table, remote_key="code", property=code)
    m.SourceMapping.objects.create(source=query, remote_key="code", property=code)
    schedule = m.Schedule.objects.create(source=table, options={"column": "updated_at"})
    m.ScheduleFilter.objects.create(schedule=schedule, key="code", op="ne", match=FILTERED_OUT)
    query_schedule = m.Schedule.objects.create(source=query, options={})

    groups = {
        "dropper": (note_p, RuleOp.EQ, note(EVIL[0])),
        "percent": (code, RuleOp.SUBSTRING, "%"),
        "underscore": (code, RuleOp.SUBSTRING, "_u"),
        "backslash": (code, RuleOp.SUBSTRING, "\\"),
        "quote-start": (code, RuleOp.STARTS_WITH, "' OR"),
        "dollar-end": (code, RuleOp.ENDS_WITH, "$$"),
    }
    destination = m.Destination.objects.create(
        name="out", app=out_app, model=model, type=f"{kind}-export", collection=DestinationCollection.MODEL,
        options={"table": "out_customers", "primaryKey": "code", "groupsTable": "out_groups",
                 "groupForeignKey": "code", "groupColumnName": "name"},
    )
    for remote, p in [("code", code), ("note", note_p), ("note_q", note_q)]:
        m.DestinationMapping.objects.create(destination=destination, remote_key=remote, property=p)
    for name, (p, op, match) in groups.items():
        group = m.Group.objects.create(model=model, name=name)
        m.GroupRule.objects.create(group=group, property=p, op=op, match=match)
        m.DestinationGroupMembership.objects.create(destination=destination, group=group, remote_key=name)
    return src, schedule, query_schedule


EXPECTED_GROUPS = {
    "dropper": {EVIL[0]},
    "percent": {"%s %(code)s {} {0} ? :code", "100% _under_"},
    "underscore": {"100% _under_"},
    "backslash": {"back\\slash\\' \\"},
    "quote-start": {"' OR '1'='1"},
    "dollar-end": {"$$; DROP TABLE customers; $$"},
}


def test_hostile_values_are_stored_and_sent_literally(hostile):
    src, schedule, query_schedule = hostile
    run = sync(schedule)
    assert run.state == RunState.COMPLETE, run.error
    run = sync(query_schedule, full=True)
    assert run.state == RunState.COMPLETE, run.error
    assert m.Export.objects.exclude(state="complete").filter(error_message__gt="").count() == 0

    # nothing was executed: every table is there, the source is untouched
    assert {"customers", "out_customers", "out_groups"} <= src.tables()
    assert sorted(r[0] for r in src.run("SELECT code FROM customers")) == sorted(EVIL)
    assert m.Record.objects.count() == len(EVIL) - 1

    # stored literally
    codes = set(m.RecordProperty.objects.filter(property__key="code").values_list("value_text", flat=True))
    assert codes == set(EVIL) - {FILTERED_OUT}

    # sent literally: the filtered row is absent, every other one holds its own strings
    rows = {r[0]: (r[1], r[2]) for r in src.run("SELECT code, note, note_q FROM out_customers")}
    assert rows == {c: (note(c), note(c)) for c in EVIL if c != FILTERED_OUT}

    # the groups hold exactly the literal matches
    members: dict[str, set[str]] = {}
    for code, name in src.run("SELECT code, name FROM out_groups"):
        members.setdefault(name, set()).add(code)
    assert members == EXPECTED_GROUPS
    for name, expected in EXPECTED_GROUPS.items():
        in_group = m.GroupMember.objects.filter(group__name=name, left_at__isnull=True).values("record")
        assert set(m.RecordProperty.objects.filter(property__key="code", record__in=in_group)
                   .values_list("value_text", flat=True)) == expected, name
