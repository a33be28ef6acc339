"""Compile Group rules into queries: raw SQL for the sync engine, ORM `Q` for the admin, Python for previews.

This module is pure: it reads nothing but what it is given (`rule_specs` is the one helper that loads
a group's rules). All three back ends share one compilation step (`_compile`), so they cannot drift
apart on what an operation means; `tests/core/test_rules.py` checks that they agree on every
operation of every property type, on SQLite and on PostgreSQL.

Semantics (decided deliberately; negation is where bugs live)
=============================================================

A rule is about the rows of `core_recordproperty` of one property of one record (one row per value:
arrays have several, by position). Only the *typed* column chosen by the property type
(`VALUE_KIND_BY_TYPE`: text, number, datetime or boolean) is ever compared. A row whose typed
column is NULL (an invalid value kept raw, or an empty one) takes part in no comparison. The row's
`state` (pending/ready) is not consulted: the stored typed value is the current knowledge.

Positive operations — "some value of the property satisfies it" (for arrays: any element)::

    eq, gt, gte, lt, lte, in,
    substring, startsWith, endsWith        EXISTS a row whose typed value satisfies the test
    inLast, inNext                         EXISTS a row whose value lies in [low, high]
    exists                                 EXISTS a row with a non-NULL typed value

A record without the property (or with only invalid/NULL values) matches none of them.

Negative operations on a property that is *not* an array — "the value fails the test", as
Grouparoo's SQL compares (`value <> x` is not true of a missing value)::

    ne             EXISTS a row with a non-NULL typed value not equal to the value
    notSubstring   EXISTS a row with a non-NULL typed value not containing the value

So a record without the value (missing, empty or invalid) matches neither `ne` nor
`notSubstring`: `notExists` is how to select those records. `ne x` selects the records that
hold a value other than x.

Negative operations on an array property — "no element satisfies the positive test"::

    ne             NOT EXISTS a row equal to the value
    notSubstring   NOT EXISTS a row containing the value

and for every property::

    notExists      NOT EXISTS a row with a non-NULL typed value

So an array matches `ne x` only when none of its elements is `x`, and an empty array matches
it (Grouparoo's choice for arrays: it also takes in records with the property never set). For
arrays, `ne` is exactly the complement of `eq`, and `notSubstring` of `substring`.

Comparisons:

- Match values are parsed with `core.values.coerce_match` for the property type: numbers (integer
  and float) as float, dates as timezone-aware datetimes (a date without a time is midnight UTC; a
  naive time is UTC; epoch seconds or milliseconds are accepted), booleans from true/false (also
  yes/no, 1/0, on/off). `in` takes a comma-separated list (items stripped).
- `eq`, `ne` and `in` are exact; on text they are case-sensitive. Dates compare as instants.
- `gt`/`gte`/`lt`/`lte` on text compare by Unicode code point on every database (PostgreSQL gets
  `COLLATE "C"`; SQLite's default BINARY collation already is), as Python does, so "alice" > "Bob".
- `substring`, `notSubstring`, `startsWith`, `endsWith` are case-insensitive. `%`, `_` and `\\` in
  the match value are literal (escaped, with an `ESCAPE '\\'` clause). Case folding is guaranteed
  for ASCII letters; for other letters it is the database's: PostgreSQL folds them (`UPPER`, as the
  ORM's `icontains` does), SQLite does not, and `rule_matches` folds ASCII only (like SQLite).
- `inLast N unit` is `now - N unit <= value <= now`; `inNext N unit` is `now <= value <= now + N
  unit` (both bounds included). Days and weeks are exact durations; months, quarters (3 months) and
  years (12 months) are calendar months with the day clamped to the target month's length
  (Jan 31 + 1 month = Feb 28, or Feb 29 in a leap year). Bounds beyond the representable range are
  clamped to year 1 / year 9999. A naive `now` is taken as UTC.

Invalid rules match nothing — never an exception. A rule is invalid when its property type is
unknown, its operation does not suit the type (`RULE_OPS_BY_KIND`), its match value is missing or
does not parse for the type, or a relative rule lacks a positive number or a known unit.
`GroupRule.clean()` rejects such rules in the admin first; here they become "1=0" / an empty `Q`.
Note that an invalid *negative* rule (say `ne` with the match "abc" on an integer property) also
matches nothing: it is not turned into "matches everything". `spec_problem()` says why a rule is
invalid.

Combining: match type `all` ANDs the rules, `any` ORs them; an unknown match type matches nothing.
**A group without rules has no members** (`rules_sql` returns "1=0", the `Q` matches nothing and
`rule_matches` returns False) — an empty rule set is an unfinished group, not "everyone".

The compiled expressions only look at the rules: callers restrict records to the group's model
themselves (a `ne` or `notExists` rule is true for records of any other model).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, Func, OuterRef, Q, TextField

from core.choices import (
    RELATIVE_RULE_OPS,
    RULE_OPS_BY_KIND,
    VALUE_KIND_BY_TYPE,
    GroupMatchType,
    RelativeUnit,
    RuleOp,
    ValueKind,
)
from core.values import coerce_match

__all__ = [
    "RuleSpec",
    "add_months",
    "group_rules_to_q",
    "has_relative_rules",
    "relative_bounds",
    "rule_matches",
    "rule_specs",
    "rules_sql",
    "spec_problem",
]

MATCH_NOTHING_SQL = "1=0"
SUPPORTED_VENDORS = ("sqlite", "postgresql")
UTC = dt.UTC
_MIN_DATETIME = dt.datetime.min.replace(tzinfo=UTC)
_MAX_DATETIME = dt.datetime.max.replace(tzinfo=UTC)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LIKE_ESCAPE = "\\"

_COLUMN_BY_KIND: dict[str, str] = {
    ValueKind.TEXT: "value_text",
    ValueKind.NUMBER: "value_number",
    ValueKind.DATETIME: "value_datetime",
    ValueKind.BOOLEAN: "value_boolean",
}

# op -> (negated, test). A negated rule is NOT EXISTS a row passing the test.
_TEST_BY_OP: dict[str, tuple[bool, str]] = {
    RuleOp.EQ: (False, "eq"),
    RuleOp.NE: (True, "eq"),
    RuleOp.GT: (False, "gt"),
    RuleOp.GTE: (False, "gte"),
    RuleOp.LT: (False, "lt"),
    RuleOp.LTE: (False, "lte"),
    RuleOp.IN: (False, "in"),
    RuleOp.SUBSTRING: (False, "contains"),
    RuleOp.NOT_SUBSTRING: (True, "contains"),
    RuleOp.STARTS_WITH: (False, "startswith"),
    RuleOp.ENDS_WITH: (False, "endswith"),
    RuleOp.EXISTS: (False, "notnull"),
    RuleOp.NOT_EXISTS: (True, "notnull"),
    RuleOp.IN_LAST: (False, "between"),
    RuleOp.IN_NEXT: (False, "between"),
}
# A negative op on a property that is not an array: the positive test of its value's opposite.
_SCALAR_NEGATION: dict[str, str] = {RuleOp.NE: "ne", RuleOp.NOT_SUBSTRING: "notcontains"}
_SQL_COMPARISON = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_LIKE_TESTS = ("contains", "startswith", "endswith", "notcontains")


@dataclass(frozen=True)
class RuleSpec:
    """One group rule, detached from the ORM (what the compilers need, nothing more)."""

    property_id: int
    property_type: str  # PropertyType value
    op: str  # RuleOp value
    match: str = ""
    relative_number: int | None = None
    relative_unit: str = ""  # RelativeUnit value
    is_array: bool = False  # the property's; negative operations differ (see the module doc)


@dataclass(frozen=True)
class _Compiled:
    """A valid rule reduced to "(NOT) EXISTS a row of `property_id` whose `column` passes `test`"."""

    property_id: int
    kind: str
    column: str
    negated: bool
    test: str
    operand: Any


class _InvalidRule(ValueError):
    """The rule cannot be evaluated; it matches nothing."""


# --------------------------------------------------------------------------- loading


def rule_specs(group: Any) -> list[RuleSpec]:
    """The group's rules as `RuleSpec`s, ordered by position (one query, properties joined)."""
    rules = group.rules.select_related("property").order_by("position", "id")
    return [
        RuleSpec(
            property_id=rule.property_id,
            property_type=rule.property.type,
            op=rule.op,
            match=rule.match or "",
            relative_number=rule.relative_match_number,
            relative_unit=rule.relative_match_unit or "",
            is_array=rule.property.is_array,
        )
        for rule in rules
    ]


