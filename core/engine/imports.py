"""Import stage of the pipeline: one batch of source rows -> records and typed record properties.

Per batch, whatever its size, a fixed number of statements:
  1. one SELECT resolves the batch's keys to records (unique identifier values);
  2. one INSERT creates the missing records (only sources that own their identifying property);
  3. one SELECT finds other records already holding this batch's unique values (merge/conflict);
  4. the rows are unpivoted in Python, coerced to their property types, and bulk-loaded into a
     staging table (COPY on PostgreSQL, executemany on SQLite);
  5. one INSERT ... ON CONFLICT DO UPDATE ... WHERE <value is distinct> RETURNING writes the typed
     values and yields exactly the (record, property) pairs that changed;
  6. (arrays only) one DELETE drops positions that no longer exist;
  7. one UPDATE marks the batch's records ready and refreshes their invalid flag.
A value that does not parse for its property type is kept raw with an invalid reason; the run
goes on. Merges (two records that turn out to be one customer) are rare and handled pair by pair.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.utils import timezone

from connectors.base import PropertySpec
from core import values
from core.choices import VALUE_KIND_BY_TYPE, AggregationMethod, PropertyType, RecordState, ValueKind
from core.engine import db
from core.models import Property, Source

logger = logging.getLogger(__name__)

STAGE_COLUMNS = (
    "record_id",
    "property_id",
    "position",
    "raw_value",
    "value_text",
    "value_number",
    "value_datetime",
    "value_boolean",
    "unique_value",
    "invalid_reason",
)
_KIND_COLUMN = {"text": 4, "number": 5, "datetime": 6, "boolean": 7}


@dataclass
class SourcePlan:
    """Everything a batch needs to know about its source, loaded once per run."""

    source: Source
    model_id: int
    key_column: str
    key_property: Property
    creates_records: bool
    row_properties: list[Property]
    aggregate_properties: list[Property]
    watermark_column: str | None
    filters: list[dict]
    # The region phone numbers without a prefix are read in (the setting, read once per plan:
    # prepare_batch reads no database).
    phone_country: str = values.DEFAULT_COUNTRY

    @property
    def written_properties(self) -> list[Property]:
        return [self.key_property, *self.row_properties, *self.aggregate_properties]


@dataclass
class BatchResult:
    record_ids: list[int] = field(default_factory=list)
    # canonical key -> its record (after merges), for the keys the batch wrote
    key_to_record: dict[str, int] = field(default_factory=dict)
    created: set[int] = field(default_factory=set)
    created_rows: list[dict] = field(default_factory=list)  # the source rows that created them
    # PostgreSQL: the typed values written for records that had none ({record: {property:
    # [values by position]}}), so the export stage need not read them back.
    fresh_values: dict[int, dict[int, list]] = field(default_factory=dict)
    changed: dict[int, set[int]] = field(default_factory=dict)  # record id -> changed property ids
    invalid_records: set[int] = field(default_factory=set)
    skipped: int = 0
    merged: int = 0
    merged_into: set[int] = field(
        default_factory=set
    )  # survivors of merges: re-evaluate everything
    errors: dict[str, int] = field(default_factory=dict)
    enriched: bool = False  # the `with_fresh` rows were written with this batch
    # import_batch(defer=True): the COPY of the new records' values may still be running;
    # settle() (waits, raising its error) must come before the next use of the database.
    pending: Callable[[], None] | None = None

    def settle(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending()

    def error(self, message: str) -> None:
        self.errors[message] = self.errors.get(message, 0) + 1


def source_plan(source: Source) -> SourcePlan:
    """Load the source's mapping, properties and schedule options. Raises ValueError if the
    source cannot be read (no mapping)."""
    mapping = source.mappings.select_related("property").first()
    if mapping is None:
        raise ValueError(
            f"Source {source.name!r} has no mapping: map a source column to a unique property."
        )
    key_property = mapping.property
    is_query = source.type.endswith("-query") or "query" in (source.options or {})
    own = list(
        source.properties.filter(state__in=["ready", "draft"])
        .exclude(pk=key_property.pk)
        .prefetch_related("filters")
    )
    # Only sources that own a unique property create records (DESIGN.md section 3, Identity).
    creates = key_property.source_id == source.pk or any(p.unique for p in own)
    row_props, agg_props = [], []
    for prop in own:
        opts = prop.options or {}
        method = opts.get("aggregationMethod", AggregationMethod.EXACT)
        from_row = (
            creates
            and not is_query
            and opts.get("column")
            and method in (AggregationMethod.EXACT, "exact")
            and not prop.is_array
            and not prop.filters.all()
        )
        (row_props if from_row else agg_props).append(prop)
    schedule = getattr(source, "schedule", None) if hasattr(source, "schedule") else None
    watermark_column = None
    filters: list[dict] = []
    if schedule is not None:
        watermark_column = (schedule.options or {}).get("column") or None
        filters = [f.as_spec() for f in schedule.filters.all()]
    phones = any(p.type == PropertyType.PHONE_NUMBER for p in (key_property, *own))
    return SourcePlan(
        source=source,
        model_id=source.model_id,
        key_column=mapping.remote_key,
        key_property=key_property,
        creates_records=creates,
        row_properties=row_props,
        aggregate_properties=agg_props,
        watermark_column=watermark_column,
        filters=filters,
        phone_country=values.default_country() if phones else values.DEFAULT_COUNTRY,
    )


def property_spec(prop: Property) -> PropertySpec:
    return PropertySpec(
        key=prop.key,
        options=dict(prop.options or {}),
        filters=tuple(f.as_spec() for f in prop.filters.all()),
        is_array=prop.is_array,
    )


def read_columns(plan: SourcePlan) -> list[str] | None:
    cols = [plan.key_column] + [p.options["column"] for p in plan.row_properties]
    return list(dict.fromkeys(cols))


def stage_value(prop: Property, raw: Any, country: str | None = None) -> tuple:
    """(raw_value, text, number, datetime, boolean, unique_value, invalid_reason) for one value.
    country: see values.coerce."""
    try:
        typed = values.coerce(prop.type, raw, country=country)
    except ValueError as exc:
        return (values.raw_text(raw), None, None, None, None, None, str(exc))
    out: list[Any] = [values.raw_text(raw), None, None, None, None, None, None]
    if typed is not None:
        kind = values.value_kind(prop.type)
        out[_KIND_COLUMN[kind] - 3] = db.ts(typed) if kind == "datetime" else typed
        if prop.unique:
            out[5] = values.canonical(prop.type, typed)
            if len(out[5]) > values.MAX_UNIQUE_TEXT:  # would overflow unique_value: flag it
                reason = f"is longer than {values.MAX_UNIQUE_TEXT} characters, too long to identify a record"
                return (out[0], None, None, None, None, None, reason)
    return tuple(out)


_EMPTY = (None, None, None, None, None, None, None)
# Where a staging row holds its typed value, by value kind: (key, property, position, raw_value,
# value_text, value_number, value_datetime, value_boolean, ...).
_TYPED_AT = {ValueKind.TEXT: 4, ValueKind.NUMBER: 5, ValueKind.DATETIME: 6, ValueKind.BOOLEAN: 7}
_first = itemgetter(0)
_N = "\\N"  # NULL in COPY's text format
_EMPTY_FRAGMENT = "\t".join([_N] * 7)


def copy_fragment(value_columns: tuple) -> str:
    """The seven value columns of a staged row (raw_value ... invalid_reason) in COPY's text
    format; the general form of what the fast paths of `stager(..., fragments=True)` build."""
    return "\t".join([db.copy_value(v) for v in value_columns[:7]])


def stager(prop: Property, fragments: bool = False, country: str | None = None):
    """A function raw -> stage_value(prop, raw, country), with fast paths for the values drivers
    usually hand over (str for text, int, Decimal, aware datetime). Anything else takes the
    general path, so results are identical (tests/engine/test_stager.py checks that).
    country: see values.coerce (None: the setting, read here once).

    fragments (PostgreSQL): each result carries an eighth item, its value columns already in
    COPY's text format (copy_fragment). The fast paths know their value's type, so they write it
    directly; formatting ten rows per record value by value was the largest Python cost of a
    first sync."""
    from decimal import Decimal

    ptype, unique = prop.type, prop.unique
    pg = fragments or db.is_postgres()
    esc = db.COPY_ESCAPES
    if ptype == PropertyType.PHONE_NUMBER and country is None:
        country = values.default_country()

    if fragments:

        def slow(raw):
            staged = stage_value(prop, raw, country)
            return (*staged, copy_fragment(staged))

        empty = (*_EMPTY, _EMPTY_FRAGMENT)
    else:

        def slow(raw):
            return stage_value(prop, raw, country)

        empty = _EMPTY

    if ptype == PropertyType.STRING:

        def fast(raw):
            if raw.__class__ is str and raw and len(raw) <= values.MAX_TEXT and "\x00" not in raw:
                if not fragments:
                    return (raw, raw, None, None, None, raw if unique else None, None)
                e = raw.translate(esc)
                return (
                    raw, raw, None, None, None, raw if unique else None, None,
                    f"{e}\t{e}\t\\N\t\\N\t\\N\t{e}\t\\N" if unique else f"{e}\t{e}\t\\N\t\\N\t\\N\t\\N\t\\N",
                )
            return empty if raw is None else slow(raw)

    elif ptype == PropertyType.EMAIL:
        match = values._EMAIL.match

        def fast(raw):
            if raw.__class__ is str:
                text = raw.strip()
                if text and match(text):
                    if not fragments:
                        return (raw, text, None, None, None, text if unique else None, None)
                    e = text.translate(esc)
                    r = e if text is raw else raw.translate(esc)
                    return (
                        raw, text, None, None, None, text if unique else None, None,
                        f"{r}\t{e}\t\\N\t\\N\t\\N\t{e}\t\\N" if unique else f"{r}\t{e}\t\\N\t\\N\t\\N\t\\N\t\\N",
                    )
            return empty if raw is None else slow(raw)

    elif ptype in (PropertyType.INTEGER, PropertyType.FLOAT):
        integer = ptype == PropertyType.INTEGER

        def fast(raw):
            cls = raw.__class__
            if cls is int and -(2**53) <= raw <= 2**53:
                text = str(raw)
                number = float(raw)
                if not fragments:
                    return (text, None, number, None, None, text if unique else None, None)
                return (
                    text, None, number, None, None, text if unique else None, None,
                    f"{text}\t\\N\t{number!r}\t\\N\t\\N\t{text}\t\\N" if unique else f"{text}\t\\N\t{number!r}\t\\N\t\\N\t\\N\t\\N",
                )
            if cls is Decimal and not integer and not unique and raw.is_finite():
                number = float(raw)
                if -1e308 < number < 1e308:
                    text = str(raw)
                    if not fragments:
                        return (text, None, number, None, None, None, None)
                    return (text, None, number, None, None, None, None, f"{text}\t\\N\t{number!r}\t\\N\t\\N\t\\N\t\\N")
            return empty if raw is None else slow(raw)

    elif ptype == PropertyType.DATE:
        utc, zero = values.dt.UTC, values.dt.timedelta(0)

        def fast(raw):
            # Years 1 and 9999 take the general path: in UTC they may fall outside Python's dates.
            if raw.__class__ is values.dt.datetime and raw.tzinfo is not None and not unique and 1 < raw.year < 9999:
                when = raw.astimezone(utc)
                text = raw.isoformat()
                if not fragments:
                    # SQLite: Django's stored form of a UTC datetime, as db.ts() gives it.
                    return (text, None, None, when if pg else str(when.replace(tzinfo=None)), None, None, None)
                # Same instant and offset: one text serves both columns.
                typed = text if raw.utcoffset() == zero else when.isoformat()
                return (text, None, None, when, None, None, None, f"{text}\t\\N\t\\N\t{typed}\t\\N\t\\N\t\\N")
            return empty if raw is None else slow(raw)

    else:

        def fast(raw):
            return empty if raw is None else slow(raw)

    return fast


@dataclass
class PreparedBatch:
    """A batch's source rows keyed and staged, before any database work: `prepare_batch` needs
    no application database, so the next batch can be prepared while this one is written."""

    by_key: dict[str, dict]  # canonical key -> its row (a later duplicate row wins)
    raw_by_key: dict[str, Any]
    staged: list[tuple]  # staging rows; their first item is the canonical key, not yet a record
    skipped: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def prepare_batch(
    *,
    plan: SourcePlan,
    rows: list[dict],
    aggregates: dict[Any, dict[str, Any]],
    fragments: bool,
) -> PreparedBatch:
    """Coerce and canonicalise the keys (bad keys are skipped and reported), and unpivot every
    row into staging rows coerced to their property's type. fragments: see `stager`."""
    key_prop = plan.key_property
    prepared = PreparedBatch(by_key={}, raw_by_key={}, staged=[])
    by_key, raw_by_key = prepared.by_key, prepared.raw_by_key
    for row in rows:
        raw_key = row.get(plan.key_column)
        try:
            typed = values.coerce(key_prop.type, raw_key, country=plan.phone_country)
        except ValueError as exc:
            prepared.skipped += 1
            message = f"{plan.key_column}: {exc}; row skipped"
            prepared.errors[message] = prepared.errors.get(message, 0) + 1
            continue
        if typed is None:
            prepared.skipped += 1
            continue
        canon = values.canonical(key_prop.type, typed)
        if canon in by_key:  # a later row for the same key wins; say so on the run
            message = f"{plan.key_column}: more than one row has this key; the last row read is kept"
            prepared.errors[message] = prepared.errors.get(message, 0) + 1
        by_key[canon] = row
        raw_by_key[canon] = raw_key

    staged = prepared.staged
    empty = (*_EMPTY, _EMPTY_FRAGMENT) if fragments else _EMPTY
    country = plan.phone_country
    stage_key = stager(key_prop, fragments, country)
    row_stagers = [
        (prop.pk, prop.options["column"], stager(prop, fragments, country))
        for prop in plan.row_properties
    ]
    agg_stagers = [(prop, stager(prop, fragments, country)) for prop in plan.aggregate_properties]
    for key, row in by_key.items():
        if plan.creates_records:  # the identity belongs to the sources that create records
            staged.append((key, key_prop.pk, 0, *stage_key(raw_by_key[key])))
        for pid, column, stage in row_stagers:
            staged.append((key, pid, 0, *stage(row.get(column))))
        agg = (
            aggregates.get(_agg_key(row.get(plan.key_column)), {})
            if plan.aggregate_properties
            else {}
        )
        for prop, stage in agg_stagers:
            value = agg.get(prop.key)
            if prop.is_array:
                items = (
                    list(value)
                    if isinstance(value, (list, tuple))
                    else ([] if value is None else [value])
                )
                if not items:
                    staged.append((key, prop.pk, 0, *empty))
                for pos, item in enumerate(items):
                    staged.append((key, prop.pk, pos, *stage(item)))
            else:
                if value is None and prop.aggregation_method in (
                    AggregationMethod.COUNT,
                    AggregationMethod.SUM,
                ):
                    value = 0  # as Grouparoo: nothing to count or add up is 0
                staged.append((key, prop.pk, 0, *stage(value)))
    return prepared


