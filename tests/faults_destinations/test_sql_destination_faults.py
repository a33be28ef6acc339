"""A PostgreSQL destination that breaks between or during runs: its table is dropped, or its
role loses its privileges. The exports fail with the database's reason, nothing else is lost
(records, values, groups, the other exports), and once the destination is fixed the failed
exports are retried and the destination holds the newest state."""

from __future__ import annotations

import sqlite3
import uuid

import psycopg
import pytest

from core import models as m
from core.choices import (
    DestinationCollection,
    ExportState,
    PropertyType,
    RuleOp,
    RunState,
    SyncMode,
)
from core.engine.delivery import exports_drain
from core.services.exports import exports_retry_failed
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db

N = 20
DDL = [
    "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, ltv DOUBLE PRECISION)",
    "CREATE TABLE people_groups (person_id INTEGER, group_name TEXT)",
]


class Shop:
    def __init__(self, tmp_path, pg):
        self.pg = pg
        self.role = f"gp_dest_{uuid.uuid4().hex[:8]}"
        self.admin(*DDL, f'CREATE ROLE "{self.role}" LOGIN',
                   f'GRANT SELECT, INSERT, UPDATE, DELETE ON people, people_groups TO "{self.role}"')
        self.src = tmp_path / "shop.sqlite3"
        with sqlite3.connect(self.src) as conn:
            conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, ltv REAL, updated_at TEXT)")
            conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?)",
                             [(i, f"u{i}@example.com", float(i * 50), "2026-01-01") for i in range(1, N + 1)])
        model = m.RecordModel.objects.create(name="customers")
        app = m.App.objects.create(name="shop", type="sqlite", options={"path": str(self.src)})
        source = m.Source.objects.create(name="users", app=app, model=model, type="sqlite-table",
                                         options={"table": "users"}, is_primary=True)
        props = {
            "id": m.Property.objects.create(model=model, source=source, key="user_id", type=PropertyType.INTEGER,
                                            options={"column": "id"}, unique=True, is_primary_key=True),
            "email": m.Property.objects.create(model=model, source=source, key="email", type=PropertyType.EMAIL,
                                               options={"column": "email"}, unique=True),
            "ltv": m.Property.objects.create(model=model, source=source, key="ltv", type=PropertyType.FLOAT,
                                             options={"column": "ltv"}),
        }
        m.SourceMapping.objects.create(source=source, remote_key="id", property=props["id"])
        self.schedule = m.Schedule.objects.create(source=source, options={"column": "updated_at"})
        self.group = m.Group.objects.create(model=model, name="big")
        m.GroupRule.objects.create(group=self.group, property=props["ltv"], op=RuleOp.GT, match="500")
        out = m.App.objects.create(name="warehouse", type="postgres", options={
            "host": pg["host"], "port": pg["port"], "database": pg["database"], "user": self.role})
        self.destination = m.Destination.objects.create(
            name="warehouse", app=out, model=model, type="postgres-export", sync_mode=SyncMode.SYNC,
            collection=DestinationCollection.MODEL,
            options={"table": "people", "primaryKey": "id", "groupsTable": "people_groups",
                     "groupForeignKey": "person_id", "groupColumnName": "group_name"})
        for remote, prop in props.items():
            m.DestinationMapping.objects.create(destination=self.destination, remote_key=remote, property=prop)
        m.DestinationGroupMembership.objects.create(destination=self.destination, group=self.group, remote_key="big")

    def admin(self, *statements: str) -> list[tuple]:
        with psycopg.connect(self.pg["url"], autocommit=True) as conn:
            rows = []
            for sql in statements:
                cur = conn.execute(sql)
                rows = cur.fetchall() if cur.description else []
            return rows

    def change(self, user_id: int, *, email: str, ltv: float) -> None:
        with sqlite3.connect(self.src) as conn:
            conn.execute("UPDATE users SET email = ?, ltv = ?, updated_at = '2026-02-01' WHERE id = ?",
                         [email, ltv, user_id])

    def rows(self) -> dict[int, tuple]:
        return {r[0]: r[1:] for r in self.admin("SELECT id, email, ltv FROM people")}

    def groups(self) -> set[tuple]:
        return set(self.admin("SELECT person_id, group_name FROM people_groups"))


@pytest.fixture
def shop(tmp_path, scratch_pg):
    return Shop(tmp_path, scratch_pg)


def _records_are_current(shop) -> None:
    email = m.RecordProperty.objects.get(property__key="email", record__properties__property__key="user_id",
                                         record__properties__raw_value="3")
    assert email.raw_value == "three@example.com"
    assert m.GroupMember.objects.filter(group=shop.group, left_at__isnull=True).count() == N - 10 + 1


def test_a_dropped_destination_table_fails_its_exports_loses_nothing_and_recovers(shop):
    assert sync(shop.schedule).state == RunState.COMPLETE
    assert len(shop.rows()) == N
    shop.admin("DROP TABLE people")
    shop.change(3, email="three@example.com", ltv=999)
    run = sync(shop.schedule)
    assert run.state == RunState.COMPLETE
    failed = m.Export.objects.get(destination=shop.destination, state=ExportState.FAILED)
    assert 'table "people" does not exist' in failed.error_message
    assert run.exports_failed == 1 and any("people" in e for e in run.errors), run.errors
    _records_are_current(shop)  # the records, values and groups moved on

    # The fix: the table is back (empty: what it held is the destination's loss, not ours).
    shop.admin(DDL[0], f'GRANT SELECT, INSERT, UPDATE, DELETE ON people TO "{shop.role}"')
    assert exports_retry_failed(destination=shop.destination) == 1
    _send(shop)
    assert not m.Export.objects.filter(destination=shop.destination, state=ExportState.FAILED).exists()
    assert shop.rows() == {3: ("three@example.com", 999.0)}
    assert (3, "big") in shop.groups()


def test_a_destination_role_that_loses_its_privileges_fails_its_exports_and_recovers(shop):
    assert sync(shop.schedule).state == RunState.COMPLETE
    shop.admin(f'REVOKE INSERT, UPDATE, DELETE ON people FROM "{shop.role}"')
    shop.change(3, email="three@example.com", ltv=999)
    run = sync(shop.schedule)
    assert run.state == RunState.COMPLETE
    failed = m.Export.objects.get(destination=shop.destination, state=ExportState.FAILED)
    assert "permission denied for table people" in failed.error_message
    assert shop.rows()[3] == ("u3@example.com", 150.0)  # nothing half-written
    assert (3, "big") not in shop.groups()
    _records_are_current(shop)

    shop.admin(f'GRANT INSERT, UPDATE, DELETE ON people TO "{shop.role}"')
    assert exports_retry_failed(destination=shop.destination) == 1
    _send(shop)
    assert shop.rows()[3] == ("three@example.com", 999.0)
    assert (3, "big") in shop.groups()
    assert set(m.Export.objects.filter(destination=shop.destination).values_list("state", flat=True)) == {
        ExportState.COMPLETE}


def _send(shop) -> None:
    report = exports_drain(destination_ids=[shop.destination.pk], wait_seconds=5)
    assert report.sent == 1 and not report.pending