def has_relative_rules(specs: Iterable[RuleSpec]) -> bool:
    """Whether any rule depends on the clock (inLast / inNext), so the group needs periodic recompute."""
    return any(spec.op in RELATIVE_RULE_OPS for spec in specs)


# --------------------------------------------------------------------------- relative dates


def add_months(value: dt.datetime, months: int) -> dt.datetime:
    """`value` moved by whole calendar months (negative: back), the day clamped to the month's length.

    Wall-clock arithmetic in `value`'s own tzinfo. Raises OverflowError outside years 1-9999.
    """
    index = value.year * 12 + (value.month - 1) + months
    year, month_index = divmod(index, 12)
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise OverflowError("date value out of range")
    month = month_index + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def _shift(now: dt.datetime, number: int, unit: str) -> dt.datetime:
    """`now` moved by `number` (signed) units, clamped to the representable range."""
    try:
        if unit == RelativeUnit.DAYS:
            return now + dt.timedelta(days=number)
        if unit == RelativeUnit.WEEKS:
            return now + dt.timedelta(weeks=number)
        if unit == RelativeUnit.MONTHS:
            return add_months(now, number)
        if unit == RelativeUnit.QUARTERS:
            return add_months(now, 3 * number)
        if unit == RelativeUnit.YEARS:
            return add_months(now, 12 * number)
    except OverflowError:
        return _MIN_DATETIME if number < 0 else _MAX_DATETIME
    raise ValueError(f"unknown relative unit {unit!r}")