def import_batch(
    *,
    plan: SourcePlan,
    rows: list[dict],
    aggregates: dict[Any, dict[str, Any]],
    now=None,
    fresh: set[int] | frozenset[int] = frozenset(),
    prepared: PreparedBatch | None = None,
    with_fresh: Sequence[tuple[SourcePlan, PreparedBatch]] = (),
    defer: bool = False,
    assume_new: bool = False,
    known_records: dict[str, int] | None = None,
) -> BatchResult:
    """Write one batch. Must run inside a transaction; idempotent: writing the same batch twice
    changes nothing the second time (no changed pairs are returned).

    fresh: records known to hold no value of this source's properties yet (just created in the
    same transaction); their rows skip the change-detecting upsert.
    prepared: prepare_batch() of these rows and aggregates, if the caller made it already.
    with_fresh: other sources' rows prepared for the same keys (a first sync's secondary
    sources): written with this batch, and result.enriched set, when the batch creates the
    record of every key it reads; otherwise ignored (the caller enriches as before).
    defer: the caller calls result.settle() before its next use of the database, so it can run
    Python while the new records' values are being written (see BatchResult.pending).
    assume_new (a source that creates records): take every key for new and every unique value
    for free, without looking them up (a first sync's page, two index probes per record). The
    unique index on (property, unique value) is the check: if the assumption is wrong the batch
    raises IntegrityError (at settle() when deferred), and the caller, having run it in a
    savepoint, rolls back to it and writes the batch again without the assumption.
    known_records: the records of this batch's keys, already resolved in the same transaction
    (another source's batch keyed by the same property: its result's key_to_record); they are
    not looked up again, and a key it lacks has no record."""
    db_clock = now is None and db.is_postgres()
    if db_clock:
        # The batch's time is its transaction's, now(): the values it inserts take it as their
        # database default instead of each carrying it in the COPY (a sixth of that COPY's
        # cost), and everything else it writes carries the same instant.
        now = db.fetchall("SELECT now()")[0][0]
    now = now or timezone.now()
    if prepared is None:
        prepared = prepare_batch(
            plan=plan, rows=rows, aggregates=aggregates, fragments=db.is_postgres()
        )
    result = BatchResult(skipped=prepared.skipped, errors=dict(prepared.errors))
    key_prop = plan.key_property
    by_key = prepared.by_key
    if not by_key:
        return result

    # 1. Resolve keys to records.
    assume_new = assume_new and plan.creates_records
    found: dict[str, int] = {}
    if known_records is not None:
        found = {k: known_records[k] for k in by_key if k in known_records}
    elif not assume_new:
        cond, params = db.in_list("unique_value", list(by_key))
        found = dict(
            db.fetchall(
                f"SELECT unique_value, record_id FROM core_recordproperty WHERE property_id = %s AND {cond}",
                [key_prop.pk, *params],
            )
        )
    missing = [k for k in by_key if k not in found]
    dropped = False
    if missing:
        if plan.creates_records:
            new_ids = _create_records(plan.model_id, len(missing), now)
            for key, rid in zip(missing, new_ids, strict=True):
                found[key] = rid
                result.created.add(rid)
        else:
            result.skipped += len(missing)
            dropped = True
            for key in missing:
                by_key.pop(key)
    if not by_key:
        return result

    # 2. The staged rows (values coerced to their property's types) stay keyed by their
    # canonical key; key_to_record gives each its record (merges below update it).
    key_to_record = {k: found[k] for k in by_key}
    k2r = result.key_to_record = key_to_record
    staged = prepared.staged
    if dropped:
        staged = [r for r in staged if r[0] in k2r]

    # 3. Unique values held by other records: merge, or flag as duplicates.
    staged = _resolve_unique_conflicts(plan, staged, result, key_to_record, held=not assume_new)
    if result.created:
        result.created_rows = [by_key[k] for k, rid in key_to_record.items() if rid in result.created]

    # 4-6. Rows of records that have none yet (created by this batch, or new records a
    # secondary source enriches) go straight into the table with COPY; the rest through the
    # staging table and the upsert that reports what changed.
    fresh_ids = result.created | (set(fresh) & set(k2r.values()))
    fresh_keys = {k for k, rid in k2r.items() if rid in fresh_ids} if fresh_ids else set()
    direct = [r for r in staged if r[0] in fresh_keys] if fresh_keys else []
    staged_rest = staged
    changed_map = result.changed
    extra: list[tuple] = []
    if (
        with_fresh
        and len(fresh_keys) == len(k2r)
        and not result.merged
        and not dropped
        and all(set(other.by_key) == fresh_keys for _, other in with_fresh)
    ):
        for _, other in with_fresh:
            extra.extend(other.staged)
        result.enriched = True
    if direct:
        staged_rest = [r for r in staged if r[0] not in fresh_keys] if len(direct) < len(staged) else []
        direct.extend(extra)
        result.pending = _insert_direct(direct, k2r, now, db_clock=db_clock)
        try:
            # While the rows are inserted: every direct row is a change; on PostgreSQL its
            # typed value is kept for the export stage. Rows come grouped by key, in position
            # order within each property.
            pg, fresh_values = db.is_postgres(), result.fresh_values
            props = [*plan.written_properties, *(p for op, _ in with_fresh for p in op.written_properties)]
            rows_left = direct
            if pg and not any(p.is_array for p in props):
                # One value per property: a key's rows at once. A property's type says which
                # typed column holds its value (None for a value that did not parse, as the
                # table's rows give when read back).
                at = {p.pk: _TYPED_AT[VALUE_KIND_BY_TYPE[p.type]] for p in props}
                for key, group in groupby(direct, _first):
                    rid = k2r[key]
                    vals = {r[1]: [r[at[r[1]]]] for r in group}
                    known = fresh_values.get(rid)  # a key's rows come in two runs with enrichment
                    if known is None:
                        fresh_values[rid] = vals
                    else:
                        known.update(vals)
                    changed_map.setdefault(rid, set()).update(vals)
                rows_left = ()
            last_key, pids, vals = None, set(), {}
            for r in rows_left:
                if r[0] is not last_key:
                    last_key = r[0]
                    rid = k2r[last_key]
                    pids = changed_map.setdefault(rid, set())
                    if pg:
                        vals = fresh_values.setdefault(rid, {})
                pids.add(r[1])
                if pg:
                    typed = r[4] if r[4] is not None else r[5] if r[5] is not None else r[6] if r[6] is not None else r[7]
                    if typed is not None:
                        vals.setdefault(r[1], []).append(typed)
        except BaseException:
            result.settle()
            raise
    changed: list[tuple[int, int]] = []
    array_props = [p.pk for p in plan.written_properties if p.is_array]
    if staged_rest:
        result.settle()
        _load_stage(staged_rest, k2r)
        if array_props:
            # Before the upsert: on PostgreSQL it first drops the staged rows equal to the
            # stored ones, and an array position missing from the stage is deleted as stale.
            changed += _delete_stale_positions(array_props, sorted(set(k2r.values())))
        changed += _upsert_from_stage(now)
    elif array_props:
        result.settle()
        changed += _delete_stale_positions(array_props, sorted(set(k2r.values())))
    for rid, pid in changed:
        changed_map.setdefault(rid, set()).add(pid)
    result.record_ids = sorted(set(k2r.values()))
    invalid_rows = [r for r in staged if r[9] is not None] + [r for r in extra if r[9] is not None]
    result.invalid_records = {k2r[r[0]] for r in invalid_rows}
    if invalid_rows:
        prop_keys = {p.pk: p.key for p in plan.written_properties}
        for other_plan, _ in with_fresh if extra else ():
            prop_keys.update((p.pk, p.key) for p in other_plan.written_properties)
        for r in invalid_rows:
            result.error(f"{prop_keys.get(r[1], r[1])}: {_reason_class(r[9])}")

    # 7. Records: ready (revived if they had been deleted), invalid flag refreshed where changed.
    # Records without rows before this batch: their invalid flag follows from the staged rows
    # alone (set, never cleared); the others are recomputed from the table.
    flag_invalid = sorted({rid for rid in result.invalid_records if rid in fresh_ids})
    if flag_invalid:
        result.settle()
        cond, params = db.in_list("id", flag_invalid)
        db.execute(f"UPDATE core_record SET invalid = %s WHERE {cond}", [True, *params])
    recheck = sorted(set(result.changed) - fresh_ids)
    revive = [r for r in result.record_ids if r not in fresh_ids] if plan.creates_records else []
    if recheck or revive:
        result.settle()
        _refresh_records(revive, plan.creates_records, recheck, now)
    if not defer:
        result.settle()
    return result


