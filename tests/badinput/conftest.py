"""The engine tests' shop, widened with one property of every scalar type so that each bad value
can be sent through a real run: SQLite source and destination files, the application database
chosen by DATABASE_URL (SQLite by default, PostgreSQL in the second CI pass)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import pytest

from core import models as m
from core.choices import PropertyType
from tests.engine.conftest import Shop, make_shop

P = PropertyType

# property key -> (source column, destination column, type)
EXTRA = {
    "visits": ("visits", "visits", P.INTEGER),
    "signed_up_at": ("signed_up", "signed_up_at", P.DATE),
    "vip": ("vip", "vip", P.BOOLEAN),
    "phone": ("phone", "phone", P.PHONE_NUMBER),
    "website": ("website", "website", P.URL),
}
# A row where every property holds a good value.
GOOD = {"visits": 7, "signed_up": "2025-06-01T10:00:00+00:00", "vip": "true", "phone": "+1 412 888 0100",
        "website": "https://example.com/bob"}


@dataclass
class WideShop:
    shop: Shop
    props: dict[str, m.Property]

    def set_user(self, user_id: int, when: str = "2026-03-01T00:00:00", **columns) -> None:
        """Change columns of one source row and bump its watermark."""
        sets = ", ".join(f"{c} = ?" for c in columns)
        self.shop.src_sql(f"UPDATE users SET {sets}, updated_at = ? WHERE id = ?",
                          (*columns.values(), when, user_id))

    def crm(self) -> dict[str, dict]:
        return {r["id"]: r for r in self.shop.dst_rows()}

    def value(self, user_id: int, key: str) -> m.RecordProperty:
        record = m.RecordProperty.objects.get(property=self.props["user_id"], unique_value=str(user_id)).record
        return record.properties.get(property=self.props[key])


def make_wide_shop(tmp_path) -> WideShop:
    shop = make_shop(tmp_path)
    with sqlite3.connect(shop.src) as conn:
        for column, _, _ in EXTRA.values():
            conn.execute(f"ALTER TABLE users ADD COLUMN {column}")
        conn.execute(
            "UPDATE users SET visits = ?, signed_up = ?, vip = ?, phone = ?, website = ?",
            tuple(GOOD.values()),
        )
    with sqlite3.connect(shop.dst) as conn:
        for _, remote, _ in EXTRA.values():
            conn.execute(f"ALTER TABLE crm ADD COLUMN {remote}")
    props = dict(shop.props)
    for key, (column, remote, type_) in EXTRA.items():
        props[key] = m.Property.objects.create(model=shop.model, source=shop.users, key=key, type=type_,
                                               options={"column": column})
        m.DestinationMapping.objects.create(destination=shop.destination, remote_key=remote, property=props[key])
    return WideShop(shop, props)


@pytest.fixture
def wide(tmp_path, db) -> WideShop:
    return make_wide_shop(tmp_path)


@pytest.fixture
def shop(tmp_path, db) -> Shop:
    return make_shop(tmp_path)