def relative_bounds(
    op: str, number: int, unit: str, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """Absolute, inclusive bounds of `inLast`/`inNext` `number` `unit` at `now`.

    inLast: (now - number unit, now); inNext: (now, now + number unit). Raises ValueError for
    another op, an unknown unit, or a number that is not a positive whole number.
    """
    if op not in RELATIVE_RULE_OPS:
        raise ValueError(f"{op!r} is not a relative operation")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"{number!r} is not a positive whole number")
    if unit not in RelativeUnit.values:
        raise ValueError(f"unknown relative unit {unit!r}")
    now = _aware(now)
    if op == RuleOp.IN_LAST:
        return _shift(now, -number, unit), now
    return now, _shift(now, number, unit)


# --------------------------------------------------------------------------- compilation


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _compile(spec: RuleSpec, now: dt.datetime) -> _Compiled:
    """Reduce a rule to one EXISTS test; raises _InvalidRule when it must match nothing."""
    kind = VALUE_KIND_BY_TYPE.get(spec.property_type)
    if kind is None:
        raise _InvalidRule(f"unknown property type {spec.property_type!r}")
    if spec.op not in _TEST_BY_OP:
        raise _InvalidRule(f"unknown operation {spec.op!r}")
    if spec.op not in RULE_OPS_BY_KIND[kind]:
        raise _InvalidRule(f"{spec.op!r} does not suit a {spec.property_type} property")
    negated, test = _TEST_BY_OP[spec.op]
    if spec.op in _SCALAR_NEGATION and not spec.is_array:
        negated, test = False, _SCALAR_NEGATION[spec.op]
    operand: Any = None
    try:
        if test == "between":
            operand = relative_bounds(spec.op, spec.relative_number, spec.relative_unit, now)  # type: ignore[arg-type]
        elif test == "in":
            operand = coerce_match(spec.property_type, spec.match or "", many=True)
            if any(item is None or item == "" for item in operand):
                raise ValueError("'is one of' has an empty value")
        elif test != "notnull":
            operand = coerce_match(spec.property_type, spec.match or "")
            if operand is None or operand == "":
                raise ValueError("this operation needs a value to compare with")
    except ValueError as exc:
        raise _InvalidRule(str(exc)) from None
    if kind == ValueKind.NUMBER and test in _SQL_COMPARISON:
        operand = float(operand)
    elif kind == ValueKind.NUMBER and test == "in":
        operand = [float(item) for item in operand]
    return _Compiled(
        property_id=int(spec.property_id),
        kind=kind,
        column=_COLUMN_BY_KIND[kind],
        negated=negated,
        test=test,
        operand=operand,
    )