def _reason_class(reason: str) -> str:
    # Aggregate run errors by kind, not by each distinct bad value.
    return reason.split(" is ", 1)[-1] if " is " in reason else reason


def _agg_key(raw_key: Any) -> Any:
    return raw_key


def _create_records(model_id: int, count: int, now) -> list[int]:
    ts = db.ts(now)
    if db.is_postgres():
        sql = (
            "INSERT INTO core_record (model_id, state, invalid, created_at, updated_at) "
            "SELECT %s, %s, false, %s, %s FROM generate_series(1, %s) RETURNING id"
        )
    else:
        sql = (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
            "INSERT INTO core_record (model_id, state, invalid, created_at, updated_at) "
            "SELECT %s, %s, 0, %s, %s FROM n RETURNING id"
        )
    # Created ready: their properties are written in the same transaction, nobody sees them before.
    params = (
        [model_id, RecordState.READY, ts, ts, count]
        if db.is_postgres()
        else [count, model_id, RecordState.READY, ts, ts]
    )
    ids = sorted(r[0] for r in db.fetchall(sql, params))
    return ids


def _resolve_unique_conflicts(
    plan: SourcePlan, staged: list[tuple], result: BatchResult, key_to_record, *, held: bool = True
) -> list[tuple]:
    """Unique values (other than the key) already held by another record, or twice in the batch.

    Policy: if the other record has its own value for this source's key property, the two are
    different customers sharing an identifier; the newer claim is flagged invalid ("duplicate"):
    as in Grouparoo, its typed value is left empty (only the raw value is kept, for display),
    so group rules and exports do not see it.
    If it has none (it came from another source, e.g. keyed by email), the two are one customer
    and are merged: the older record survives (see core.services.records.records_merge).

    Staged rows are keyed by canonical key; key_to_record is updated in place by merges. Returns
    the rows, with flagged duplicates replaced (a new list only if there are any).
    held=False: other records are taken to hold none of the values (import_batch's assume_new,
    which the unique index checks); duplicates within the batch are flagged all the same.
    """
    k2r, key_pk = key_to_record, plan.key_property.pk
    unique_at = [i for i, r in enumerate(staged) if r[8] is not None and r[1] != key_pk]
    if not unique_at:
        return staged
    unique_rows = [staged[i] for i in unique_at]
    holders: dict[tuple[int, str], int] = {}
    if held:
        pids = sorted({r[1] for r in unique_rows})
        cond_p, params_p = db.in_list("property_id", pids)
        cond_v, params_v = db.in_list("unique_value", sorted({r[8] for r in unique_rows}))
        holders = {
            (pid, val): rid
            for pid, val, rid in db.fetchall(
                f"SELECT property_id, unique_value, record_id FROM core_recordproperty WHERE {cond_p} AND {cond_v}",
                [*params_p, *params_v],
            )
        }
    conflicts = {
        (k2r[r[0]], holders[(r[1], r[8])])
        for r in unique_rows
        if holders.get((r[1], r[8]), k2r[r[0]]) != k2r[r[0]]
    }
    remap: dict[int, int] = {}
    if conflicts:
        from core.services.records import records_merge

        others = sorted({o for _, o in conflicts})
        cond_o, params_o = db.in_list("record_id", others)
        keyed = {
            rid
            for (rid,) in db.fetchall(
                f"SELECT record_id FROM core_recordproperty WHERE property_id = %s AND unique_value IS NOT NULL AND {cond_o}",
                [key_pk, *params_o],
            )
        }
        for mine, other in sorted(conflicts):
            if other in keyed or mine in remap:
                continue
            survivor = records_merge(
                record_ids=(mine, other), reason=f"source {plan.source.name!r}"
            )
            loser = other if survivor == mine else mine
            remap[loser] = survivor
            result.merged += 1
            result.merged_into.add(survivor)
            result.created.discard(loser)
            for h, rid in list(holders.items()):
                if rid == loser:
                    holders[h] = survivor
        if remap:
            for k, rid in k2r.items():
                k2r[k] = remap.get(rid, rid)
    seen: dict[tuple[int, str], int] = {}
    out = None
    for i, r in zip(unique_at, unique_rows, strict=True):
        rid = k2r[r[0]]
        holder = holders.get((r[1], r[8]), rid)
        first = seen.setdefault((r[1], r[8]), rid)
        if holder != rid or first != rid:
            other = holder if holder != rid else first
            r = (
                *r[:4],
                None,  # typed value: empty, as for any invalid value
                None,
                None,
                None,
                None,  # unique value
                f"duplicate unique value {r[3]!r}: already held by record {other}",
            )
            if len(staged[0]) > 10:  # PostgreSQL: its COPY text changed too
                r = (*r, copy_fragment(r[3:]))
            if out is None:
                out = list(staged)
            out[i] = r
    return staged if out is None else out


