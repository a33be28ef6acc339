"""The benchmark configuration (DESIGN.md section 10), applied to a fresh application database.

Run by bench/harness.py as a separate process with DATABASE_URL set:
    python bench/bench_config.py SRC_DB DST_DB ANCHOR_ISO

Model `customers`; a PostgreSQL app; the primary table source on `customers` (key `id`);
properties email (unique), first_name, last_name, ltv (float), country, created_at (date); from
`purchases`: purchase_count (count), total_spend (sum), last_purchase_at (most recent
`purchased_at`); groups `high_value` (ltv > 500) and `recent_buyers` (last purchase in the 30 days
before the generator's anchor); a PostgreSQL table destination in sync mode tracking the whole
model, mapping every property and both groups.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "grouparoo_site.settings")


def main(src_db: str, dst_db: str, anchor: str) -> None:
    import django

    django.setup()
    from core import models as m
    from core.choices import (
        AggregationMethod,
        DestinationCollection,
        PropertyType,
        RuleOp,
        SyncMode,
    )

    pg = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
    model = m.RecordModel.objects.create(name="customers")
    src_app = m.App.objects.create(name="bench source", type="postgres", options={**pg, "database": src_db})
    dst_app = m.App.objects.create(name="bench destination", type="postgres", options={**pg, "database": dst_db})
    customers = m.Source.objects.create(
        name="customers", app=src_app, model=model, type="postgres-table", options={"table": "customers"}, is_primary=True
    )
    purchases = m.Source.objects.create(
        name="purchases", app=src_app, model=model, type="postgres-table", options={"table": "purchases"}
    )
    T = PropertyType

    def prop(key, source, type_, **options):
        return m.Property.objects.create(model=model, source=source, key=key, type=type_, options=options,
                                         unique=key in ("customer_id", "email"), is_primary_key=key == "customer_id")

    props = {
        "customer_id": prop("customer_id", customers, T.INTEGER, column="id"),
        "email": prop("email", customers, T.EMAIL, column="email"),
        "first_name": prop("first_name", customers, T.STRING, column="first_name"),
        "last_name": prop("last_name", customers, T.STRING, column="last_name"),
        "ltv": prop("ltv", customers, T.FLOAT, column="ltv"),
        "country": prop("country", customers, T.STRING, column="country"),
        "created_at": prop("created_at", customers, T.DATE, column="created_at"),
        "purchase_count": prop("purchase_count", purchases, T.INTEGER, column="id", aggregationMethod=AggregationMethod.COUNT),
        "total_spend": prop("total_spend", purchases, T.FLOAT, column="amount", aggregationMethod=AggregationMethod.SUM),
        "last_purchase_at": prop("last_purchase_at", purchases, T.DATE, column="purchased_at",
                                 aggregationMethod=AggregationMethod.MOST_RECENT, sortColumn="purchased_at"),
    }
    m.SourceMapping.objects.create(source=customers, remote_key="id", property=props["customer_id"])
    m.SourceMapping.objects.create(source=purchases, remote_key="customer_id", property=props["customer_id"])
    m.Schedule.objects.create(source=customers, name="customers", options={"column": "updated_at"}, incremental=True)
    m.Schedule.objects.create(source=purchases, name="purchases", options={"column": "purchased_at"}, incremental=True)
    high = m.Group.objects.create(model=model, name="high_value")
    m.GroupRule.objects.create(group=high, property=props["ltv"], op=RuleOp.GT, match="500")
    recent = m.Group.objects.create(model=model, name="recent_buyers")
    cutoff = dt.datetime.fromisoformat(anchor) - dt.timedelta(days=30)
    m.GroupRule.objects.create(group=recent, property=props["last_purchase_at"], op=RuleOp.GTE, match=cutoff.isoformat())
    dest = m.Destination.objects.create(
        name="bench destination", app=dst_app, model=model, type="postgres-export", sync_mode=SyncMode.SYNC,
        collection=DestinationCollection.MODEL,
        options={"table": "customers_out", "primaryKey": "id", "groupsTable": "customer_groups",
                 "groupForeignKey": "customer_id", "groupColumnName": "group_name"},
    )
    remote = {"customer_id": "id"}
    for key, p in props.items():
        m.DestinationMapping.objects.create(destination=dest, remote_key=remote.get(key, key), property=p)
    m.DestinationGroupMembership.objects.create(destination=dest, group=high, remote_key="high_value")
    m.DestinationGroupMembership.objects.create(destination=dest, group=recent, remote_key="recent_buyers")
    for obj in (src_app, dst_app, customers, purchases, dest):
        obj.full_clean()


if __name__ == "__main__":
    main(*sys.argv[1:4])