def spec_problem(spec: RuleSpec, *, now: dt.datetime | None = None) -> str | None:
    """Why the rule matches nothing (invalid type, op, match or relative bounds), or None if valid."""
    try:
        _compile(spec, now or dt.datetime.now(UTC))
    except _InvalidRule as exc:
        return str(exc)
    return None


def _compile_all(specs: Sequence[RuleSpec], now: dt.datetime) -> list[_Compiled | None]:
    compiled: list[_Compiled | None] = []
    for spec in specs:
        try:
            compiled.append(_compile(spec, now))
        except _InvalidRule:
            compiled.append(None)
    return compiled


def _like_pattern(test: str, value: str) -> str:
    escaped = (
        value.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )
    if test in ("contains", "notcontains"):
        return f"%{escaped}%"
    if test == "startswith":
        return f"{escaped}%"
    return f"%{escaped}"


# --------------------------------------------------------------------------- raw SQL


def _sql_param(value: Any, vendor: str) -> Any:
    """A bound parameter as the typed column stores it on `vendor`."""
    if isinstance(value, dt.datetime) and vendor == "sqlite":
        # Django stores SQLite datetimes as naive UTC text, str(datetime) form; compare alike.
        return str(value.astimezone(UTC).replace(tzinfo=None))
    return value


def _rule_sql(
    rule: _Compiled, *, vendor: str, record_alias: str, index: int
) -> tuple[str, list[Any]]:
    from core.models import RecordProperty

    opts = RecordProperty._meta
    alias = f"grp_rp{index}"
    column = f'{alias}."{opts.get_field(rule.column).column}"'
    if vendor == "sqlite":
        # Unary + keeps SQLite off the (property, value) index here: the subquery is correlated
        # by record, and before the first ANALYZE SQLite would scan a property's whole value
        # index once per record instead of probing (record, property, position).
        column = f"+{column}"
    params: list[Any] = [rule.property_id]
    test = rule.test
    if test == "notnull":
        condition = f"{column} IS NOT NULL"
    elif test == "between":
        condition = f"{column} BETWEEN %s AND %s"
        params += [_sql_param(bound, vendor) for bound in rule.operand]
    elif test == "in":
        condition = f"{column} IN ({', '.join(['%s'] * len(rule.operand))})"
        params += [_sql_param(item, vendor) for item in rule.operand]
    elif test in _LIKE_TESTS:
        pattern = _like_pattern(test, rule.operand)
        like = "NOT LIKE" if test == "notcontains" else "LIKE"
        if vendor == "postgresql":
            condition = f"UPPER({column}) {like} UPPER(%s) ESCAPE '{_LIKE_ESCAPE}'"
        else:
            condition = f"{column} {like} %s ESCAPE '{_LIKE_ESCAPE}'"
        params.append(pattern)
    else:
        operator = _SQL_COMPARISON[test]
        left = column
        if rule.kind == ValueKind.TEXT and test not in ("eq", "ne") and vendor == "postgresql":
            left = f'{column} COLLATE "C"'
        condition = f"{left} {operator} %s"
        params.append(_sql_param(rule.operand, vendor))
    # PostgreSQL: OFFSET 0 keeps the subquery correlated (probing the record's own rows through
    # (record, property, position)); turned into a semi-join, the planner would read every
    # matching value of the property, for every batch of records, as the table grows.
    fence = " OFFSET 0" if vendor == "postgresql" else ""
    sql = (
        f'{"NOT EXISTS" if rule.negated else "EXISTS"} (SELECT 1 FROM "{opts.db_table}" {alias} '
        f'WHERE {alias}."{opts.get_field("record").column}" = {record_alias}.id '
        f'AND {alias}."{opts.get_field("property").column}" = %s AND {condition}{fence})'
    )
    return sql, params