def _stage_table() -> str:
    if db.is_postgres():
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS grp_stage (record_id bigint, property_id bigint, position integer, "
            "raw_value text, value_text text, value_number double precision, value_datetime timestamptz, "
            "value_boolean boolean, unique_value varchar(500), invalid_reason text) ON COMMIT DELETE ROWS"
        )
        # Several batches can share one transaction (secondary sources, tests): start empty.
        db.execute("DELETE FROM grp_stage")
    else:
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS grp_stage (record_id integer, property_id integer, position integer, "
            "raw_value text, value_text text, value_number real, value_datetime datetime, value_boolean bool, "
            "unique_value varchar(500), invalid_reason text)"
        )
        db.execute("DELETE FROM grp_stage")
    return "grp_stage"


def _load_stage(staged: list[tuple], k2r: dict[str, int]) -> None:
    """Staged rows (keyed by canonical key) into the staging table, with their records."""
    _stage_table()
    if len(staged[0]) > 10:  # PostgreSQL: the value columns are COPY text already
        db.copy_lines(
            "grp_stage", STAGE_COLUMNS, [f"{k2r[r[0]]}\t{r[1]}\t{r[2]}\t{r[10]}" for r in staged]
        )
    else:
        db.bulk_insert("grp_stage", STAGE_COLUMNS, [(k2r[r[0]], *r[1:]) for r in staged])


