"""What Grouparoo 0.9 makes of a config directory and its source tables: records, groups and
destination rows, computed in plain Python, independently of the engine under test.

This is a reading of Grouparoo's own code, written afresh:

- Values (core `RecordPropertyOps.buildRawValue`): null and "" are no value; a float is
  JavaScript's `parseFloat`, an integer `parseInt(v, 10)`, a boolean "1"/"true"/"0"/"false" in
  any case, an email anything matching `^\\S+@\\S+\\.\\S+$`, a date `new Date(v)` (a number is
  epoch milliseconds), a phone number libphonenumber's reading of it in the setting
  `records-default-country-code` (US by default), kept when valid in its international format
  (libphonenumber-js separates the groups with spaces: "+1 650 253 0003"). A value that does
  not parse is no value, and its record is invalid.
- A unique value already held by another record is no value on the later record ("Duplicate").
  Grouparoo's outcome for two new records claiming one value in one batch depended on its
  batching; here, as in this project's documented identity policy, the record imported first
  (schedule column, then key) keeps it.
- Table sources (app-templates `getPropertyValues`): an exact property is the row's column; a
  secondary source's rows are those whose mapped column equals the record's mapped property,
  after the property's filters; `sum` and `count` over no rows are 0, `average` is
  COALESCE(AVG, 0), `min`/`max` over none no value, `most recent value` / `least recent value`
  the row first by the sort column descending / ascending (an array property gets every row's
  value in that order, its filters applied). Sums are exact, of the decimals the database
  holds (PostgreSQL's and MySQL's DECIMAL are exact; SQLite's REAL values are summed as the
  decimals they print as), so 0.10 + 0.20 + 0.05 is 0.35.
- Query properties run their query with `{{{ key }}}` replaced by the record's value; the value
  is the first column of the first row (no row: no value).
- Calculated properties (`() => "{{{ a }}} {{{ b }}}"`) render Mustache with the record's values
  (no value renders as "").
- Group rules (core `Group._buildGroupMemberQueryParts`): `exists` is `!= null`, `notExists`
  `= null`, `relative_gt` N units is "after now - N and not after now", `relative_lt` "before
  now + N and not before now". A rule holds when one of the property's rows passes it, with SQL's
  NULL logic (so `ne` never holds for a record without a value); on an array `ne` holds when no
  row equals the match (also for an empty array). `all` needs every rule, `any` one; no rules,
  no members.
- Destinations: collection `model` exports every record, `group` the group's members, `none`
  nothing; a row carries each mapped property (arrays whole, as the logger exports them) and the
  names of the mapped groups the record is in.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

Query = Callable[[str], list[tuple]]
EMAIL = re.compile(r"^\S+@\S+\.\S+$")
VARIABLE = re.compile(r"\{\{\{?\s*([^{}]+?)\s*\}?\}\}")
RELATIVE_UNITS = {"days": 1, "weeks": 7}
AGGREGATIONS_ON_ROWS = ("exact", "most recent value", "least recent value")
EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass
class Expected:
    """records[model][key] = {property id: value (None) or list (arrays)}; invalid[model] = keys
    of records with a value that did not parse or a duplicate; groups[group id] = member keys;
    exports[destination id][key] = {"properties": {field: value}, "groups": set of names}."""

    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    invalid: dict[str, set[str]] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)
    exports: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ config


def load_config(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Config objects by lower-cased class, from every .json file under `directory`."""
    objects: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(directory.rglob("*.json")):
        content = json.loads(path.read_text())
        for obj in content if isinstance(content, list) else [content]:
            objects.setdefault(obj["class"].lower(), []).append(obj)
    return objects


# ------------------------------------------------------------------------------------ values


class Invalid(Exception):
    """A value that does not parse for its property's type."""


def _js_number_prefix(text: str, *, integer: bool) -> float | int:
    pattern = (
        r"\s*[+-]?\d+" if integer else r"\s*[+-]?(\d+\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?|Infinity)"
    )
    match = re.match(pattern, text, re.IGNORECASE)
    if not match:
        raise Invalid(text)
    return int(match.group(0)) if integer else float(match.group(0))


