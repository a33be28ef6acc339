"""Group rules compile to the same record set three ways: raw SQL, ORM Q, and Python.

Every case builds a tiny world of records with RecordProperty rows (typed columns filled as the
sync engine fills them, plus a missing property and an invalid value), then checks that
`rules_sql` (executed through `django.db.connection`), `group_rules_to_q` and `rule_matches` select
exactly the records the case states. The module runs on SQLite and on PostgreSQL
(`DATABASE_URL=postgres://...`); the vendor comes from the connection.

Record labels used by the datasets: N never has the property, X (and elements marked INVALID)
have a row whose raw value did not parse, so its typed column is NULL. `ne` and `notSubstring`
select neither on a single-value property (as Grouparoo's SQL), both on an array.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection

from core.choices import VALUE_KIND_BY_TYPE, PropertyType, RelativeUnit, RuleOp
from core.models import GroupRule, Property, Record, RecordModel, RecordProperty
from core.rules import (
    RuleSpec,
    add_months,
    group_rules_to_q,
    has_relative_rules,
    relative_bounds,
    rule_matches,
    rule_specs,
    rules_sql,
    spec_problem,
)
from core.values import raw_text
from tests.factories import make_group, make_model, make_property, make_record, make_source

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
MISSING = object()  # the record has no row for the property
INVALID = object()  # a row kept raw: typed column NULL, invalid_reason set

COLUMN_BY_KIND = {
    "text": "value_text",
    "number": "value_number",
    "datetime": "value_datetime",
    "boolean": "value_boolean",
}


def d(text: str) -> dt.datetime:
    """An aware datetime from ISO text (naive means UTC)."""
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def labels(text: str) -> set[str]:
    return set(text.split())


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    """One model, one source, properties, and labelled records with typed rows."""

    model: RecordModel
    records: dict[str, Record] = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=itertools.count)

    @classmethod
    def new(cls) -> World:
        model = make_model()
        world = cls(model=model)
        world.source = make_source(model=model)
        return world

    def prop(self, type: str, *, is_array: bool = False, key: str | None = None) -> Property:
        return make_property(
            source=self.source, type=type, is_array=is_array, key=key or f"p{next(self._seq)}"
        )

    def record(self, label: str) -> Record:
        if label not in self.records:
            self.records[label] = make_record(model=self.model)
        return self.records[label]

    def set(self, label: str, prop: Property, value: Any) -> None:
        """Give record `label` the value(s) of `prop`: scalar, list (array), MISSING or INVALID."""
        record = self.record(label)
        if value is MISSING:
            return
        values = value if isinstance(value, list) else [value]
        column = COLUMN_BY_KIND[VALUE_KIND_BY_TYPE[prop.type]]
        for position, item in enumerate(values):
            if item is INVALID:
                RecordProperty.objects.create(
                    record=record,
                    property=prop,
                    position=position,
                    raw_value="??garbage??",
                    invalid_reason="does not parse",
                )
            else:
                RecordProperty.objects.create(
                    record=record,
                    property=prop,
                    position=position,
                    raw_value=raw_text(item),
                    **{column: item},
                )

    def python_values(self) -> dict[int, dict[int, list]]:
        """{record id: {property id: [typed values by position]}} read back from the database."""
        out: dict[int, dict[int, list]] = {r.pk: {} for r in self.records.values()}
        rows = RecordProperty.objects.filter(record__model=self.model).select_related("property")
        for row in rows.order_by("record_id", "property_id", "position"):
            column = COLUMN_BY_KIND[VALUE_KIND_BY_TYPE[row.property.type]]
            out[row.record_id].setdefault(row.property_id, []).append(getattr(row, column))
        return out

    def evaluate(
        self, specs: list[RuleSpec], match_type: str = "all", *, now: dt.datetime = NOW
    ) -> dict[str, set[str]]:
        """The labels selected by each of the three compilers."""
        by_id = {r.pk: label for label, r in self.records.items()}
        sql, params = rules_sql(specs, match_type, vendor=connection.vendor, now=now)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT r.id FROM core_record r WHERE r.model_id = %s AND {sql}",
                [self.model.pk, *params],
            )
            sql_ids = {row[0] for row in cursor.fetchall()}
        q_ids = set(
            Record.objects.filter(model=self.model)
            .filter(group_rules_to_q(specs, match_type, now=now))
            .values_list("pk", flat=True)
        )
        values = self.python_values()
        py_ids = {pk for pk in by_id if rule_matches(specs, match_type, values[pk], now=now)}
        return {
            "sql": {by_id[pk] for pk in sql_ids},
            "q": {by_id[pk] for pk in q_ids},
            "python": {by_id[pk] for pk in py_ids},
        }

    def assert_selects(
        self,
        specs: list[RuleSpec],
        expected: set[str],
        match_type: str = "all",
        *,
        now: dt.datetime = NOW,
    ) -> None:
        got = self.evaluate(specs, match_type, now=now)
        assert got == {"sql": expected, "q": expected, "python": expected}, specs


def build_dataset(
    property_type: str, data: dict[str, Any], *, is_array: bool
) -> tuple[World, Property]:
    """A world holding `data` for one property, plus a decoy property of the same type.

    Every record also has the decoy property set to the first dataset value, so a compiler that
    forgot to filter on property_id would select records it must not.
    """
    world = World.new()
    prop = world.prop(property_type, is_array=is_array)
    decoy = world.prop(property_type, is_array=is_array)
    first = next(v for v in data.values() if v is not MISSING and v is not INVALID)
    for label, value in data.items():
        world.set(label, prop, value)
        world.set(label, decoy, first)
    return world, prop


# --------------------------------------------------------------------------- datasets

DATASETS: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "string": (
        PropertyType.STRING,
        False,
        {
            "A": "Alice",
            "B": "alice",
            "C": "Bob",
            "D": "50%",
            "E": "500",
            "F": "a_c",
            "G": "abc",
            "H": "x' OR 1=1 --",
            "I": "Zoë",
            "J": "back\\slash",
            "N": MISSING,
            "X": INVALID,
        },
    ),
    "email": (
        PropertyType.EMAIL,
        False,
        {
            "A": "ann@example.com",
            "B": "Bob@Example.COM",
            "C": "carol@test.org",
            "D": "d.o'neil@example.ie",
            "N": MISSING,
            "X": INVALID,
        },
    ),
    "phone": (
        PropertyType.PHONE_NUMBER,
        False,
        {
            "A": "+1 555 0100",
            "B": "+44 20 7946 0000",
            "C": "(555) 010-0199",
            "N": MISSING,
            "X": INVALID,
        },
    ),
    "url": (
        PropertyType.URL,
        False,
        {
            "A": "https://example.com/a",
            "B": "http://Example.org/B?q=1%20x",
            "C": "https://test.io/under_score",
            "N": MISSING,
            "X": INVALID,
        },
    ),
    "string[]": (
        PropertyType.STRING,
        True,
        {
            "A": ["red", "green"],
            "B": ["blue"],
            "C": ["Red", "blue"],
            "D": ["green", INVALID],
            "N": MISSING,
            "X": [INVALID],
        },
    ),
    "integer": (
        PropertyType.INTEGER,
        False,
        {"A": 1.0, "B": 5.0, "C": -3.0, "D": float(2**53), "E": 0.0, "N": MISSING, "X": INVALID},
    ),
    "float": (
        PropertyType.FLOAT,
        False,
        {"A": 1.5, "B": -0.25, "C": 1e300, "D": 0.1, "E": 3.0, "N": MISSING, "X": INVALID},
    ),
    "integer[]": (
        PropertyType.INTEGER,
        True,
        {
            "A": [1.0, 2.0, 3.0],
            "B": [10.0],
            "C": [-1.0, 10.0],
            "D": [4.0, INVALID],
            "N": MISSING,
            "X": [INVALID],
        },
    ),
    "float[]": (
        PropertyType.FLOAT,
        True,
        {"A": [0.5, 2.25], "B": [-7.5], "N": MISSING, "X": [INVALID]},
    ),
    "boolean": (PropertyType.BOOLEAN, False, {"A": True, "B": False, "N": MISSING, "X": INVALID}),
    "boolean[]": (
        PropertyType.BOOLEAN,
        True,
        {"A": [True, False], "B": [True], "C": [False], "D": [INVALID], "N": MISSING},
    ),
    "date": (
        PropertyType.DATE,
        False,
        {
            "A": d("2024-03-15T12:00:00"),  # == NOW
            "B": d("2024-01-31T00:00:00"),
            "C": d("2024-03-14T12:00:00"),
            "D": d("2025-01-01T00:00:00"),
            "E": d("2023-12-31T23:59:59.999999"),
            "F": d("1969-07-20T20:17:40"),
            "N": MISSING,
            "X": INVALID,
        },
    ),
    "date[]": (
        PropertyType.DATE,
        True,
        {
            "A": [d("2024-01-01T00:00:00"), d("2024-06-01T00:00:00")],
            "B": [d("2023-01-01T00:00:00")],
            "C": [INVALID, d("2024-03-15T11:00:00")],
            "N": MISSING,
            "X": [INVALID],
        },
    ),
}

# (dataset, op, match, expected labels); relative rules use ("n unit") as match, see _spec.
CASES: list[tuple[str, str, str, str]] = [
    # ---- string: exact, case-sensitive equality; code-point ordering; ILIKE-ish patterns
    ("string", "eq", "Alice", "A"),
    ("string", "eq", "alice", "B"),
    ("string", "eq", "Zoë", "I"),
    ("string", "eq", "x' OR 1=1 --", "H"),
    ("string", "eq", "' OR '1'='1", ""),
    ("string", "eq", "nobody", ""),
    ("string", "ne", "Alice", "B C D E F G H I J"),
    ("string", "ne", "x' OR 1=1 --", "A B C D E F G I J"),
    ("string", "ne", "nobody", "A B C D E F G H I J"),
    ("string", "gt", "Bob", "B F G H I J"),
    ("string", "gte", "Bob", "B C F G H I J"),
    ("string", "lt", "Bob", "A D E"),
    ("string", "lte", "Bob", "A C D E"),
    ("string", "gt", "a_c", "B G H J"),
    ("string", "substring", "LIC", "A B"),
    ("string", "substring", "50%", "D"),
    ("string", "substring", "%", "D"),
    ("string", "substring", "_", "F"),
    ("string", "substring", "A_C", "F"),
    ("string", "substring", "\\", "J"),
    ("string", "substring", "k\\s", "J"),
    ("string", "substring", "x' OR 1=1 --", "H"),
    ("string", "substring", "' OR '1'='1", ""),
    ("string", "substring", "oë", "I"),
    ("string", "substring", "ZO", "I"),
    ("string", "notSubstring", "lic", "C D E F G H I J"),
    ("string", "notSubstring", "%", "A B C E F G H I J"),
    ("string", "notSubstring", "_", "A B C D E G H I J"),
    ("string", "notSubstring", "zzz", "A B C D E F G H I J"),
    ("string", "startsWith", "AL", "A B"),
    ("string", "startsWith", "5", "D E"),
    ("string", "startsWith", "50%", "D"),
    ("string", "startsWith", "a_", "F"),
    ("string", "startsWith", "a%", ""),
    ("string", "endsWith", "CE", "A B"),
    ("string", "endsWith", "%", "D"),
    ("string", "endsWith", "_c", "F"),
    ("string", "endsWith", "ë", "I"),
    ("string", "in", "Alice,Bob", "A C"),
    ("string", "in", "alice, Zoë", "B I"),
    ("string", "in", "500, 50%", "D E"),
    ("string", "exists", "", "A B C D E F G H I J"),
    ("string", "notExists", "", "N X"),
    # ---- email
    ("email", "eq", "ann@example.com", "A"),
    ("email", "eq", "bob@example.com", ""),
    ("email", "eq", "Bob@Example.COM", "B"),
    ("email", "ne", "ann@example.com", "B C D"),
    ("email", "gt", "b", "C D"),
    ("email", "gte", "carol@test.org", "C D"),
    ("email", "lt", "b", "A B"),
    ("email", "lte", "ann@example.com", "A B"),
    ("email", "substring", "@EXAMPLE.com", "A B"),
    ("email", "substring", "example", "A B D"),
    ("email", "substring", "o'n", "D"),
    ("email", "notSubstring", "example", "C"),
    ("email", "startsWith", "BOB@", "B"),
    ("email", "endsWith", ".ORG", "C"),
    ("email", "in", "ann@example.com, carol@test.org", "A C"),
    ("email", "exists", "", "A B C D"),
    ("email", "notExists", "", "N X"),
    # ---- phone number
    ("phone", "eq", "+1 555 0100", "A"),
    ("phone", "ne", "+1 555 0100", "B C"),
    ("phone", "gt", "+2", "B"),
    ("phone", "gte", "+1 555 0100", "A B"),
    ("phone", "lt", "+1", "C"),
    ("phone", "lte", "+44 20 7946 0000", "A B C"),
    ("phone", "substring", "555", "A C"),
    ("phone", "notSubstring", "555", "B"),
    ("phone", "startsWith", "+", "A B"),
    ("phone", "endsWith", "0000", "B"),
    ("phone", "in", "+1 555 0100,(555) 010-0199", "A C"),
    ("phone", "exists", "", "A B C"),
    ("phone", "notExists", "", "N X"),
    # ---- url
    ("url", "eq", "https://example.com/a", "A"),
    ("url", "ne", "https://example.com/a", "B C"),
    ("url", "gt", "https://f", "C"),
    ("url", "gte", "https://example.com/a", "A C"),
    ("url", "lt", "https", "B"),
    ("url", "lte", "https://example.com/a", "A B"),
    ("url", "substring", "EXAMPLE", "A B"),
    ("url", "substring", "%20", "B"),
    ("url", "substring", "%2F", ""),
    ("url", "substring", "_", "C"),
    ("url", "notSubstring", "example", "C"),
    ("url", "startsWith", "HTTPS://", "A C"),
    ("url", "endsWith", "/A", "A"),
    ("url", "in", "https://test.io/under_score,http://nowhere", "C"),
    ("url", "exists", "", "A B C"),
    ("url", "notExists", "", "N X"),
    # ---- string array: positive ops = any element, negative ops = no element
    ("string[]", "eq", "red", "A"),
    ("string[]", "eq", "Red", "C"),
    ("string[]", "ne", "red", "B C D N X"),
    ("string[]", "ne", "blue", "A D N X"),
    ("string[]", "gt", "g", "A D"),
    ("string[]", "gte", "red", "A"),
    ("string[]", "lt", "b", "C"),
    ("string[]", "lte", "blue", "B C"),
    ("string[]", "substring", "RE", "A C D"),
    ("string[]", "notSubstring", "re", "B N X"),
    ("string[]", "startsWith", "B", "B C"),
    ("string[]", "endsWith", "N", "A D"),
    ("string[]", "in", "blue,green", "A B C D"),
    ("string[]", "exists", "", "A B C D"),
    ("string[]", "notExists", "", "N X"),
    # ---- integer
    ("integer", "eq", "5", "B"),
    ("integer", "eq", "5.0", "B"),
    ("integer", "eq", "1e0", "A"),
    ("integer", "eq", "-3", "C"),
    ("integer", "eq", "0", "E"),
    ("integer", "eq", "9007199254740992", "D"),
    ("integer", "ne", "5", "A C D E"),
    ("integer", "ne", "0", "A B C D"),
    ("integer", "gt", "1", "B D"),
    ("integer", "gte", "1", "A B D"),
    ("integer", "lt", "0", "C"),
    ("integer", "lte", "0", "C E"),
    ("integer", "in", "1, 5, 7", "A B"),
    ("integer", "in", "-3,0", "C E"),
    ("integer", "exists", "", "A B C D E"),
    ("integer", "notExists", "", "N X"),
    # ---- float
    ("float", "eq", "0.1", "D"),
    ("float", "eq", "3", "E"),
    ("float", "eq", "1.50", "A"),
    ("float", "eq", "1e300", "C"),
    ("float", "ne", "1.5", "B C D E"),
    ("float", "gt", "1", "A C E"),
    ("float", "gte", "1.5", "A C E"),
    ("float", "lt", "0", "B"),
    ("float", "lte", "0.1", "B D"),
    ("float", "in", "1.5,3", "A E"),
    ("float", "exists", "", "A B C D E"),
    ("float", "notExists", "", "N X"),
    # ---- number arrays
    ("integer[]", "eq", "10", "B C"),
    ("integer[]", "ne", "10", "A D N X"),
    ("integer[]", "gt", "5", "B C"),
    ("integer[]", "gte", "4", "B C D"),
    ("integer[]", "lt", "0", "C"),
    ("integer[]", "lte", "1", "A C"),
    ("integer[]", "in", "2,-1", "A C"),
    ("integer[]", "exists", "", "A B C D"),
    ("integer[]", "notExists", "", "N X"),
    ("float[]", "eq", "2.25", "A"),
    ("float[]", "ne", "2.25", "B N X"),
    ("float[]", "gt", "0", "A"),
    ("float[]", "gte", "2.25", "A"),
    ("float[]", "lt", "0.5", "B"),
    ("float[]", "lte", "0.5", "A B"),
    ("float[]", "in", "-7.5", "B"),
    ("float[]", "exists", "", "A B"),
    ("float[]", "notExists", "", "N X"),
    # ---- boolean
    ("boolean", "eq", "true", "A"),
    ("boolean", "eq", "false", "B"),
    ("boolean", "eq", "yes", "A"),
    ("boolean", "eq", "0", "B"),
    ("boolean", "eq", "FALSE", "B"),
    ("boolean", "ne", "true", "B"),
    ("boolean", "ne", "false", "A"),
    ("boolean", "exists", "", "A B"),
    ("boolean", "notExists", "", "N X"),
    ("boolean[]", "eq", "true", "A B"),
    ("boolean[]", "eq", "false", "A C"),
    ("boolean[]", "ne", "true", "C D N"),
    ("boolean[]", "ne", "false", "B D N"),
    ("boolean[]", "exists", "", "A B C"),
    ("boolean[]", "notExists", "", "D N"),
    # ---- date (NOW = 2024-03-15T12:00Z); dates compare as instants
    ("date", "eq", "2024-01-31", "B"),
    ("date", "eq", "2024-01-31T01:00:00+01:00", "B"),
    ("date", "eq", "1706659200", "B"),
    ("date", "eq", "1706659200000", "B"),
    ("date", "eq", "2023-12-31T23:59:59.999999Z", "E"),
    ("date", "eq", "2023-12-31T23:59:59Z", ""),
    ("date", "eq", "2024-03-15 12:00:00", "A"),
    ("date", "ne", "2024-01-31", "A C D E F"),
    ("date", "gt", "2024-03-14T12:00:00Z", "A D"),
    ("date", "gte", "2024-03-14T12:00:00Z", "A C D"),
    ("date", "lt", "2024-01-01", "E F"),
    ("date", "lte", "2024-01-31", "B E F"),
    ("date", "lte", "-14182940", "F"),  # epoch seconds before 1970
    ("date", "inLast", "1 days", "A C"),
    ("date", "inNext", "1 years", "A D"),
    ("date", "inLast", "100 years", "A B C E F"),
    ("date", "exists", "", "A B C D E F"),
    ("date", "notExists", "", "N X"),
    ("date[]", "eq", "2024-01-01", "A"),
    ("date[]", "ne", "2024-01-01", "B C N X"),
    ("date[]", "gt", "2024-05-01", "A"),
    ("date[]", "gte", "2024-03-15T11:00:00Z", "A C"),
    ("date[]", "lt", "2023-06-01", "B"),
    ("date[]", "lte", "2024-01-01", "A B"),
    ("date[]", "inLast", "7 days", "C"),
    ("date[]", "inNext", "3 months", "A"),
    ("date[]", "exists", "", "A B C"),
    ("date[]", "notExists", "", "N X"),
]

# Rules that cannot be evaluated: bad match values, ops that do not suit the type, bad relative
# parameters. Each matches nothing, negative operations included.
INVALID_CASES: list[tuple[str, str, str]] = [
    ("string", "eq", ""),
    ("string", "ne", ""),
    ("string", "substring", ""),
    ("string", "notSubstring", ""),
    ("string", "startsWith", ""),
    ("string", "in", ""),
    ("string", "in", " , "),
    ("string", "inLast", "1 days"),
    ("string", "bogus", "x"),
    ("email", "ne", ""),
    ("email", "notSubstring", ""),
    ("url", "inNext", "1 days"),
    ("integer", "eq", "abc"),
    ("integer", "eq", "5.5"),
    ("integer", "ne", "abc"),
    ("integer", "gt", ""),
    ("integer", "in", "1,x"),
    ("integer", "substring", "5"),
    ("integer", "notSubstring", "5"),
    ("integer", "startsWith", "1"),
    ("integer", "inLast", "1 days"),
    ("float", "eq", "NaN"),
    ("float", "eq", "inf"),
    ("float", "gt", "1e309"),
    ("float", "ne", "one"),
    ("float", "in", "1.5,NaN"),
    ("boolean", "eq", "maybe"),
    ("boolean", "ne", "maybe"),
    ("boolean", "gt", "true"),
    ("boolean", "in", "true"),
    ("boolean", "substring", "t"),
    ("boolean", "notSubstring", "t"),
    ("boolean", "inLast", "1 days"),
    ("date", "eq", "not a date"),
    ("date", "ne", "2024-02-30"),
    ("date", "substring", "2024"),
    ("date", "notSubstring", "2024"),
    ("date", "in", "2024-01-31,nope"),
    ("date", "in", "2024-01-31, 2025-01-01"),  # 'is one of' does not suit dates
    ("date", "inLast", ""),
    ("date", "inLast", "0 days"),
    ("date", "inLast", "1 fortnights"),
    ("date", "inNext", "1 "),
]


def _spec(prop: Property, op: str, match: str) -> RuleSpec:
    if op in (RuleOp.IN_LAST, RuleOp.IN_NEXT):
        number, _, unit = match.partition(" ")
        return RuleSpec(
            property_id=prop.pk,
            property_type=prop.type,
            op=op,
            relative_number=int(number) if number else None,
            relative_unit=unit,
        )
    return RuleSpec(
        property_id=prop.pk, property_type=prop.type, op=op, match=match, is_array=prop.is_array
    )


def _case_id(case: tuple) -> str:
    return "-".join(str(part) for part in case[:3])


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_every_operation_selects_the_stated_records(case):
    dataset, op, match, expected = case
    property_type, is_array, data = DATASETS[dataset]
    world, prop = build_dataset(property_type, data, is_array=is_array)
    world.assert_selects([_spec(prop, op, match)], labels(expected))


@pytest.mark.parametrize("case", INVALID_CASES, ids=_case_id)
def test_invalid_rules_match_nothing_without_raising(case):
    dataset, op, match = case
    property_type, is_array, data = DATASETS[dataset]
    world, prop = build_dataset(property_type, data, is_array=is_array)
    spec = _spec(prop, op, match)
    assert spec_problem(spec, now=NOW)
    world.assert_selects([spec], set())
    world.assert_selects([spec], set(), "any")


def test_cases_cover_every_operation_of_every_property_type():
    """The table above must not silently lose coverage when an op or a type is added."""
    from core.choices import RULE_OPS_BY_KIND

    scalar = {(DATASETS[ds][0], op) for ds, op, _, _ in CASES if not DATASETS[ds][1]}
    array = {(VALUE_KIND_BY_TYPE[DATASETS[ds][0]], op) for ds, op, _, _ in CASES if DATASETS[ds][1]}
    for property_type in PropertyType.values:
        kind = VALUE_KIND_BY_TYPE[property_type]
        for op in RULE_OPS_BY_KIND[kind]:
            assert (property_type, op) in scalar, (property_type, op)
            assert (kind, op) in array, (kind, "array", op)
        for op in set(RuleOp.values) - set(RULE_OPS_BY_KIND[kind]):
            assert spec_problem(RuleSpec(1, property_type, op, "1", 1, "days")), (property_type, op)


def test_eq_ne_and_not_exists_partition_the_records_for_every_dataset():
    """Whatever the data, `eq x`, `ne x` and `notExists` split the records of a single-value
    property in three (as Grouparoo's SQL: `ne` leaves out records without a value); for an
    array, `ne x` is exactly the complement of `eq x` (empty arrays included)."""
    for dataset, (property_type, is_array, data) in DATASETS.items():
        world, prop = build_dataset(property_type, data, is_array=is_array)
        first = next(v for v in data.values() if v is not MISSING and v is not INVALID)
        value = first[0] if isinstance(first, list) else first
        match = value.isoformat() if isinstance(value, dt.datetime) else raw_text(value)
        eq = world.evaluate([_spec(prop, "eq", match)])
        ne = world.evaluate([_spec(prop, "ne", match)])
        none = world.evaluate([_spec(prop, "notExists", "")])
        for backend in ("sql", "q", "python"):
            assert eq[backend] and eq[backend].isdisjoint(ne[backend]), (dataset, backend)
            if is_array:
                assert eq[backend] | ne[backend] == set(data), (dataset, backend)
            else:
                assert ne[backend].isdisjoint(none[backend]), (dataset, backend)
                assert eq[backend] | ne[backend] | none[backend] == set(data), (dataset, backend)


def test_ne_on_a_single_value_leaves_out_records_without_one():
    """Grouparoo compiles `ne` to `value <> x`, which no missing, empty or invalid value
    passes; `notExists` selects those. Arrays keep "no element is x" (an empty one matches)."""
    world = World.new()
    plan = world.prop(PropertyType.STRING, key="plan")
    tags = world.prop(PropertyType.STRING, is_array=True, key="tags")
    for label, plan_value, tag_values in [
        ("A", "gold", ["x"]),
        ("B", "free", ["vip"]),
        ("N", MISSING, MISSING),
        ("X", INVALID, [INVALID]),
    ]:
        world.set(label, plan, plan_value)
        world.set(label, tags, tag_values)
    world.assert_selects([_spec(plan, "ne", "free")], {"A"})
    world.assert_selects([_spec(plan, "notSubstring", "fre")], {"A"})
    world.assert_selects([_spec(plan, "notExists", "")], {"N", "X"})
    world.assert_selects(
        [_spec(plan, "ne", "free"), _spec(plan, "notExists", "")], {"A", "N", "X"}, "any"
    )
    world.assert_selects([_spec(tags, "ne", "vip")], {"A", "N", "X"})


# --------------------------------------------------------------------------- vendor-specific text


def test_case_folding_of_non_ascii_letters_is_the_databases():
    """ASCII letters fold everywhere; 'Ë' vs 'ë' folds on PostgreSQL (UPPER) but not on SQLite or in Python."""
    world = World.new()
    prop = world.prop(PropertyType.STRING)
    world.set("I", prop, "Zoë")
    world.set("S", prop, "STRASSE")
    spec = RuleSpec(prop.pk, prop.type, "substring", "zOË")
    got = world.evaluate([spec])
    expected_in_db = {"I"} if connection.vendor == "postgresql" else set()
    assert got["sql"] == got["q"] == expected_in_db
    assert got["python"] == set()
    world.assert_selects([RuleSpec(prop.pk, prop.type, "substring", "strasse")], {"S"})


def test_postgresql_text_order_pins_the_c_collation():
    """Whatever the database's default collation, text ordering is by code point (as in Python)."""
    spec = RuleSpec(1, PropertyType.STRING, "gt", "b")
    sql, _ = rules_sql([spec], "all", vendor="postgresql", now=NOW)
    assert 'COLLATE "C" >' in sql
    sql, _ = rules_sql([spec], "all", vendor="sqlite", now=NOW)
    assert "COLLATE" not in sql  # SQLite's default BINARY collation already orders by code point
    q_sql = str(Record.objects.filter(group_rules_to_q([spec], "all", now=NOW)).query)
    assert ('COLLATE "C"' in q_sql) == (connection.vendor == "postgresql")


def test_text_order_is_by_code_point_not_by_locale():
    world = World.new()
    prop = world.prop(PropertyType.STRING)
    for label, value in {"a": "apple", "B": "Banana", "z": "Zebra", "e": "éclair"}.items():
        world.set(label, prop, value)
    # Code points: "B" < "Z" < "a" < "é"
    world.assert_selects([RuleSpec(prop.pk, prop.type, "lt", "a")], {"B", "z"})
    world.assert_selects([RuleSpec(prop.pk, prop.type, "gt", "b")], {"e"})


# --------------------------------------------------------------------------- injection and escaping


def test_sql_injection_attempts_are_bound_parameters_compared_literally():
    world = World.new()
    prop = world.prop(PropertyType.STRING)
    world.set("H", prop, "x' OR 1=1 --")
    world.set("Q", prop, 'say "hi"; --')
    world.set("P", prop, "plain")
    attacks = [
        "'; DROP TABLE core_record; --",
        "x' OR 1=1 --",
        '" OR ""="',
        "%' OR '1'='1",
        "1) OR (1=1",
    ]
    for match in attacks:
        spec = RuleSpec(prop.pk, prop.type, "eq", match)
        sql, params = rules_sql([spec], "all", vendor=connection.vendor, now=NOW)
        assert match not in sql and match in params
    world.assert_selects([RuleSpec(prop.pk, prop.type, "eq", attacks[0])], set())
    world.assert_selects([RuleSpec(prop.pk, prop.type, "eq", "x' OR 1=1 --")], {"H"})
    world.assert_selects([RuleSpec(prop.pk, prop.type, "substring", '"hi";')], {"Q"})
    world.assert_selects([RuleSpec(prop.pk, prop.type, "in", "x' OR 1=1 --, plain")], {"H", "P"})
    assert Record.objects.filter(model=world.model).count() == 3  # the table is still there


def test_like_wildcards_in_match_values_are_literal():
    world = World.new()
    prop = world.prop(PropertyType.STRING)
    for label, value in {
        "pct": "50%",
        "num": "500",
        "und": "a_b",
        "axb": "axb",
        "bs": "a\\b",
    }.items():
        world.set(label, prop, value)
    cases = {
        ("substring", "50%"): {"pct"},
        ("startsWith", "50%"): {"pct"},
        ("endsWith", "0%"): {"pct"},
        ("substring", "_"): {"und"},
        ("substring", "a_b"): {"und"},
        ("substring", "a\\b"): {"bs"},
        ("substring", "\\"): {"bs"},
        ("startsWith", "a%"): set(),
        ("notSubstring", "%"): {"num", "und", "axb", "bs"},
        ("notSubstring", "_"): {"pct", "num", "axb", "bs"},
    }
    for (op, match), expected in cases.items():
        world.assert_selects([RuleSpec(prop.pk, prop.type, op, match)], expected)


def test_sql_has_no_literal_percent_and_validates_its_inputs():
    specs = [
        RuleSpec(1, PropertyType.STRING, "substring", "50%"),
        RuleSpec(2, PropertyType.DATE, "inLast", relative_number=3, relative_unit="days"),
    ]
    for vendor in ("sqlite", "postgresql"):
        sql, params = rules_sql(specs, "any", vendor=vendor, now=NOW)
        assert "%" not in sql.replace("%s", "")
        assert sql.count("%s") == len(params)
    with pytest.raises(ValueError):
        rules_sql(specs, "all", vendor="oracle", now=NOW)
    with pytest.raises(ValueError):
        rules_sql(specs, "all", vendor="sqlite", now=NOW, record_alias="r; DROP TABLE x")


def test_record_alias_can_be_the_table_name():
    world = World.new()
    prop = world.prop(PropertyType.INTEGER)
    world.set("A", prop, 7.0)
    world.set("B", prop, 8.0)
    sql, params = rules_sql(
        [RuleSpec(prop.pk, prop.type, "eq", "7")],
        "all",
        vendor=connection.vendor,
        now=NOW,
        record_alias="core_record",
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT core_record.id FROM core_record WHERE {sql}", params)
        assert {row[0] for row in cursor.fetchall()} == {world.records["A"].pk}


# --------------------------------------------------------------------------- all / any


@pytest.fixture
def plans_world() -> tuple[World, Property, Property]:
    world = World.new()
    plan = world.prop(PropertyType.STRING, key="plan")
    age = world.prop(PropertyType.INTEGER, key="age")
    for label, (plan_value, age_value) in {
        "A": ("pro", 30.0),
        "B": ("pro", 15.0),
        "C": ("free", 40.0),
        "D": (MISSING, 50.0),
        "E": (MISSING, MISSING),
    }.items():
        world.set(label, plan, plan_value)
        world.set(label, age, age_value)
    return world, plan, age


@pytest.mark.parametrize(
    "rules, match_type, expected",
    [
        ([("plan", "eq", "pro"), ("age", "gte", "18")], "all", "A"),
        ([("plan", "eq", "pro"), ("age", "gte", "18")], "any", "A B C D"),
        ([("plan", "ne", "pro"), ("age", "gte", "18")], "all", "C"),
        ([("plan", "notExists", ""), ("age", "lt", "18")], "any", "B D E"),
        ([("plan", "exists", ""), ("plan", "ne", "free")], "all", "A B"),
        ([("plan", "eq", "pro"), ("age", "eq", "abc")], "all", ""),
        ([("plan", "eq", "pro"), ("age", "eq", "abc")], "any", "A B"),
        ([("age", "ne", "abc")], "any", ""),
        ([("plan", "notSubstring", "o"), ("age", "notExists", "")], "any", "C E"),
        ([("plan", "in", "pro,free"), ("age", "lte", "30"), ("age", "gt", "15")], "all", "A"),
        ([], "all", ""),
        ([], "any", ""),
        ([("plan", "eq", "pro")], "some", ""),
    ],
)
def test_match_type_combines_rules(plans_world, rules, match_type, expected):
    world, plan, age = plans_world
    props = {"plan": plan, "age": age}
    specs = [_spec(props[key], op, match) for key, op, match in rules]
    world.assert_selects(specs, labels(expected), match_type)


def test_no_rules_compile_to_match_nothing():
    assert rules_sql([], "all", vendor="sqlite", now=NOW) == ("1=0", [])
    assert rules_sql([], "any", vendor="postgresql", now=NOW) == ("1=0", [])
    assert rule_matches([], "all", {}, now=NOW) is False


def test_q_compiles_to_sql_even_when_it_matches_nothing(plans_world):
    world, plan, _ = plans_world
    q = group_rules_to_q([RuleSpec(plan.pk, plan.type, "eq", "")], "all", now=NOW)
    sql, _ = Record.objects.filter(q).values("pk").query.sql_with_params()
    assert "IS NULL" in sql


def test_group_rules_to_q_builds_without_queries(django_assert_num_queries):
    specs = [
        RuleSpec(1, PropertyType.STRING, "substring", "a"),
        RuleSpec(2, PropertyType.DATE, "inNext", relative_number=2, relative_unit="weeks"),
        RuleSpec(3, PropertyType.INTEGER, "ne", "x"),
    ]
    with django_assert_num_queries(0):
        group_rules_to_q(specs, "any", now=NOW)
        rules_sql(specs, "any", vendor="postgresql", now=NOW)
        rule_matches(specs, "any", {1: ["abc"]}, now=NOW)


def test_rule_matches_ignores_none_and_accepts_scalars():
    spec = RuleSpec(1, PropertyType.INTEGER, "eq", "3")
    assert rule_matches([spec], "all", {1: [None, 3]}, now=NOW)
    assert rule_matches([spec], "all", {1: 3}, now=NOW)
    assert not rule_matches([spec], "all", {1: [None]}, now=NOW)
    not_exists = RuleSpec(1, PropertyType.INTEGER, "notExists")
    assert rule_matches([not_exists], "all", {1: [None]}, now=NOW)
    assert rule_matches([not_exists], "all", {}, now=NOW)


# --------------------------------------------------------------------------- groups


def test_rule_specs_reads_a_groups_rules_in_position_order(django_assert_num_queries):
    model = make_model()
    source = make_source(model=model)
    email = make_property(source=source, key="email", type=PropertyType.EMAIL)
    seen = make_property(source=source, key="last_seen", type=PropertyType.DATE)
    group = make_group(model=model, match_type="any")
    GroupRule.objects.create(
        group=group,
        property=seen,
        op="inLast",
        relative_match_number=30,
        relative_match_unit="days",
        position=2,
    )
    GroupRule.objects.create(
        group=group, property=email, op="endsWith", match="@example.com", position=1
    )
    with django_assert_num_queries(1):
        specs = rule_specs(group)
    assert specs == [
        RuleSpec(email.pk, PropertyType.EMAIL, "endsWith", "@example.com", None, ""),
        RuleSpec(seen.pk, PropertyType.DATE, "inLast", "", 30, "days"),
    ]
    assert has_relative_rules(specs)
    assert not has_relative_rules(specs[:1])
    assert not has_relative_rules([])


def test_a_saved_invalid_rule_matches_nothing_instead_of_raising():
    """Rules saved without clean() (config files, the API, old data) must not break recompute."""
    world = World.new()
    age = world.prop(PropertyType.INTEGER, key="age")
    world.set("A", age, 1.0)
    world.set("N", age, MISSING)
    group = make_group(model=world.model)
    GroupRule.objects.create(group=group, property=age, op="ne", match="one")
    world.assert_selects(rule_specs(group), set())


# --------------------------------------------------------------------------- relative dates

RELATIVE_CASES = [
    # now, op, number, unit, expected low, expected high
    ("2024-03-15T12:00:00", "inLast", 1, "days", "2024-03-14T12:00:00", "2024-03-15T12:00:00"),
    ("2024-03-15T12:00:00", "inNext", 1, "days", "2024-03-15T12:00:00", "2024-03-16T12:00:00"),
    ("2024-03-01T00:00:00", "inLast", 3, "days", "2024-02-27T00:00:00", "2024-03-01T00:00:00"),
    ("2024-02-27T00:00:00", "inNext", 3, "days", "2024-02-27T00:00:00", "2024-03-01T00:00:00"),
    ("2024-03-15T12:00:00", "inLast", 2, "weeks", "2024-03-01T12:00:00", "2024-03-15T12:00:00"),
    ("2024-03-15T12:00:00", "inNext", 2, "weeks", "2024-03-15T12:00:00", "2024-03-29T12:00:00"),
    ("2024-03-31T10:00:00", "inLast", 1, "months", "2024-02-29T10:00:00", "2024-03-31T10:00:00"),
    ("2023-03-31T10:00:00", "inLast", 1, "months", "2023-02-28T10:00:00", "2023-03-31T10:00:00"),
    ("2023-01-31T10:00:00", "inNext", 1, "months", "2023-01-31T10:00:00", "2023-02-28T10:00:00"),
    ("2024-01-31T10:00:00", "inNext", 1, "months", "2024-01-31T10:00:00", "2024-02-29T10:00:00"),
    ("2024-01-15T08:30:00", "inLast", 2, "months", "2023-11-15T08:30:00", "2024-01-15T08:30:00"),
    ("2024-01-15T08:30:00", "inNext", 13, "months", "2024-01-15T08:30:00", "2025-02-15T08:30:00"),
    ("2024-03-31T10:00:00", "inLast", 1, "quarters", "2023-12-31T10:00:00", "2024-03-31T10:00:00"),
    ("2024-03-31T10:00:00", "inNext", 1, "quarters", "2024-03-31T10:00:00", "2024-06-30T10:00:00"),
    ("2024-11-30T00:00:00", "inNext", 1, "quarters", "2024-11-30T00:00:00", "2025-02-28T00:00:00"),
    ("2024-05-31T00:00:00", "inLast", 5, "quarters", "2023-02-28T00:00:00", "2024-05-31T00:00:00"),
    ("2024-02-29T10:00:00", "inLast", 1, "years", "2023-02-28T10:00:00", "2024-02-29T10:00:00"),
    ("2024-02-29T10:00:00", "inNext", 1, "years", "2024-02-29T10:00:00", "2025-02-28T10:00:00"),
    ("2024-02-29T10:00:00", "inNext", 4, "years", "2024-02-29T10:00:00", "2028-02-29T10:00:00"),
    ("2020-06-15T00:00:00", "inLast", 20, "years", "2000-06-15T00:00:00", "2020-06-15T00:00:00"),
]


@pytest.mark.parametrize("case", RELATIVE_CASES, ids=lambda c: f"{c[1]}-{c[2]}-{c[3]}-from-{c[0]}")
def test_relative_dates_select_the_inclusive_calendar_window(case):
    now_text, op, number, unit, low_text, high_text = case
    now, low, high = d(now_text), d(low_text), d(high_text)
    assert relative_bounds(op, number, unit, now) == (low, high)
    micro = dt.timedelta(microseconds=1)
    world = World.new()
    prop = world.prop(PropertyType.DATE)
    for label, value in {
        "before": low - micro,
        "low": low,
        "middle": low + (high - low) / 2,
        "high": high,
        "after": high + micro,
        "array-in": [low - dt.timedelta(days=400), high],
        "array-out": [low - micro, high + micro],
    }.items():
        world.set(label, prop, value)
    world.set("none", prop, MISSING)
    world.set("invalid", prop, INVALID)
    spec = RuleSpec(prop.pk, prop.type, op, relative_number=number, relative_unit=unit)
    world.assert_selects([spec], {"low", "middle", "high", "array-in"}, now=now)


def test_relative_bounds_respect_the_timezone_of_now():
    plus2 = dt.timezone(dt.timedelta(hours=2))
    now = dt.datetime(2024, 3, 31, 1, 0, tzinfo=plus2)  # 2024-03-30T23:00Z
    low, high = relative_bounds("inLast", 1, "months", now)
    assert (low, high) == (dt.datetime(2024, 2, 29, 1, 0, tzinfo=plus2), now)
    # A naive now is UTC.
    assert relative_bounds("inNext", 1, "days", dt.datetime(2024, 1, 1)) == (
        d("2024-01-01T00:00:00"),
        d("2024-01-02T00:00:00"),
    )


def test_relative_bounds_clamp_to_the_representable_range():
    low, high = relative_bounds("inLast", 100_000, "years", NOW)
    assert (low, high) == (dt.datetime.min.replace(tzinfo=UTC), NOW)
    low, high = relative_bounds("inNext", 10**12, "days", NOW)
    assert (low, high) == (NOW, dt.datetime.max.replace(tzinfo=UTC))
    world = World.new()
    prop = world.prop(PropertyType.DATE)
    world.set("old", prop, d("1900-01-01T00:00:00"))
    world.set("ancient", prop, d("0001-01-01T00:00:00"))
    world.set("future", prop, d("9999-12-31T00:00:00"))
    world.assert_selects(
        [RuleSpec(prop.pk, prop.type, "inLast", relative_number=100_000, relative_unit="years")],
        {"old", "ancient"},
    )
    world.assert_selects(
        [RuleSpec(prop.pk, prop.type, "inNext", relative_number=10**12, relative_unit="days")],
        {"future"},
    )


@pytest.mark.parametrize(
    "op, number, unit",
    [
        ("inLast", 0, "days"),
        ("inLast", -1, "days"),
        ("inNext", None, "days"),
        ("inNext", 1, "fortnights"),
        ("inNext", 1, ""),
        ("eq", 1, "days"),
        ("inLast", True, "days"),
    ],
)
def test_relative_bounds_reject_bad_parameters(op, number, unit):
    with pytest.raises(ValueError):
        relative_bounds(op, number, unit, NOW)


@pytest.mark.parametrize(
    "start, months, expected",
    [
        ("2024-01-31T00:00:00", 1, "2024-02-29T00:00:00"),
        ("2023-01-31T00:00:00", 1, "2023-02-28T00:00:00"),
        ("2024-03-31T00:00:00", -1, "2024-02-29T00:00:00"),
        ("2024-12-15T00:00:00", 1, "2025-01-15T00:00:00"),
        ("2024-01-15T00:00:00", -1, "2023-12-15T00:00:00"),
        ("2024-05-31T00:00:00", -15, "2023-02-28T00:00:00"),
        ("2024-08-31T00:00:00", 1, "2024-09-30T00:00:00"),
        ("2024-02-29T00:00:00", 12, "2025-02-28T00:00:00"),
        ("2024-02-29T00:00:00", 48, "2028-02-29T00:00:00"),
        ("2024-07-04T23:59:59.999999", 0, "2024-07-04T23:59:59.999999"),
    ],
)
def test_add_months_clamps_the_day(start, months, expected):
    assert add_months(d(start), months) == d(expected)


def test_add_months_overflows_outside_the_calendar():
    with pytest.raises(OverflowError):
        add_months(d("9999-12-01T00:00:00"), 1)
    with pytest.raises(OverflowError):
        add_months(d("0001-01-01T00:00:00"), -1)


def test_every_relative_unit_is_handled():
    for unit in RelativeUnit.values:
        low, high = relative_bounds("inLast", 1, unit, NOW)
        assert low < high == NOW