def _insert_direct(rows: list[tuple], k2r: dict[str, int], now, *, db_clock: bool = False) -> Callable[[], None]:
    """Plain bulk insert (COPY on PostgreSQL) for records that have no rows yet; rows are keyed
    by canonical key, k2r gives their records. Returns a function to call before the next use
    of the database: on PostgreSQL the COPY runs on while the caller goes on in Python.

    db_clock: `now` is the transaction's now(), so state, changed_at and confirmed_at are left
    to their database defaults ('ready', now())."""
    ts = db.ts(now)
    columns = (*STAGE_COLUMNS, "state", "changed_at", "confirmed_at")
    if len(rows[0]) > 10:  # PostgreSQL: the value columns are COPY text already
        step = db.COPY_CHUNK_ROWS
        if db_clock:
            columns, tail = STAGE_COLUMNS, ""
        else:
            tail = f"\tready\t{db.copy_value(ts)}\t{db.copy_value(ts)}"
        chunks = (
            [f"{k2r[r[0]]}\t{r[1]}\t{r[2]}\t{r[10]}{tail}" for r in rows[i : i + step]]
            for i in range(0, len(rows), step)
        )
        return db.copy_chunks_in_background("core_recordproperty", columns, chunks)
    db.bulk_insert(
        "core_recordproperty", columns, [(k2r[r[0]], *r[1:], "ready", ts, ts) for r in rows]
    )
    return lambda: None