def js_string(value: Any) -> str:
    """JavaScript's `value.toString()` of a driver value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


def to_datetime(value: Any) -> dt.datetime:
    """`new Date(value)`: naive datetimes are UTC (the servers run in UTC), numbers epoch ms."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value) / 1000, tz=dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(value) from None
    return to_datetime(parsed)


def phone_number(text: str, country: str) -> str:
    """formatPhoneNumber: libphonenumber parses `text` (in `country` when it has no
    international prefix); a valid number is kept in its international format."""
    import phonenumbers

    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        raise Invalid(text) from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid(text)
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return formatted.replace("-", " ")


def coerce(value: Any, kind: str, *, country: str = "US") -> Any:
    """buildRawValue then getValue: the typed value Grouparoo keeps, None for no value."""
    if value is None or value == "":
        return None
    if kind == "phoneNumber":
        return phone_number(js_string(value), country)
    if kind == "float":
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            return float(value)
        return float(_js_number_prefix(js_string(value), integer=False))
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return int(_js_number_prefix(js_string(value), integer=True))
    if kind == "boolean":
        text = js_string(value).lower()
        if text in ("1", "true", "0", "false"):
            return text in ("1", "true")
        raise Invalid(value)
    if kind == "date":
        return to_datetime(value)
    text = js_string(value)
    if kind == "email" and not EMAIL.match(text):
        raise Invalid(value)
    return text


# ------------------------------------------------------------------------------------ records


@dataclass
class _Model:
    id: str
    properties: list[dict[str, Any]]
    primary: dict[str, Any]
    key_property: str
    key_column: str


def _models(config: dict[str, list[dict[str, Any]]]) -> list[_Model]:
    sources = {s["id"]: s for s in config.get("source", [])}
    props = config.get("property", [])
    out = []
    for model in config.get("model", []):
        own = [p for p in props if sources[p["sourceId"]]["modelId"] == model["id"]]
        for source in sources.values():
            mapping = source.get("mapping") or {}
            if source["modelId"] != model["id"] or not mapping:
                continue
            column, prop_id = next(iter(mapping.items()))
            if any(p["id"] == prop_id and p["sourceId"] == source["id"] for p in own):
                out.append(_Model(model["id"], own, source, prop_id, column))
    return out


def _passes(row: Mapping[str, Any], filters: list[dict[str, Any]]) -> bool:
    for f in filters:
        value, match = row.get(f["key"]), f.get("match")
        if f["op"] == "eq" and not (value is not None and js_string(value) == str(match)):
            return False
        if f["op"] == "ne" and not (value is not None and js_string(value) != str(match)):
            return False
        if f["op"] not in ("eq", "ne"):
            raise NotImplementedError(f"filter op {f['op']}")
    return True


def _aggregate(prop: dict[str, Any], rows: list[Mapping[str, Any]]) -> Any:
    options = prop["options"]
    method, column = options.get("aggregationMethod", "exact"), options["column"]
    if method in AGGREGATIONS_ON_ROWS:
        if method != "exact" or options.get("sortColumn"):
            sort = options["sortColumn"]
            rows = sorted(
                rows,
                key=lambda r: to_datetime(r[sort]) if r[sort] is not None else EARLIEST,
                reverse=method == "most recent value",
            )
        values = [r[column] for r in rows]
        return values if prop.get("isArray") else (values[0] if values else None)
    present = [r[column] for r in rows if r[column] is not None]
    if method == "count":
        return len(present)
    if method == "sum":
        return sum((Decimal(js_string(v)) for v in present), Decimal(0))
    if method == "average":
        return sum(Decimal(js_string(v)) for v in present) / len(present) if present else 0
    if method in ("min", "max"):
        return (min if method == "min" else max)(present) if present else None
    raise NotImplementedError(method)


def _render(template: str, values_by_key: Mapping[str, Any]) -> str:
    def one(match: re.Match) -> str:
        value = values_by_key.get(match.group(1))
        if isinstance(value, list):
            return ", ".join("" if v is None else js_string(v) for v in value)
        return "" if value is None else js_string(value)

    return VARIABLE.sub(one, template)