def rules_sql(
    specs: Sequence[RuleSpec],
    match_type: str,
    *,
    vendor: str,
    now: dt.datetime,
    record_alias: str = "r",
) -> tuple[str, list[Any]]:
    """A boolean SQL expression, true when the `core_record` row `record_alias` matches the rules.

    Returns `(sql, params)`: `%s` placeholders (Django cursor style on SQLite and PostgreSQL), and
    the flat parameter list in order; user values only ever travel as parameters. Each rule is an
    EXISTS / NOT EXISTS subquery over `core_recordproperty`, ANDed (`all`) or ORed (`any`). No
    rules, an unknown match type, or (with `all`) an invalid rule give "1=0". The SQL contains no
    literal `%`, so it can be embedded in a larger statement executed with parameters.
    Raises ValueError for an unsupported vendor or a `record_alias` that is not an identifier.
    """
    if vendor not in SUPPORTED_VENDORS:
        raise ValueError(f"unsupported database vendor {vendor!r}")
    if not _IDENTIFIER.match(record_alias):
        raise ValueError(f"record_alias {record_alias!r} is not an SQL identifier")
    if match_type not in GroupMatchType.values or not specs:
        return MATCH_NOTHING_SQL, []
    parts: list[str] = []
    params: list[Any] = []
    for index, rule in enumerate(_compile_all(specs, now)):
        if rule is None:
            parts.append(MATCH_NOTHING_SQL)
            continue
        sql, rule_params = _rule_sql(rule, vendor=vendor, record_alias=record_alias, index=index)
        parts.append(sql)
        params += rule_params
    joiner = " AND " if match_type == GroupMatchType.ALL else " OR "
    return "(" + joiner.join(parts) + ")", params


# --------------------------------------------------------------------------- ORM


class _CodePointText(Func):
    """A text column ordered by code point: `COLLATE "C"` on PostgreSQL, as is on SQLite (BINARY)."""

    template = "%(expressions)s"
    arity = 1
    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(
            compiler, connection, template='%(expressions)s COLLATE "C"', **extra_context
        )


def _nothing_q() -> Q:
    # The primary key is never NULL. Unlike `pk__in=[]` this still compiles to SQL, so callers can
    # embed the queryset in a larger statement.
    return Q(pk__isnull=True)


