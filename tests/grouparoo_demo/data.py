"""Deterministic source data with the schema of Grouparoo's demo, written the way the demo writes it.

Grouparoo's demo (`grouparoo demo`, plugin @grouparoo/demo v0.9) creates six tables from CSV files
with fixed column types (its `data.ts`): users, admins, purchases, accounts, plans and payments,
adds `created_at` (and `updated_at` for the tables that are the root of a model) spread over the
last months, and inserts the rows through each database's Node.js driver. This module generates
its own rows (nothing of the demo's CSV files) from `random.Random(seed)` and a given `now`, with
the edge cases the demo's "junk" option and real data produce: users without purchases or with
only failed ones, a duplicated unique email, invalid emails, empty strings and NULLs, decimal
prices, a purchase in the future, boundary totals (exactly 100 and 800), an orphan purchase, and
so on. Each edge case is named in EDGE below, so the tests can say which one they look at.

Written as the demo's drivers write them:
- PostgreSQL (node-postgres): tables in the schema `demo`; a JavaScript Date into a
  `TIMESTAMP` column is its UTC wall time here (the servers run in UTC).
- MySQL/MariaDB (mysqljs): `DECIMAL` without precision is `DECIMAL(10,0)`, so prices and amounts
  are stored rounded to whole numbers, as the demo's are on MySQL.
- SQLite (node-sqlite3): a Date is bound as its epoch milliseconds, a boolean as 1/0.

`read_tables` reads the tables back through the plain driver: the expected results are computed
from the values as the database stores them (MySQL's rounding included), never from the engine.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

SCHEMA = "demo"  # the demo's PostgreSQL schema

# The demo's column types (data.ts), in the order the demo creates the columns.
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "users": [
        ("id", "INT NOT NULL PRIMARY KEY"), ("account_id", "INT"), ("first_name", "VARCHAR(191)"),
        ("last_name", "VARCHAR(191)"), ("email", "VARCHAR(191)"), ("gender", "VARCHAR(191)"),
        ("ip_address", "VARCHAR(191)"), ("avatar", "VARCHAR(191)"), ("language", "VARCHAR(191)"),
        ("deactivated", "BOOLEAN"), ("created_at", "TIMESTAMP NOT NULL"), ("updated_at", "TIMESTAMP NOT NULL"),
    ],
    "admins": [
        ("id", "INT NOT NULL PRIMARY KEY"), ("first_name", "VARCHAR(191)"), ("last_name", "VARCHAR(191)"),
        ("email", "VARCHAR(191)"), ("permission", "VARCHAR(191)"), ("created_at", "TIMESTAMP NOT NULL"),
        ("updated_at", "TIMESTAMP NOT NULL"),
    ],
    "purchases": [
        ("id", "INT NOT NULL PRIMARY KEY"), ("user_id", "INT NOT NULL"), ("item", "VARCHAR(191)"),
        ("category", "VARCHAR(191)"), ("price", "DECIMAL"), ("state", "VARCHAR(191)"),
        ("created_at", "TIMESTAMP NOT NULL"),
    ],
    "accounts": [
        ("id", "INT NOT NULL PRIMARY KEY"), ("name", "VARCHAR(191)"), ("domain", "VARCHAR(191)"),
        ("plan_id", "INT"), ("created_at", "TIMESTAMP NOT NULL"), ("updated_at", "TIMESTAMP NOT NULL"),
    ],
    "plans": [
        ("id", "INT NOT NULL PRIMARY KEY"), ("name", "VARCHAR(191)"), ("seats", "INT NOT NULL"),
        ("monthly_rate", "INT NOT NULL"),
    ],
    "payments": [
        ("id", "INT NOT NULL PRIMARY KEY"), ("account_id", "INT NOT NULL"), ("amount", "DECIMAL"),
        ("state", "VARCHAR(191)"), ("created_at", "TIMESTAMP NOT NULL"),
    ],
}  # fmt: skip
# The demo indexes the column that ties a table to its model's root (sample_data.ts).
TYPE_COLUMN = {"purchases": "user_id", "payments": "account_id"}

USERS, ACCOUNTS, ADMINS = 60, 12, 8
CATEGORIES = ("Automotive", "Books", "Garden", "Grocery", "Movies", "Shoes", "Tools", "Toys")
LANGUAGES = ("English", "English", "Spanish", "French", "Chinese", "Spanish")
FIRST = (
    "Ada",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jomo",
    "Kenji",
    "Lena",
)
LAST = ("Abara", "Berg", "Costa", "Dahl", "Eze", "Fontaine", "Gupta", "Hale", "Iwu", "Jansen")

# The rows that carry an edge case (ids), so tests and readers can find them.
EDGE = {
    "user_no_purchases": 2,  # sum and count over no rows are 0; most recent is no value
    "user_only_failed": 3,  # every purchase failed: ltv 0, but the unfiltered lists are not empty
    "user_refunded": 4,  # a large successful purchase, refunded in the second phase
    "user_empty_first_name": 5,  # "" is no value (and "" in the calculated full name)
    "user_null_first_name": 6,
    "user_email_original": 7,  # keeps its email; user 41 claims the same one later
    "user_apostrophe": 8,  # O'Brien: the calculated property's {{{ }}} does not escape
    "user_unicode": 9,
    "user_bad_email": 10,  # no "@": invalid, so not in "All Emails"; fixed in the second phase
    "user_null_email": 11,
    "user_null_ip": 12,
    "user_lowercase_spanish": 13,  # "spanish" is not "Spanish" (eq is exact); fixed later
    "user_null_language": 14,
    "user_empty_language": 15,
    "user_null_deactivated": 16,
    "user_future_purchase": 17,  # the most recent purchase is in the future: not "in the last 60 days"
    "user_old_automotive": 18,  # high value, last purchase Automotive but 70 days ago
    "user_decimal_cents": 19,  # 0.10 + 0.20 (+ 0.05) on exact decimals
    "user_ltv_exactly_100": 20,  # gt 100 is false at 100
    "user_same_updated_at": 21,  # shares user 20's updated_at (a high watermark tie)
    "user_duplicate_email": 41,  # user 7's email: a second claim on a unique value
    "user_empty_email": 42,
    "user_without_account": 45,
    "user_recent_automotive": (22, 23, 24),  # high value, last purchase Automotive within 60 days
    "account_empty_name": 5,
    "account_null_name": 6,
    "account_null_plan": 7,
    "account_plan_without_name": 8,
    "account_no_payments": 9,  # account value 0
    "account_only_failed": 10,
    "account_exactly_800": 11,  # gt 800 is false at 800
    "account_no_users": 12,  # no contact email
    "admin_bad_email": 4,
    "admin_null_email": 5,
    "admin_null_permission": 6,
    "admin_deleted": 8,  # removed from the source in the second phase
    "orphan_purchase_user": 999,  # a purchase of no user: matches no record
}


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def generate(*, seed: int = 17, now: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """The six tables as {table: [row dict]}, with Python values (Decimal prices, aware UTC
    datetimes). `now` anchors every date (the demo's dates are relative to the day it runs)."""
    now = now.astimezone(dt.UTC).replace(microsecond=0)
    rng = random.Random(seed)
    plans = _plans()
    accounts = _accounts(rng, now)
    users = _users(rng, now)
    return {
        "users": users,
        "admins": _admins(now),
        "purchases": _purchases(rng, now, users),
        "accounts": accounts,
        "plans": plans,
        "payments": _payments(rng, now),
    }


def _plans() -> list[dict[str, Any]]:
    names = (
        ("Starter", 2, 20),
        ("Base", 10, 50),
        ("Premium", 50, 150),
        ("Enterprise", 1000, 500),
        (None, 1, 0),
    )
    return [
        {"id": i, "name": n, "seats": s, "monthly_rate": r}
        for i, (n, s, r) in enumerate(names, start=1)
    ]


def _root_dates(now: dt.datetime, index: int, count: int) -> tuple[dt.datetime, dt.datetime]:
    """created_at spaced over the last 90 days by id, updated_at a little later (as the demo)."""
    created = now - dt.timedelta(days=90) + dt.timedelta(hours=index * (80 * 24 / count))
    return created, created + dt.timedelta(hours=6)


def _accounts(rng: random.Random, now: dt.datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, ACCOUNTS + 1):
        created, updated = _root_dates(now, i, ACCOUNTS)
        word = ("Aerified", "Alpha", "Andalax", "Bamity", "Biodex", "Cardify", "Daltfresh", "Fintone",
                "Flexidy", "Greenlam", "Hatity", "Konklux")[i - 1]  # fmt: skip
        rows.append(
            {
                "id": i,
                "name": word,
                "domain": f"{word.lower()}.example",
                "plan_id": rng.randint(1, 4),
                "created_at": created,
                "updated_at": updated,
            }
        )
    rows[EDGE["account_empty_name"] - 1]["name"] = ""
    rows[EDGE["account_null_name"] - 1]["name"] = None
    rows[EDGE["account_null_plan"] - 1]["plan_id"] = None
    rows[EDGE["account_plan_without_name"] - 1]["plan_id"] = 5
    return rows


def _users(rng: random.Random, now: dt.datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, USERS + 1):
        created, updated = _root_dates(now, i, USERS)
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        rows.append({
            "id": i, "account_id": 1 if i <= 3 else rng.randint(1, ACCOUNTS - 1),
            "first_name": first, "last_name": last, "email": f"{first[0].lower()}{last.lower()}{i}@demo.example",
            "gender": rng.choice(("Female", "Male", "Non-binary", None)),
            "ip_address": f"10.{i}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "avatar": None if i % 4 == 0 else f"https://avatars.example/{i}.png",
            "language": LANGUAGES[i % len(LANGUAGES)], "deactivated": i % 9 == 0,
            "created_at": created, "updated_at": updated,
        })  # fmt: skip
    by_id = {r["id"]: r for r in rows}
    edits: dict[int, dict[str, Any]] = {
        EDGE["user_empty_first_name"]: {"first_name": ""},
        EDGE["user_null_first_name"]: {"first_name": None},
        EDGE["user_apostrophe"]: {"last_name": "O'Brien", "email": "hugo.obrien@demo.example"},
        EDGE["user_unicode"]: {"first_name": "Zoë", "last_name": "Łukasiewicz"},
        EDGE["user_bad_email"]: {"email": "broken-email.demo.example"},
        EDGE["user_null_email"]: {"email": None},
        EDGE["user_null_ip"]: {"ip_address": None},
        EDGE["user_lowercase_spanish"]: {"language": "spanish"},
        EDGE["user_null_language"]: {"language": None},
        EDGE["user_empty_language"]: {"language": ""},
        EDGE["user_null_deactivated"]: {"deactivated": None},
        EDGE["user_duplicate_email"]: {"email": by_id[EDGE["user_email_original"]]["email"]},
        EDGE["user_empty_email"]: {"email": ""},
        EDGE["user_without_account"]: {"account_id": None},
        EDGE["user_same_updated_at"]: {
            "updated_at": by_id[EDGE["user_ltv_exactly_100"]]["updated_at"]
        },
    }
    for user_id, changes in edits.items():
        by_id[user_id].update(changes)
    return rows


def _admins(now: dt.datetime) -> list[dict[str, Any]]:
    permissions = ("owner", "write", "read", "owner", "read", None, "write", "owner")
    rows = []
    for i, permission in enumerate(permissions, start=1):
        created, updated = _root_dates(now, i, ADMINS)
        first, last = FIRST[(i * 5) % len(FIRST)], LAST[i % len(LAST)]
        rows.append(
            {
                "id": i,
                "first_name": first,
                "last_name": last,
                "email": f"{first.lower()}{i}@company.example",
                "permission": permission,
                "created_at": created,
                "updated_at": updated,
            }
        )
    rows[EDGE["admin_bad_email"] - 1]["email"] = "admin4-company.example"
    rows[EDGE["admin_null_email"] - 1]["email"] = None
    return rows


def _day(rng: random.Random) -> int:
    """Days back for a purchase, never within a day of the 60-day edge of "in the last 60 days"
    (the engine's clock runs a little after the generator's)."""
    while True:
        days = rng.randint(1, 120)
        if abs(days - 60) > 1:
            return days


def _purchases(
    rng: random.Random, now: dt.datetime, users: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    plan: list[tuple[int, int, str, Decimal, str]] = []  # user, days back, category, price, state

    def buy(user: int, days: int, category: str, price: str, state: str = "successful") -> None:
        plan.append((user, days, category, Decimal(price), state))

    for user in users:
        uid = user["id"]
        if uid in (EDGE["user_no_purchases"], *range(17, 25), 3, 4):
            continue
        for _ in range(rng.choice((0, 1, 1, 2, 3, 4))):
            state = "failed" if rng.random() < 0.12 else "successful"
            buy(
                uid, _day(rng), rng.choice(CATEGORIES), f"{rng.randint(500, 9000) / 100:.2f}", state
            )
    buy(3, 10, "Books", "45.50", "failed")
    buy(3, 20, "Toys", "150.00", "failed")
    buy(4, 30, "Tools", "180.25")
    buy(4, 40, "Books", "12.00")
    buy(17, 40, "Automotive", "250.00")
    buy(17, -3, "Automotive", "20.00")  # in the future
    buy(18, 90, "Garden", "80.00")
    buy(18, 70, "Automotive", "120.00")
    buy(19, 30, "Grocery", "0.10")
    buy(19, 20, "Grocery", "0.20")
    buy(19, 10, "Grocery", "0.05")
    buy(20, 50, "Shoes", "60.00")
    buy(20, 5, "Movies", "40.00")
    buy(20, 4, "Movies", "99.99", "failed")
    buy(21, 15, "Toys", "33.33")
    for uid in EDGE["user_recent_automotive"]:
        buy(uid, 100, "Tools", "70.00")
        buy(uid, 45, "Books", f"{30 + uid}.50")
        buy(uid, 12, "Automotive", "55.55")
    buy(22, 3, "Toys", "5.00", "failed")  # a later failed purchase does not change "last purchase"
    buy(EDGE["orphan_purchase_user"], 5, None, "10.00")  # type: ignore[arg-type]
    rows = []
    for pid, (uid, days, category, price, state) in enumerate(plan, start=1):
        created = now - dt.timedelta(days=days, minutes=pid)  # distinct times: no ties to order
        rows.append(
            {
                "id": pid,
                "user_id": uid,
                "item": f"item-{rng.randint(1, 99)}",
                "category": category,
                "price": price,
                "state": state,
                "created_at": created,
            }
        )
    return rows


def _payments(rng: random.Random, now: dt.datetime) -> list[dict[str, Any]]:
    plan: list[tuple[int, Decimal, str]] = []
    for account in range(1, ACCOUNTS + 1):
        if account in (9, 10, 11, 12):
            continue
        for _ in range(rng.randint(1, 5)):
            state = "failed" if rng.random() < 0.15 else "successful"
            plan.append((account, Decimal(rng.randint(2000, 40000)) / 100, state))
    plan += [(10, Decimal("500.00"), "failed"), (10, Decimal("900.00"), "failed")]
    plan += [(11, Decimal("450.25"), "successful"), (11, Decimal("349.75"), "successful")]
    plan += [(11, Decimal("10.00"), "failed"), (12, Decimal("300.00"), "successful")]
    return [
        {"id": pid, "account_id": account, "amount": amount, "state": state,
         "created_at": now - dt.timedelta(days=pid % 80 + 1, minutes=pid)}
        for pid, (account, amount, state) in enumerate(plan, start=1)
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------
# The second phase: what changes in the source between two syncs.


def second_phase(
    tables: dict[str, list[dict[str, Any]]],
    *,
    now: dt.datetime,
    people: bool = True,
    purchases: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """The tables after a day of activity. `people`: user 10 fixes their email, user 13's
    language is corrected, admin 8 is deleted. `purchases`: user 4's large purchase is
    refunded, user 2 buys for the first time. Every user whose data changed gets a new
    `updated_at`, as the application would."""
    now = now.astimezone(dt.UTC).replace(microsecond=0)
    out = {name: [dict(row) for row in rows] for name, rows in tables.items()}
    users = {r["id"]: r for r in out["users"]}
    touched = []
    if purchases:
        refund = next(
            p
            for p in out["purchases"]
            if p["user_id"] == EDGE["user_refunded"] and p["category"] == "Tools"
        )
        refund["state"] = "refunded"
        out["purchases"].append(
            {
                "id": max(p["id"] for p in out["purchases"]) + 1,
                "user_id": EDGE["user_no_purchases"],
                "item": "item-7",
                "category": "Automotive",
                "price": Decimal("130.40"),
                "state": "successful",
                "created_at": now - dt.timedelta(hours=2),
            }
        )
        touched += [EDGE["user_refunded"], EDGE["user_no_purchases"]]
    if people:
        users[EDGE["user_bad_email"]]["email"] = "fixed10@demo.example"
        users[EDGE["user_lowercase_spanish"]]["language"] = "Spanish"
        touched += [EDGE["user_bad_email"], EDGE["user_lowercase_spanish"]]
        out["admins"] = [a for a in out["admins"] if a["id"] != EDGE["admin_deleted"]]
    for uid in touched:
        users[uid]["updated_at"] = now - dt.timedelta(minutes=30)
    return out


# --------------------------------------------------------------------------------------------
# Writing and reading, per database.


def _create_sql(table: str, quote: Callable[[str], str]) -> list[str]:
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS[table])
    statements = [
        f"DROP TABLE IF EXISTS {quote(table)}",
        f"CREATE TABLE {quote(table)} ({columns})",
    ]
    if table in TYPE_COLUMN:
        col = TYPE_COLUMN[table]
        statements.append(f"CREATE INDEX {quote(table + '_' + col)} ON {quote(table)} ({col})")
    return statements


def _naive_utc(value: Any) -> Any:
    return (
        value.astimezone(dt.UTC).replace(tzinfo=None) if isinstance(value, dt.datetime) else value
    )


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _ms(value)  # node-sqlite3 binds a Date as its epoch milliseconds
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)  # a JavaScript number
    return value


def write_sqlite(path: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """Create the demo's tables in the SQLite file `path` (replacing them) and insert the rows."""
    with sqlite3.connect(path) as conn:
        for table, rows in tables.items():
            for statement in _create_sql(table, lambda n: f"`{n}`"):
                conn.execute(statement)
            names = [c for c, _ in COLUMNS[table]]
            marks = ", ".join("?" for _ in names)
            conn.executemany(
                f"INSERT INTO `{table}` ({', '.join(names)}) VALUES ({marks})",
                [[_sqlite_value(r[c]) for c in names] for r in rows],
            )
    conn.close()


def write_postgres(
    conninfo: str, tables: dict[str, list[dict[str, Any]]], *, schema: str = SCHEMA
) -> None:
    """Create the demo's tables in `schema` of the PostgreSQL database `conninfo`."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for table, rows in tables.items():
            for statement in _create_sql(
                table, lambda n, t=table: f'{schema}."{n}"' if n == t else f'"{n}"'
            ):
                conn.execute(statement)
            names = [c for c, _ in COLUMNS[table]]
            marks = ", ".join("%s" for _ in names)
            with conn.cursor() as cur:
                cur.executemany(
                    f'INSERT INTO {schema}."{table}" ({", ".join(names)}) VALUES ({marks})',
                    [[_naive_utc(r[c]) for c in names] for r in rows],
                )


def write_mysql(connect: Callable[[], Any], tables: dict[str, list[dict[str, Any]]]) -> None:
    """Create the demo's tables through `connect()` (a PyMySQL connection to the database, with
    the session in UTC) and insert the rows."""
    conn = connect()
    try:
        with conn.cursor() as cur:
            for table, rows in tables.items():
                for statement in _create_sql(table, lambda n: f"`{n}`"):
                    cur.execute(statement)
                names = [c for c, _ in COLUMNS[table]]
                marks = ", ".join("%s" for _ in names)
                cur.executemany(
                    f"INSERT INTO `{table}` ({', '.join(names)}) VALUES ({marks})",
                    [[_naive_utc(r[c]) for c in names] for r in rows],
                )
        conn.commit()
    finally:
        conn.close()


def read_tables(
    fetch: Callable[[str], tuple[list[str], list[tuple]]], tables: Iterable[str] = tuple(COLUMNS)
) -> dict[str, list[dict[str, Any]]]:
    """The six tables as the database stores them, through `fetch(table) -> (columns, rows)`
    (a plain driver query `SELECT * FROM <table>`): the input of the expected results."""
    out = {}
    for table in tables:
        names, rows = fetch(table)
        out[table] = [dict(zip(names, row, strict=True)) for row in rows]
    return out


# Grouparoo's app-example-config loads users and purchases into data/source.sqlite with its own
# column types (its data/import.js), every CSV value written as a double-quoted string literal:
# SQLite keeps "false" and "2021-01-18 16:19:00.005" as text, "68.13" in a NUMERIC column as a
# number, and an empty CSV cell as "".
APP_EXAMPLE_COLUMNS = {
    "users": (
        '"id" INTEGER PRIMARY KEY NOT NULL, "first_name" TEXT, "last_name" TEXT, "email" TEXT, '
        '"gender" TEXT, "ip_address" TEXT, "avatar" TEXT, "language" TEXT, "deactivated" BOOLEAN, '
        '"created_at" DATETIME, "updated_at" DATETIME'
    ),
    "purchases": (
        '"id" INTEGER PRIMARY KEY NOT NULL, "user_id" INTEGER, "item" INTEGER, "category" TEXT, '
        '"price" NUMERIC, "state" TEXT, "created_at" TEXT'
    ),
}


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return (
            value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.")
            + f"{value.microsecond // 1000:03d}"
        )
    return str(value)


def write_app_example_sqlite(path: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """The users and purchases of `tables` in `path`, as app-example-config's import writes its
    CSV files (no account_id column; item numbers; every value text until SQLite converts it)."""
    with sqlite3.connect(path) as conn:
        for table, ddl in APP_EXAMPLE_COLUMNS.items():
            names = [part.split('"')[1] for part in ddl.split(", ")]
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")
            for row in tables[table]:
                values = {**row, "item": str(row.get("item", "")).removeprefix("item-")}
                conn.execute(
                    f"INSERT INTO {table} ({','.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                    [_csv_text(values[n]) for n in names],
                )
    conn.close()