def _calculated(template: str, values_by_key: Mapping[str, Any]) -> str:
    body = re.fullmatch(r'\s*\(\)\s*=>\s*"(.*)"\s*', template, re.DOTALL)
    if not body:
        raise NotImplementedError(f"customFunction {template!r}")
    return _render(body.group(1), values_by_key)


def _typed(prop: dict[str, Any], raw: Any, country: str) -> tuple[Any, bool]:
    """(typed value or list, invalid?) for a property's raw value(s)."""
    if prop.get("isArray"):
        out, bad = [], False
        for value in raw or []:
            try:
                out.append(coerce(value, prop["type"], country=country))
            except Invalid:
                out.append(None)
                bad = True
        return out, bad
    try:
        return coerce(raw, prop["type"], country=country), False
    except Invalid:
        return None, True


def _record_values(
    model: _Model, row: Mapping[str, Any], ctx: _Context
) -> tuple[dict[str, Any], bool]:
    values: dict[str, Any] = {}
    invalid = False
    by_source = {p["id"]: ctx.sources[p["sourceId"]] for p in model.properties}
    order = sorted(
        model.properties,
        key=lambda p: (
            p["sourceId"] != model.primary["id"],
            by_source[p["id"]]["type"].startswith("calculated"),
        ),
    )
    keys = {p["key"]: p["id"] for p in model.properties}
    for prop in order:
        source = by_source[prop["id"]]
        if source["id"] == model.primary["id"]:
            raw = _aggregate(prop, [row])
        elif "customFunction" in prop["options"]:
            raw = _calculated(
                prop["options"]["customFunction"], {k: values.get(i) for k, i in keys.items()}
            )
        elif "query" in prop["options"]:
            sql = _render(prop["options"]["query"], {k: values.get(i) for k, i in keys.items()})
            rows = ctx.query(sql)
            raw = [r[0] for r in rows] if prop.get("isArray") else (rows[0][0] if rows else None)
        else:
            column, mapped = next(iter(source["mapping"].items()))
            own = values.get(mapped)
            rows = (
                []
                if own is None
                else [
                    r
                    for r in ctx.tables[source["options"]["table"]]
                    if r[column] is not None
                    and js_string(r[column]) == js_string(own)
                    and _passes(r, prop["filters"])
                ]
            )
            raw = _aggregate(prop, rows)
        values[prop["id"]], bad = _typed(prop, raw, ctx.country)
        invalid = invalid or bad
    return values, invalid


@dataclass
class _Context:
    config: dict[str, list[dict[str, Any]]]
    tables: Mapping[str, list[dict[str, Any]]]
    query: Query
    now: dt.datetime

    @property
    def sources(self) -> dict[str, dict[str, Any]]:
        return {s["id"]: s for s in self.config.get("source", [])}

    @property
    def country(self) -> str:
        """The setting core.records-default-country-code (US when the files leave it out)."""
        for setting in self.config.get("setting", []):
            if (setting.get("pluginName") or setting.get("plugin")) == "core" and setting[
                "key"
            ] == "records-default-country-code":
                return str(setting["value"])
        return "US"


def _import_order(model: _Model, ctx: _Context) -> list[Mapping[str, Any]]:
    schedule = next(
        (s for s in ctx.config.get("schedule", []) if s["sourceId"] == model.primary["id"]), None
    )
    column = (schedule or {}).get("options", {}).get("column")
    rows = [
        r for r in ctx.tables[model.primary["options"]["table"]] if r[model.key_column] is not None
    ]
    if column:
        return sorted(rows, key=lambda r: (to_datetime(r[column]), r[model.key_column]))
    return sorted(rows, key=lambda r: r[model.key_column])


def _records(model: _Model, ctx: _Context, expected: Expected) -> None:
    records: dict[str, dict[str, Any]] = {}
    invalid: set[str] = set()
    held: dict[tuple[str, Any], str] = {}
    uniques = [p["id"] for p in model.properties if p.get("unique")]
    for row in _import_order(model, ctx):
        values, bad = _record_values(model, row, ctx)
        key = js_string(values[model.key_property])
        for prop_id in uniques:
            value = values[prop_id]
            if value is None:
                continue
            if held.setdefault((prop_id, value), key) != key:
                values[prop_id], bad = None, True  # a duplicate: the first record keeps it
        records[key] = values
        if bad:
            invalid.add(key)
    expected.records[model.id] = records
    expected.invalid[model.id] = invalid