def _rule_q(rule: _Compiled) -> Q:
    from core.models import RecordProperty

    rows = RecordProperty.objects.filter(record=OuterRef("pk"), property_id=rule.property_id)
    column, test = rule.column, rule.test
    if test == "notnull":
        rows = rows.filter(**{f"{column}__isnull": False})
    elif test == "between":
        rows = rows.filter(**{f"{column}__range": tuple(rule.operand)})
    elif test == "in":
        rows = rows.filter(**{f"{column}__in": list(rule.operand)})
    elif test == "notcontains":
        rows = rows.filter(**{f"{column}__isnull": False}).exclude(
            **{f"{column}__icontains": rule.operand}
        )
    elif test in _LIKE_TESTS:
        rows = rows.filter(**{f"{column}__i{test}": rule.operand})
    elif test == "eq":
        rows = rows.filter(**{column: rule.operand})
    elif test == "ne":
        rows = rows.filter(**{f"{column}__isnull": False}).exclude(**{column: rule.operand})
    elif rule.kind == ValueKind.TEXT:
        rows = rows.alias(_grp_text=_CodePointText(column)).filter(
            **{f"_grp_text__{test}": rule.operand}
        )
    else:
        rows = rows.filter(**{f"{column}__{test}": rule.operand})
    exists = Exists(rows)
    return Q(~exists if rule.negated else exists)


def group_rules_to_q(specs: Sequence[RuleSpec], match_type: str, *, now: dt.datetime) -> Q:
    """The rules as a `Q` over `Record` (`Exists` per rule), for admin previews and counts.

    Same semantics as `rules_sql`; builds no queries itself. No rules, an unknown match type or an
    invalid rule under `all` give a Q that matches nothing.
    """
    if match_type not in GroupMatchType.values or not specs:
        return _nothing_q()
    parts = [_nothing_q() if rule is None else _rule_q(rule) for rule in _compile_all(specs, now)]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if match_type == GroupMatchType.ALL else combined | part
    return combined


# --------------------------------------------------------------------------- Python


def _python_value(kind: str, value: Any) -> Any:
    """A stored typed value normalised for comparison, or None if it cannot take part."""
    if value is None:
        return None
    if kind == ValueKind.TEXT:
        return value if isinstance(value, str) else str(value)
    if kind == ValueKind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)
    if kind == ValueKind.DATETIME:
        if isinstance(value, dt.datetime):
            return _aware(value)
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
        return None
    if kind == ValueKind.BOOLEAN:
        return value if isinstance(value, bool) else None
    return None


def _passes(rule: _Compiled, value: Any) -> bool:
    test, operand = rule.test, rule.operand
    if test == "notnull":
        return True
    if test == "eq":
        return value == operand
    if test == "ne":
        return value != operand
    if test == "gt":
        return value > operand
    if test == "gte":
        return value >= operand
    if test == "lt":
        return value < operand
    if test == "lte":
        return value <= operand
    if test == "in":
        return value in operand
    if test == "between":
        return operand[0] <= value <= operand[1]
    folded_value, folded_operand = value.translate(_ASCII_LOWER), operand.translate(_ASCII_LOWER)
    if test == "contains":
        return folded_operand in folded_value
    if test == "notcontains":
        return folded_operand not in folded_value
    if test == "startswith":
        return folded_value.startswith(folded_operand)
    return folded_value.endswith(folded_operand)


def _rule_matches_one(rule: _Compiled, values: dict[int, Any]) -> bool:
    raw = values.get(rule.property_id)
    if raw is None:
        raw = []
    elif not isinstance(raw, (list, tuple)):
        raw = [raw]
    typed = [v for v in (_python_value(rule.kind, item) for item in raw) if v is not None]
    found = any(_passes(rule, value) for value in typed)
    return not found if rule.negated else found


def rule_matches(
    specs: Sequence[RuleSpec], match_type: str, values: dict[int, Any], *, now: dt.datetime
) -> bool:
    """Whether one record matches, given its typed values: `{property_id: [value, ...]}`.

    Arrays have several values; a missing key or an empty list means "no value", and None items
    (invalid values) are ignored, exactly as NULL typed columns are in SQL. For single-record
    previews only — never loop over records with it (compile to SQL instead).
    """
    if match_type not in GroupMatchType.values or not specs:
        return False
    outcomes = (
        False if rule is None else _rule_matches_one(rule, values)
        for rule in _compile_all(specs, now)
    )
    return all(outcomes) if match_type == GroupMatchType.ALL else any(outcomes)
