"""Cases for the connector contract suites: every built-in source and destination built over
the same shop data (tests/connectors/conftest.py), each exposing what the contract tests need.

A source case holds two connectors of its type, one reading users and one reading purchases,
and knows how to spell three properties for its flavour (table-like: column + aggregation
method; query: SQL). A destination case holds a connector writing people and reads back what
the destination now holds as {key: (properties, groups)}, normalised so that every
destination compares alike (values as text, missing and empty as None).
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors import registry
from connectors.base import DestinationConnector, PropertySpec, SourceConnector
from tests.connectors.conftest import PURCHASES, USERS, SqlWorld, make_world

SOURCE_TYPES = (
    "sqlite-table", "sqlite-query",
    "postgres-table", "postgres-query",
    "mysql-table", "mysql-query",
    "duckdb-table", "duckdb-query",
    "csv-file", "csv-url",
)
DESTINATION_TYPES = ("sqlite-export", "postgres-export", "mysql-export", "csv-export", "webhook-export")
# Built-ins the contract cannot describe, each with suites of its own: the calculated-property
# source has no rows of its own (it reads the records: tests/connectors/test_calculated.py), and
# the logger keeps a log, not a store of records (tests/connectors/test_logger.py).
OUTSIDE_CONTRACT_SOURCE_TYPES = ("calculated-property-import",)
OUTSIDE_CONTRACT_DESTINATION_TYPES = ("logger-export-records",)
# The example plugin (tests/plugin_example), installed for these cases: plugins meet the same contract.
PLUGIN_SOURCE_TYPES = ("jsonl-file",)
PLUGIN_DESTINATION_TYPES = ("jsonl-export",)
WEBHOOK_SECRET = "whsec-contract-0123456789"

USER_COLUMNS = ("id", "email", "first_name", "ltv", "vip", "updated_at", "version")
PURCHASE_COLUMNS = ("id", "user_id", "amount", "category", "purchased_at")


@dataclass
class SourceCase:
    type: str
    users: SourceConnector
    purchases: SourceConnector
    ts: Callable[[str], Any]
    query: bool
    make: Callable[[dict[str, Any]], SourceConnector]  # a users source with other options
    missing: dict[str, Any] = field(default_factory=dict)  # options naming a relation "nope" that does not exist
    closers: list[Callable[[], None]] = field(default_factory=list)

    def prop(self, key: str, method: str, column: str, *, sort: str | None = None,
             filters: tuple[dict[str, Any], ...] = ()) -> PropertySpec:
        """A property of the purchases source, aggregated per user_id, in this flavour."""
        if not self.query:
            options = {"column": column, "aggregationMethod": method}
            if sort:
                options["sortColumn"] = sort
            return PropertySpec(key, options, filters)
        assert not filters, "query properties take their filters in the query"
        sql = {
            "count": f"SELECT COUNT({column}) FROM purchases WHERE user_id = {{{{{{ userId }}}}}}",
            "sum": f"SELECT SUM({column}) FROM purchases WHERE user_id = {{{{{{ userId }}}}}}",
            "most_recent": f"SELECT {column} FROM purchases WHERE user_id = {{{{{{ userId }}}}}}"
                           f" AND {sort} IS NOT NULL ORDER BY {sort} DESC",
        }[method]
        return PropertySpec(key, {"query": sql})

    def close(self) -> None:
        self.users.close()
        self.purchases.close()
        for closer in self.closers:
            closer()


def write_csv(path: Path, columns: tuple[str, ...], rows: list[tuple]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else ("true" if v is True else "false" if v is False else v) for v in row])
    return path


def write_jsonl(path: Path, columns: tuple[str, ...], rows: list[tuple]) -> Path:
    path.write_text("".join(json.dumps(dict(zip(columns, row, strict=True))) + "\n" for row in rows))
    return path


def make_source_case(type_: str, request: pytest.FixtureRequest, tmp_path: Path) -> SourceCase:
    if type_ == "jsonl-file":
        request.getfixturevalue("example_plugin")
        write_jsonl(tmp_path / "users.jsonl", USER_COLUMNS, USERS)
        write_jsonl(tmp_path / "purchases.jsonl", PURCHASE_COLUMNS, PURCHASES)
        cls = registry.get_source("jsonl-file")
        app = {"directory": str(tmp_path)}
        return SourceCase(
            type_, cls(app, {"file": "users.jsonl"}), cls(app, {"file": "purchases.jsonl"}),
            ts=lambda text: text, query=False, make=lambda options: cls(app, {"file": "users.jsonl", **options}),
            missing={"file": "nope.jsonl"},
        )
    if type_ == "csv-file":
        users = write_csv(tmp_path / "users.csv", USER_COLUMNS, USERS)
        purchases = write_csv(tmp_path / "purchases.csv", PURCHASE_COLUMNS, PURCHASES)
        cls = registry.get_source("csv-file")
        return SourceCase(
            type_, cls({}, {"path": str(users)}), cls({}, {"path": str(purchases)}),
            ts=lambda text: text.replace(" ", "T"), query=False,
            make=lambda options: cls({}, {"path": str(users), **options}),
            missing={"path": str(tmp_path / "nope.csv")},
        )
    if type_ == "csv-url":
        # Downloaded from a local server (loopback, allowed as for webhooks), cached per URL.
        server = request.getfixturevalue("httpserver")
        django_settings = request.getfixturevalue("settings")
        django_settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
        django_settings.MEDIA_ROOT = str(tmp_path / "media")
        for name, columns, rows in (("users", USER_COLUMNS, USERS), ("purchases", PURCHASE_COLUMNS, PURCHASES)):
            text = write_csv(tmp_path / f"{name}.csv", columns, rows).read_text()
            server.expect_request(f"/{tmp_path.name}/{name}.csv").respond_with_data(text, content_type="text/csv")
        server.expect_request(f"/{tmp_path.name}/nope.csv").respond_with_data("not found", status=404)
        urls = {name: server.url_for(f"/{tmp_path.name}/{name}.csv") for name in ("users", "purchases", "nope")}
        cls = registry.get_source("csv-url")
        return SourceCase(
            type_, cls({}, {"url": urls["users"]}), cls({}, {"url": urls["purchases"]}),
            ts=lambda text: text.replace(" ", "T"), query=False,
            make=lambda options: cls({}, {"url": urls["users"], **options}),
            missing={"url": urls["nope"]},
        )
    kind, flavour = type_.split("-")
    world: SqlWorld = make_world(kind, request, tmp_path)

    def make(options: dict[str, Any], relation: str = "users") -> SourceConnector:
        if flavour == "table":
            return world.source("table", **{"table": relation, **options})
        return world.source("query", **{"query": f"SELECT * FROM {relation}", **options})

    missing = {"query": "SELECT * FROM nope"} if flavour == "query" else {"table": "nope"}
    case = SourceCase(type_, make({}), make({}, "purchases"), ts=world.ts, query=flavour == "query", make=make,
                      missing=missing)
    if kind != "mysql":
        case.closers.append(world.close)
    return case


# --- destinations -------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A value as every destination compares it: text, None for missing or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class DestinationCase:
    type: str
    connector: DestinationConnector
    state: Callable[[], dict[str, tuple[dict[str, str | None], set[str]]]]
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        self.connector.close()
        for closer in self.closers:
            closer()


class WebhookReceiver:
    """A receiver as docs/connectors.md describes one: checks the signature, then applies each
    record's operation to its own store keyed by the record's "id" property (creates upsert,
    updates change only records it has, deletes remove; a record's groups lose the old_groups
    it no longer has, and keep groups it got elsewhere)."""

    def __init__(self, secret: str):
        self.secret = secret
        self.store: dict[str, tuple[dict[str, Any], set[str]]] = {}
        self.requests: list[dict[str, Any]] = []
        self.bad_signatures = 0

    def handle(self, request: Any) -> Any:
        from werkzeug.wrappers import Response

        body = request.get_data()
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Grouparoo-Signature", ""), expected):
            self.bad_signatures += 1
            return Response("bad signature", status=401)
        document = json.loads(body)
        self.requests.append(document)
        for record in document.get("records", []):
            props = record["properties"]
            key = _text(props.get("id"))
            old_key = _text(record["old_properties"].get("id"))
            if old_key is not None and old_key != key and old_key in self.store:
                moved = self.store.pop(old_key)
                self.store.setdefault(key, moved)
            if record["operation"] == "delete":
                self.store.pop(key, None)
            elif record["operation"] == "create" or key in self.store:
                # Its groups lose only the ones last delivered that it no longer has.
                have = self.store.get(key, ({}, set()))[1]
                groups = (have - (set(record["old_groups"]) - set(record["groups"]))) | set(record["groups"])
                self.store[key] = ({k: v for k, v in props.items() if k != "id"}, groups)
        return Response(json.dumps({"ok": True}), status=200, content_type="application/json")

    def state(self) -> dict[str, tuple[dict[str, str | None], set[str]]]:
        return {k: ({c: _text(v) for c, v in props.items()}, set(groups)) for k, (props, groups) in self.store.items()}


def _sql_state(world: SqlWorld) -> Callable[[], dict[str, tuple[dict[str, str | None], set[str]]]]:
    def state() -> dict[str, tuple[dict[str, str | None], set[str]]]:
        out: dict[str, tuple[dict[str, str | None], set[str]]] = {}
        for id_, email, name, score in world.run("SELECT id, email, name, score FROM people"):
            props = {"email": _text(email), "name": _text(name), "score": _text(score)}
            out[str(id_)] = ({k: v for k, v in props.items() if v is not None}, set())
        for person, group in world.run("SELECT person_id, group_name FROM people_groups"):
            if str(person) in out:
                out[str(person)][1].add(group)
        return out

    return state


def make_destination_case(type_: str, request: pytest.FixtureRequest, tmp_path: Path) -> DestinationCase:
    if type_ == "jsonl-export":
        request.getfixturevalue("example_plugin")
        path = tmp_path / "people.jsonl"
        connector = registry.get_destination("jsonl-export")({"directory": str(tmp_path)}, {"file": path.name, "keyField": "id"})

        def jsonl_state() -> dict[str, tuple[dict[str, str | None], set[str]]]:
            records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
            return {
                _text(r.pop("id")): (
                    {k: _text(v) for k, v in r.items() if k != "groups" and _text(v) is not None}, set(r["groups"])
                )
                for r in records
            }

        return DestinationCase(type_, connector, jsonl_state)
    if type_ == "csv-export":
        path = tmp_path / "people.csv"
        connector = registry.get_destination("csv-export")({}, {"path": str(path), "primaryKey": "id"})

        def csv_state() -> dict[str, tuple[dict[str, str | None], set[str]]]:
            if not path.exists():
                return {}
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            out = {}
            for row in rows:
                groups = {g for g in (row.pop("groups", "") or "").split(";") if g}
                key = row.pop("id")
                out[key] = ({k: _text(v) for k, v in row.items() if _text(v) is not None}, groups)
            return out

        return DestinationCase(type_, connector, csv_state)
    if type_ == "webhook-export":
        server = request.getfixturevalue("httpserver")
        request.getfixturevalue("settings").GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
        receiver = WebhookReceiver(WEBHOOK_SECRET)
        server.expect_request("/hook", method="POST").respond_with_handler(receiver.handle)
        app = {"url": server.url_for("/hook"), "secret": WEBHOOK_SECRET, "batchSize": 2}
        connector = registry.get_destination("webhook-export")(app, {})

        def webhook_state() -> dict[str, tuple[dict[str, str | None], set[str]]]:
            assert receiver.bad_signatures == 0
            return {k: ({c: v for c, v in p.items() if v is not None}, g) for k, (p, g) in receiver.state().items()}

        return DestinationCase(type_, connector, webhook_state)
    kind = type_.split("-")[0]
    world = make_world(kind, request, tmp_path)
    connector = world.destination(
        table="people", primaryKey="id", groupsTable="people_groups",
        groupForeignKey="person_id", groupColumnName="group_name",
    )
    case = DestinationCase(type_, connector, _sql_state(world))
    if kind != "mysql":
        case.closers.append(world.close)
    return case
