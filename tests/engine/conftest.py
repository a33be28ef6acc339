"""A small shop world for engine tests: a SQLite product database (users, purchases), a SQLite
CRM destination, and the configuration that syncs one into the other."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from core import models as m
from core.choices import AggregationMethod, DestinationCollection, PropertyType, RuleOp, SyncMode


@dataclass
class Shop:
    src: Path
    dst: Path
    model: m.RecordModel
    users: m.Source
    purchases: m.Source
    users_schedule: m.Schedule
    purchases_schedule: m.Schedule
    props: dict[str, m.Property]
    high_value: m.Group
    destination: m.Destination

    def src_sql(self, sql: str, params=()) -> None:
        with sqlite3.connect(self.src) as conn:
            conn.execute(sql, params)

    def src_many(self, sql: str, rows) -> None:
        with sqlite3.connect(self.src) as conn:
            conn.executemany(sql, rows)

    def dst_rows(self, table: str = "crm", order: str = "id") -> list[dict]:
        with sqlite3.connect(self.dst) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]

    def dst_groups(self) -> set[tuple[str, str]]:
        with sqlite3.connect(self.dst) as conn:
            return set(conn.execute("SELECT contact_id, group_name FROM crm_groups"))


USERS = [
    # id, email, first_name, ltv, updated_at
    (1, "ada@example.com", "Ada", 900.0, "2026-01-01T00:00:00"),
    (2, "bob@example.com", "Bob", 100.0, "2026-01-02T00:00:00"),
    (3, "cy@example.com", "Cy", 600.0, "2026-01-02T00:00:00"),
    (4, "dee@example.com", "Dee", 50.0, "2026-01-03T00:00:00"),
]
PURCHASES = [
    (1, 1, 10.0, "2026-01-05T00:00:00"),
    (2, 1, 30.0, "2026-01-07T00:00:00"),
    (3, 2, 5.0, "2026-01-06T00:00:00"),
]


def make_shop(tmp_path: Path, *, sync_mode: str = SyncMode.SYNC, collection: str = DestinationCollection.MODEL,
              users=USERS, purchases=PURCHASES) -> Shop:
    src = tmp_path / "shop.sqlite3"
    dst = tmp_path / "crm.sqlite3"
    with sqlite3.connect(src) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, ltv, updated_at TEXT)")
        conn.execute("CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount REAL, purchased_at TEXT)")
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?)", users)
        conn.executemany("INSERT INTO purchases VALUES (?, ?, ?, ?)", purchases)
    with sqlite3.connect(dst) as conn:
        conn.execute(
            "CREATE TABLE crm (id TEXT PRIMARY KEY, email TEXT, first_name TEXT, ltv REAL, purchase_count INTEGER, "
            "total_spend REAL, last_purchase_at TEXT)"
        )
        conn.execute("CREATE TABLE crm_groups (contact_id TEXT, group_name TEXT, PRIMARY KEY (contact_id, group_name))")

    model = m.RecordModel.objects.create(name="customers")
    shop_app = m.App.objects.create(name="shop", type="sqlite", options={"path": str(src)})
    crm_app = m.App.objects.create(name="crm", type="sqlite", options={"path": str(dst)})
    users = m.Source.objects.create(name="users", app=shop_app, model=model, type="sqlite-table",
                                    options={"table": "users"}, is_primary=True)
    purchases_src = m.Source.objects.create(name="purchases", app=shop_app, model=model, type="sqlite-table",
                                            options={"table": "purchases"})
    P = PropertyType

    def prop(key, source, type_, options, **kw):
        return m.Property.objects.create(model=model, source=source, key=key, type=type_, options=options, **kw)

    props = {
        "user_id": prop("user_id", users, P.INTEGER, {"column": "id"}, unique=True, is_primary_key=True),
        "email": prop("email", users, P.EMAIL, {"column": "email"}, unique=True),
        "first_name": prop("first_name", users, P.STRING, {"column": "first_name"}),
        "ltv": prop("ltv", users, P.FLOAT, {"column": "ltv"}),
        "purchase_count": prop("purchase_count", purchases_src, P.INTEGER,
                               {"column": "id", "aggregationMethod": AggregationMethod.COUNT}),
        "total_spend": prop("total_spend", purchases_src, P.FLOAT,
                            {"column": "amount", "aggregationMethod": AggregationMethod.SUM}),
        "last_purchase_at": prop("last_purchase_at", purchases_src, P.DATE,
                                 {"column": "purchased_at", "aggregationMethod": AggregationMethod.MOST_RECENT,
                                  "sortColumn": "purchased_at"}),
    }
    m.SourceMapping.objects.create(source=users, remote_key="id", property=props["user_id"])
    m.SourceMapping.objects.create(source=purchases_src, remote_key="user_id", property=props["user_id"])
    us = m.Schedule.objects.create(source=users, options={"column": "updated_at"}, incremental=True)
    ps = m.Schedule.objects.create(source=purchases_src, options={"column": "purchased_at"}, incremental=True)
    high_value = m.Group.objects.create(model=model, name="High value")
    m.GroupRule.objects.create(group=high_value, property=props["ltv"], op=RuleOp.GT, match="500")
    destination = m.Destination.objects.create(
        name="crm", app=crm_app, model=model, type="sqlite-export", sync_mode=sync_mode,
        collection=collection, group=high_value if collection == DestinationCollection.GROUP else None,
        options={"table": "crm", "primaryKey": "id", "groupsTable": "crm_groups",
                 "groupForeignKey": "contact_id", "groupColumnName": "group_name"},
    )
    for remote, key in [("id", "user_id"), ("email", "email"), ("first_name", "first_name"), ("ltv", "ltv"),
                        ("purchase_count", "purchase_count"), ("total_spend", "total_spend"),
                        ("last_purchase_at", "last_purchase_at")]:
        m.DestinationMapping.objects.create(destination=destination, remote_key=remote, property=props[key])
    m.DestinationGroupMembership.objects.create(destination=destination, group=high_value, remote_key="high-value")
    return Shop(src, dst, model, users, purchases_src, us, ps, props, high_value, destination)


@pytest.fixture
def shop(tmp_path, db) -> Shop:
    return make_shop(tmp_path)