# ------------------------------------------------------------------------------------ groups


def _match_value(prop: dict[str, Any], match: Any) -> Any:
    if str(match).lower() == "null":
        return None
    if prop["type"] in ("float", "integer"):
        return float(match)
    if prop["type"] == "boolean":
        return str(match).lower() in ("1", "true")
    if prop["type"] == "date":
        return to_datetime(int(match)) if str(match).lstrip("-").isdigit() else to_datetime(match)
    return str(match)


def _compare(op: str, value: Any, match: Any) -> bool:
    if match is None:  # "= NULL" / "!= NULL" as Sequelize writes them: IS NULL / IS NOT NULL
        return value is None if op == "eq" else value is not None
    if value is None:
        return False
    return {
        "eq": value == match, "ne": value != match, "gt": value > match, "gte": value >= match,
        "lt": value < match, "lte": value <= match,
    }[op]  # fmt: skip


def _rule_holds(rule: dict[str, Any], prop: dict[str, Any], value: Any, now: dt.datetime) -> bool:
    op = rule.get("op") or rule["operation"]["op"]
    rows = (value or [None]) if prop.get("isArray") else [value]
    if op in ("exists", "notExists"):
        return any(_compare("ne" if op == "exists" else "eq", v, None) for v in rows)
    if op.startswith("relative_"):
        number = int(rule["relativeMatchNumber"])
        delta = dt.timedelta(days=number * RELATIVE_UNITS[rule["relativeMatchUnit"]])
        if op == "relative_gt":
            return any(v is not None and now - delta < v <= now for v in rows)
        return any(v is not None and now <= v < now + delta for v in rows)
    match = _match_value(prop, rule["match"])
    if prop.get("isArray") and op == "ne":
        return not any(v is not None and v == match for v in rows)
    return any(_compare(op, v, match) for v in rows)


def _groups(ctx: _Context, expected: Expected) -> None:
    props = {p["id"]: p for p in ctx.config.get("property", [])}
    by_key = {(p.get("key")): p for p in props.values()}
    for group in ctx.config.get("group", []):
        rules = group.get("rules") or []
        members = set()
        for key, values in expected.records[group["modelId"]].items():
            results = []
            for rule in rules:
                prop = props.get(rule.get("propertyId")) or by_key[rule.get("key")]
                results.append(_rule_holds(rule, prop, values[prop["id"]], ctx.now))
            if rules and (all(results) if group.get("matchType", "all") == "all" else any(results)):
                members.add(key)
        expected.groups[group["id"]] = members


# ------------------------------------------------------------------------------------ exports


def _exports(ctx: _Context, expected: Expected) -> None:
    names = {g["id"]: g for g in ctx.config.get("group", [])}
    for destination in ctx.config.get("destination", []):
        records = expected.records[destination["modelId"]]
        collection = destination.get("collection", "none")
        if collection == "model":
            keys = set(records)
        elif collection == "group":
            keys = expected.groups[destination["groupId"]]
        else:
            keys = set()
        memberships = destination.get("destinationGroupMemberships") or {}
        rows = {}
        for key in keys:
            values = records[key]
            rows[key] = {
                "properties": {
                    dest: values[prop_id]
                    for dest, prop_id in (destination.get("mapping") or {}).items()
                },
                "groups": {
                    name
                    for name, gid in memberships.items()
                    if gid in names and key in expected.groups[gid]
                },
            }
        expected.exports[destination["id"]] = rows


def compute(
    config_dir: Path, tables: Mapping[str, list[dict[str, Any]]], *, query: Query, now: dt.datetime
) -> Expected:
    """Grouparoo's records, groups and destination rows for the assembled `config_dir` over
    `tables` (as the source database stores them); `query(sql)` runs a query property's SQL on
    the source database and returns its rows."""
    config = load_config(config_dir)
    ctx = _Context(config, tables, query, now.astimezone(dt.UTC))
    expected = Expected()
    for model in _models(config):
        _records(model, ctx, expected)
    _groups(ctx, expected)
    _exports(ctx, expected)
    return expected
