"""The demo: a small shop database, an empty CRM database, and a configuration using every concept.

`demo_load()` is what `manage.py load_demo` (and so `make run`) calls. It is idempotent:

- `demo_databases_create()` writes two SQLite files under `var/demo/` only when they are missing
  (`reset=True` rewrites them): `shop.sqlite3`, the "product database" a company already has
  (users and their purchases, ~50 deterministic users from `random.Random(42)`, with a couple
  of deliberately invalid values to show invalid-value flagging), and `crm.sqlite3`, an empty
  destination (contacts and their group tags).
- `demo_configuration_ensure()` creates, through the ORM and `full_clean()`, each configuration
  object that does not exist yet, looked up by its name (or natural key). Existing objects are
  left as they are, so a user's edits survive another `make run`.

Dates in the shop are relative to `now` (the day the files are written), so "Recent buyers"
(purchases in the last 30 days) has members whatever the day.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction

from core import models as m
from core.choices import (
    AggregationMethod,
    ApiTopic,
    DestinationCollection,
    FilterOp,
    GroupMatchType,
    PropertyType,
    RecordModelType,
    RelativeUnit,
    RuleOp,
    SyncMode,
)

SEED = 42
USER_COUNT = 50
ISO = "%Y-%m-%dT%H:%M:%SZ"

# Rows that do not parse for their property's type: kept raw and flagged invalid by an import.
INVALID_EMAIL_USER = 7  # an email without "@"
INVALID_LTV_USER = 13  # ltv "n/a"
TEST_ACCOUNT_USERS = (49, 50)  # country "XX": left out by the Users schedule's filter

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Bea", "Carlos", "Chen", "Dana", "Elif", "Emeka", "Fatima", "Grace",
    "Hiro", "Ines", "Jonas", "Kofi", "Lea", "Liam", "Mara", "Noor", "Olga", "Priya", "Quinn",
    "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Almeida", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ivanova",
    "Jensen", "Kowalski", "Lopez", "Martin", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt",
    "Tanaka", "Walsh",
)  # fmt: skip
COUNTRIES = ("US", "US", "US", "DE", "DE", "FR", "GB", "GB", "CA", "BR", "JP", "NL", "ES")
PURCHASES_PER_USER = (0, 1, 2, 3, 3, 4, 5, 6)  # about three on average; some users buy nothing


@dataclass(frozen=True)
class DemoPaths:
    shop: Path
    crm: Path


@dataclass
class DemoResult:
    paths: DemoPaths
    databases_created: bool = False
    created: Counter = field(default_factory=Counter)  # model label -> objects created
    api_key: str | None = None  # the demo API key, only when it was created now (shown once)


def demo_paths(directory: Path | str | None = None) -> DemoPaths:
    base = Path(directory) if directory else Path(settings.BASE_DIR) / "var" / "demo"
    base = base.resolve()
    return DemoPaths(shop=base / "shop.sqlite3", crm=base / "crm.sqlite3")


# -- the two demo databases ------------------------------------------------------------------


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime(ISO)


def demo_shop_rows(*, now: dt.datetime) -> tuple[list[tuple], list[tuple]]:
    """The shop's users and purchases as row tuples; the same for the same `now`."""
    rng = random.Random(SEED)
    users: list[tuple] = []
    purchases: list[tuple] = []
    purchase_id = 0
    for user_id in range(1, USER_COUNT + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email: str = f"{first}.{last}{user_id}@example.com".lower()
        ltv: Any = round(rng.expovariate(1 / 300), 2)  # most spend little, a few a lot
        country = rng.choice(COUNTRIES)
        vip = 1 if rng.random() < 0.2 else 0
        signed_up_at = now - dt.timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86399))
        updated_at = now - dt.timedelta(days=rng.randint(0, 29), seconds=rng.randint(0, 86399))
        if user_id == INVALID_EMAIL_USER:
            email = f"{first}.{last}.example.com".lower()
        if user_id == INVALID_LTV_USER:
            ltv = "n/a"
        if user_id in TEST_ACCOUNT_USERS:
            country = "XX"
        users.append(
            (user_id, email, first, last, ltv, country, vip, _iso(signed_up_at), _iso(updated_at))
        )
        for _ in range(rng.choice(PURCHASES_PER_USER)):
            purchase_id += 1
            amount = round(rng.uniform(5, 250), 2)
            purchased_at = now - dt.timedelta(
                days=rng.randint(0, 180), seconds=rng.randint(0, 86399)
            )
            purchases.append((purchase_id, user_id, amount, _iso(purchased_at)))
    return users, purchases