def _upsert_from_stage(now) -> list[tuple[int, int]]:
    ts = db.ts(now)
    value_columns = STAGE_COLUMNS[3:]  # raw_value ... invalid_reason
    if db.is_postgres():
        # Staged rows equal to the stored ones leave first, by reading alone. ON CONFLICT ...
        # DO UPDATE ... WHERE locks every conflicting row before its WHERE says "unchanged",
        # and a lock writes the row's page and WAL: an incremental sync of 10,000 records out
        # of 1,000,000 locked 70,000 unchanged rows on pages all over the table (1.7 s).
        # OFFSET 0 keeps the subquery a probe of (record, property, position) per staged row.
        same = " AND ".join(f"rp.{c} IS NOT DISTINCT FROM grp_stage.{c}" for c in value_columns)
        db.execute(
            "DELETE FROM grp_stage WHERE EXISTS (SELECT 1 FROM core_recordproperty rp "
            "WHERE rp.record_id = grp_stage.record_id AND rp.property_id = grp_stage.property_id "
            f"AND rp.position = grp_stage.position AND {same} OFFSET 0)"
        )
    distinct = " OR ".join(f"core_recordproperty.{c} IS DISTINCT FROM excluded.{c}" for c in value_columns)
    sets = ", ".join(f"{c} = excluded.{c}" for c in (*value_columns, "changed_at", "confirmed_at"))
    cols = ", ".join(STAGE_COLUMNS)
    sql = (
        f"INSERT INTO core_recordproperty ({cols}, state, changed_at, confirmed_at) "
        f"SELECT {cols}, 'ready', %s, %s FROM grp_stage WHERE true "
        f"ON CONFLICT (record_id, property_id, position) DO UPDATE SET {sets} WHERE {distinct} "
        f"RETURNING record_id, property_id"
    )
    return [tuple(r) for r in db.fetchall(sql, [ts, ts])]