SHOP_SCHEMA = """
CREATE TABLE users (
    id integer PRIMARY KEY,
    email text UNIQUE,
    first_name text,
    last_name text,
    ltv real,
    country text,
    vip integer,
    signed_up_at text,
    updated_at text
);
CREATE INDEX users_updated_at ON users (updated_at);
CREATE TABLE purchases (
    id integer PRIMARY KEY,
    user_id integer,
    amount real,
    purchased_at text
);
CREATE INDEX purchases_user_id ON purchases (user_id);
CREATE INDEX purchases_purchased_at ON purchases (purchased_at);
"""

CRM_SCHEMA = """
CREATE TABLE crm_contacts (
    id text PRIMARY KEY,
    email text,
    first_name text,
    last_name text,
    ltv real,
    purchase_count integer,
    total_spend real,
    last_purchase_at text
);
CREATE TABLE crm_groups (
    contact_id text,
    group_name text,
    PRIMARY KEY (contact_id, group_name)
);
"""


def _write_sqlite(path: Path, schema: str, fill=None) -> None:
    """Build the file under a temporary name and rename it: never a half-written database."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        with conn:
            conn.executescript(schema)
            if fill:
                fill(conn)
    finally:
        conn.close()
    os.replace(tmp, path)


def demo_databases_create(
    *, paths: DemoPaths, now: dt.datetime | None = None, reset: bool = False
) -> bool:
    """Write the shop and CRM databases when missing (or always, with `reset`).

    Returns whether anything was written. Without `reset`, an existing file is never touched:
    the CRM holds what syncs wrote, and the app database remembers what it sent there.
    """
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    paths.shop.parent.mkdir(parents=True, exist_ok=True)
    wrote = False
    if reset or not paths.shop.exists():
        users, purchases = demo_shop_rows(now=now)

        def fill(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", users)
            conn.executemany("INSERT INTO purchases VALUES (?, ?, ?, ?)", purchases)

        _write_sqlite(paths.shop, SHOP_SCHEMA, fill)
        wrote = True
    if reset or not paths.crm.exists():
        _write_sqlite(paths.crm, CRM_SCHEMA)
        wrote = True
    return wrote


# -- the configuration -------------------------------------------------------------------------


class _Ensurer:
    """get-or-create with full_clean(): finds by `lookup`, else validates and saves a new row."""

    def __init__(self) -> None:
        self.created: Counter = Counter()

    def __call__(self, cls: type[models.Model], lookup: dict[str, Any], /, **fields: Any):
        obj = cls._default_manager.filter(**lookup).first()
        if obj is None:
            obj = cls(**lookup, **fields)
            try:
                obj.full_clean()
            except ValidationError as exc:
                what = ", ".join(f"{k}={v}" for k, v in lookup.items())
                raise ValidationError(
                    f"demo {cls._meta.verbose_name} ({what}): {'; '.join(exc.messages)}"
                ) from exc
            obj.save()
            self.created[cls._meta.label] += 1
        return obj


def _column(column: str, method: str = AggregationMethod.EXACT, **extra: str) -> dict[str, str]:
    return {"column": column, "aggregationMethod": method, **extra}


def demo_configuration_ensure(*, paths: DemoPaths) -> DemoResult:
    """Create the demo configuration objects that do not exist yet. Idempotent.

    Touches every concept: a Model, two Apps (one with a refresh query), a primary table Source,
    a secondary table Source with aggregated Properties (one filtered), a query Source, Mappings,
    Schedules with a Filter, Groups (all / any, relative dates), a Destination in sync mode with
    mapped properties and groups, and an API key with a read permission.
    """
    ensure = _Ensurer()
    result = DemoResult(paths=paths)
    with transaction.atomic():
        model = ensure(m.RecordModel, {"name": "customers"}, type=RecordModelType.PROFILE)

        shop = ensure(
            m.App, {"name": "Shop database"}, type="sqlite", options={"path": str(paths.shop)}
        )
        crm = ensure(m.App, {"name": "CRM"}, type="sqlite", options={"path": str(paths.crm)})
        ensure(m.AppRefreshQuery, {"app": shop}, query="SELECT MAX(updated_at) FROM users")

        # Primary source: users. Its primary key property user_id is the mapping of every source.
        users = ensure(
            m.Source,
            {"name": "Users"},
            app=shop,
            model=model,
            type="sqlite-table",
            options={"table": "users"},
            is_primary=True,
        )
        props: dict[str, m.Property] = {}

        def prop(source: m.Source, key: str, type_: str, options: dict, **kw: Any) -> m.Property:
            props[key] = ensure(
                m.Property,
                {"model": model, "key": key},
                source=source,
                type=type_,
                options=options,
                **kw,
            )
            return props[key]

        prop(
            users, "user_id", PropertyType.INTEGER, _column("id"), unique=True, is_primary_key=True
        )
        prop(users, "email", PropertyType.EMAIL, _column("email"), unique=True)
        prop(users, "first_name", PropertyType.STRING, _column("first_name"))
        prop(users, "last_name", PropertyType.STRING, _column("last_name"))
        prop(users, "ltv", PropertyType.FLOAT, _column("ltv"))
        prop(users, "country", PropertyType.STRING, _column("country"))
        prop(users, "vip", PropertyType.BOOLEAN, _column("vip"))
        prop(users, "signed_up_at", PropertyType.DATE, _column("signed_up_at"))
        ensure(m.SourceMapping, {"source": users, "remote_key": "id"}, property=props["user_id"])

        # Secondary source: purchases, aggregated per user in the shop database.
        purchases = ensure(
            m.Source,
            {"name": "Purchases"},
            app=shop,
            model=model,
            type="sqlite-table",
            options={"table": "purchases"},
        )
        ensure(
            m.SourceMapping,
            {"source": purchases, "remote_key": "user_id"},
            property=props["user_id"],
        )
        prop(
            purchases,
            "purchase_count",
            PropertyType.INTEGER,
            _column("id", AggregationMethod.COUNT),
        )
        prop(purchases, "total_spend", PropertyType.FLOAT, _column("amount", AggregationMethod.SUM))
        prop(
            purchases,
            "last_purchase_at",
            PropertyType.DATE,
            _column("purchased_at", AggregationMethod.MOST_RECENT, sortColumn="purchased_at"),
        )
        large = prop(
            purchases,
            "large_purchases",
            PropertyType.INTEGER,
            _column("id", AggregationMethod.COUNT),
        )
        ensure(
            m.PropertyFilter, {"property": large, "key": "amount", "op": FilterOp.GT}, match="100"
        )

        # A query source: the same users, read through a custom query.
        queries = ensure(
            m.Source,
            {"name": "Shop queries"},
            app=shop,
            model=model,
            type="sqlite-query",
            options={"query": "SELECT id FROM users"},
        )
        ensure(m.SourceMapping, {"source": queries, "remote_key": "id"}, property=props["user_id"])
        # A query property: {{{ user_id }}} becomes the record's key, as a bound parameter.
        prop(
            queries,
            "first_purchase_at",
            PropertyType.DATE,
            {"query": "SELECT MIN(purchased_at) FROM purchases WHERE user_id = {{{ user_id }}}"},
        )

        # Schedules: every 5 minutes, incremental over a watermark column.
        users_schedule = ensure(
            m.Schedule,
            {"source": users},
            name="Users every 5 minutes",
            recurring=True,
            recurring_frequency=300,
            incremental=True,
            options={"column": "updated_at"},
        )
        ensure(
            m.ScheduleFilter,
            {"schedule": users_schedule, "key": "country", "op": FilterOp.NE},
            match="XX",
        )
        ensure(
            m.Schedule,
            {"source": purchases},
            name="Purchases every 5 minutes",
            recurring=True,
            recurring_frequency=300,
            incremental=True,
            options={"column": "purchased_at"},
        )

        # Groups.
        def group(name: str, match_type: str, rules: list[dict[str, Any]]) -> m.Group:
            g = ensure(m.Group, {"model": model, "name": name}, match_type=match_type)
            for position, rule in enumerate(rules):
                prop_key = rule.pop("property")
                ensure(
                    m.GroupRule,
                    {"group": g, "property": props[prop_key], "op": rule.pop("op")},
                    position=position,
                    **rule,
                )
            return g

        high_value = group(
            "High value",
            GroupMatchType.ANY,
            [
                {"property": "ltv", "op": RuleOp.GT, "match": "500"},
                {"property": "total_spend", "op": RuleOp.GT, "match": "600"},
            ],
        )
        recent = group(
            "Recent buyers",
            GroupMatchType.ALL,
            [
                {
                    "property": "last_purchase_at",
                    "op": RuleOp.IN_LAST,
                    "relative_match_number": 30,
                    "relative_match_unit": RelativeUnit.DAYS,
                }
            ],
        )
        group(
            "VIPs in Europe",
            GroupMatchType.ALL,
            [
                {"property": "vip", "op": RuleOp.EQ, "match": "true"},
                {"property": "country", "op": RuleOp.IN, "match": "DE,FR,GB"},
            ],
        )

        # Destination: the CRM, kept in sync with every customer and two group tags.
        destination = ensure(
            m.Destination,
            {"name": "CRM contacts"},
            app=crm,
            model=model,
            type="sqlite-export",
            options={
                "table": "crm_contacts",
                "primaryKey": "id",
                "groupsTable": "crm_groups",
                "groupForeignKey": "contact_id",
                "groupColumnName": "group_name",
            },
            sync_mode=SyncMode.SYNC,
            collection=DestinationCollection.MODEL,
        )
        mapped = {
            "id": "user_id",
            "email": "email",
            "first_name": "first_name",
            "last_name": "last_name",
            "ltv": "ltv",
            "purchase_count": "purchase_count",
            "total_spend": "total_spend",
            "last_purchase_at": "last_purchase_at",
        }
        for remote_key, key in mapped.items():
            ensure(
                m.DestinationMapping,
                {"destination": destination, "remote_key": remote_key},
                property=props[key],
            )
        ensure(
            m.DestinationGroupMembership,
            {"destination": destination, "group": high_value},
            remote_key="high_value",
        )
        ensure(
            m.DestinationGroupMembership,
            {"destination": destination, "group": recent},
            remote_key="recent_buyers",
        )

        result.api_key = _demo_api_key(ensure)
    result.created = ensure.created
    return result


def _demo_api_key(ensure: _Ensurer) -> str | None:
    """The "demo" API key with read access to records; returns the key only when created now."""
    try:
        from core.services.api_keys import api_key_create
    except ImportError:  # the API key service is not part of this checkout yet
        return None
    api_key = m.ApiKey.objects.filter(name="demo").first()
    plaintext = None
    if api_key is None:
        api_key, plaintext = api_key_create(name="demo")
        ensure.created[m.ApiKey._meta.label] += 1
    ensure(
        m.ApiKeyPermission, {"api_key": api_key, "topic": ApiTopic.RECORDS}, read=True, write=False
    )
    return plaintext


def demo_load(*, directory: Path | str | None = None, reset: bool = False) -> DemoResult:
    """Write the demo databases (when missing) and ensure the demo configuration. Idempotent."""
    paths = demo_paths(directory)
    wrote = demo_databases_create(paths=paths, reset=reset)
    result = demo_configuration_ensure(paths=paths)
    result.databases_created = wrote
    return result