def _delete_stale_positions(
    property_ids: list[int], record_ids: list[int]
) -> list[tuple[int, int]]:
    cond_p, params_p = db.in_list("property_id", property_ids)
    cond_r, params_r = db.in_list("record_id", record_ids)
    sql = (
        f"DELETE FROM core_recordproperty WHERE {cond_p} AND {cond_r} AND NOT EXISTS ("
        "SELECT 1 FROM grp_stage s WHERE s.record_id = core_recordproperty.record_id "
        "AND s.property_id = core_recordproperty.property_id AND s.position = core_recordproperty.position) "
        "RETURNING record_id, property_id"
    )
    return [tuple(r) for r in db.fetchall(sql, [*params_p, *params_r])]


def _refresh_records(record_ids: list[int], creates: bool, changed_ids: list[int], now) -> None:
    """One UPDATE: records whose values changed get their invalid flag recomputed, and a
    record-creating source revives records it reads again after they were deleted. Rows whose
    flags would not change are not written."""
    targets = sorted(set(changed_ids) | (set(record_ids) if creates else set()))
    if not targets:
        return
    ts = db.ts(now)
    cond, params = db.in_list("id", targets)
    invalid = (
        "EXISTS (SELECT 1 FROM core_recordproperty rp WHERE rp.record_id = core_record.id "
        "AND rp.invalid_reason IS NOT NULL)"
    )
    state = "CASE WHEN %s THEN %s ELSE state END"
    db.execute(
        f"UPDATE core_record SET updated_at = %s, invalid = {invalid}, state = {state} "
        f"WHERE {cond} AND (invalid IS DISTINCT FROM {invalid} OR ({state}) <> state)",
        [ts, creates, RecordState.READY, *params, creates, RecordState.READY],
    )


def group_by_key(rows: list[dict], key_column: str) -> dict[Any, list[dict]]:
    out: dict[Any, list[dict]] = defaultdict(list)
    for row in rows:
        out[row.get(key_column)].append(row)
    return out
