"""Secondary sources in a run: every record a run imports gets its other sources' properties
recomputed in the same batch.

Grouparoo marked all of a record's properties pending whenever any source imported it (new,
changed or read again unchanged) and fetched them again from every source of the model. Here
the same happens a batch at a time: for each source of the model that computes properties by
aggregation and is keyed by a property the run's source writes (the "enrichers": purchases,
keyed by the user id, for a users run), the run reads the aggregates of the whole page's keys
with one query (in the read-ahead thread, while the page's own rows are written) and writes
them with one more import batch, whose change-detecting upsert reports what moved. A secondary
source without a schedule of its own is therefore as current as the records other sources read;
a source's full run recomputes every property of every record it reads.

Not recomputed: the properties of sources that create records (a users row is read by the
users source's own runs, never by key for another source's page), and those of a source keyed
by a property the run's source does not write.

Records a page creates hold no secondary values yet: their rows go straight in (COPY), and on a
first sync's page, where every key is new, with the page's own rows (import_batch's with_fresh).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from connectors import registry
from connectors.base import PropertySpec, SourceConnector
from core.engine.imports import (
    PreparedBatch,
    SourcePlan,
    import_batch,
    prepare_batch,
    property_spec,
    source_plan,
)
from core.models import Record, Schedule, Source


class Enricher(NamedTuple):
    """Another source of the model whose properties the run recomputes for what it imports."""

    plan: SourcePlan
    specs: list[PropertySpec]  # its aggregated properties, as the connector takes them
    conn: SourceConnector


# Per enricher, for one page: (keys, aggregates, prepared batch).
EnrichmentRead = tuple[list, dict[Any, dict[str, Any]], PreparedBatch]


@dataclass
class Enrichment:
    """What recomputing a page's secondary properties wrote."""

    changed: dict[int, set[int]] = field(default_factory=dict)  # record -> changed property ids
    # PostgreSQL: the values written for records the page created (see BatchResult.fresh_values).
    fresh_values: dict[int, dict[int, list]] = field(default_factory=dict)
    invalid_records: set[int] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)


class Deferred:
    """A page's enrichment read, computed by the read-ahead thread right after it hands the
    page over: the run writes the page's own rows meanwhile and waits only when it needs the
    aggregates. The reader resumes right after a page is taken, so a page the run holds is
    always fulfilled."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def fulfill(self, compute: Callable[[], Any]) -> None:
        try:
            self._value = compute()
        except BaseException as exc:  # raised in the run's thread, at result()
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


def enrichers_for(plan: SourcePlan) -> list[Enricher]:
    """The other sources of the model that compute properties by aggregation and are keyed by
    a property this source writes (its key, or a value its rows carry), each with an open
    connector: a record this source imports has their properties recomputed. A source
    computed from the records (calculated properties) neither is one nor has any: its run
    follows the others' (runs._start_calculations) and reads every record, so recomputing
    the other sources there would re-aggregate the whole model after every run."""
    if registry.get_source(plan.source.type).reads_records:
        return []
    written = {p.pk for p in [plan.key_property, *plan.row_properties]}
    out = []
    for other in (
        Source.objects.filter(model_id=plan.model_id)
        .exclude(pk=plan.source.pk)
        .select_related("app")
    ):
        try:
            oplan = source_plan(other)
        except ValueError:
            continue
        cls = registry.get_source(other.type)
        if (
            oplan.creates_records
            or not oplan.aggregate_properties
            or oplan.key_property.pk not in written
            or cls.reads_records  # computed from the records once written: _start_calculations
        ):
            continue
        conn = cls(other.app.connector_options(), other.connector_options())
        out.append(Enricher(oplan, [property_spec(p) for p in oplan.aggregate_properties], conn))
    return out


def reading_copies(enrichers: list[Enricher]) -> list[Enricher]:
    """The enrichers with connections of their own, for the read-ahead thread (a connection is
    never shared by two threads). The caller closes them."""
    return [
        e._replace(
            conn=registry.get_source(e.plan.source.type)(
                e.plan.source.app.connector_options(), e.plan.source.connector_options()
            )
        )
        for e in enrichers
    ]


def secondary_watermarks(
    run, plan: SourcePlan, enrichers: list[Enricher]
) -> list[tuple[Schedule, Source, object]]:
    """On a model's very first sync (no records yet, a fresh run of a source that creates
    them), every record the run creates is enriched from the secondary sources as it is
    created. Capture those sources' watermarks now, before reading, so their schedules can
    start from here afterwards."""
    if not enrichers or not plan.creates_records or run.batches_done or run.cursor is not None:
        return []
    if Record.objects.filter(model_id=plan.model_id).exists():
        return []
    out = []
    for oplan, _specs, conn in enrichers:
        other_schedule = Schedule.objects.filter(
            source=oplan.source, high_watermark__isnull=True
        ).first()
        if other_schedule is None or not oplan.watermark_column or oplan.filters:
            continue
        mark = conn.max_watermark(watermark_column=oplan.watermark_column, filters=oplan.filters)
        if mark is not None:
            out.append((other_schedule, oplan.source, mark))
    return out


def enrichment_keys(plan: SourcePlan, oplan: SourcePlan, rows: list[dict]) -> list:
    """The page's values of the property the other source is keyed by, once each, in order."""
    prop = oplan.key_property
    column = plan.key_column if prop.pk == plan.key_property.pk else prop.options.get("column")
    return list(dict.fromkeys(v for r in rows if (v := r.get(column)) is not None))


def enrichment_read(
    plan: SourcePlan, enrichers: list[Enricher], rows: list[dict], fragments: bool
) -> list[EnrichmentRead]:
    """Each enricher's aggregates of the page's keys, one query each, and their staged rows
    (no application database: the read-ahead thread calls this for the next page)."""
    out = []
    for oplan, specs, conn in enrichers:
        keys = enrichment_keys(plan, oplan, rows)
        aggregates = (
            conn.aggregate(
                properties=specs,
                key_column=oplan.key_column,
                key_property=oplan.key_property.key,
                keys=keys,
            )
            if keys
            else {}
        )
        prepared = prepare_batch(
            plan=oplan,
            rows=[{oplan.key_column: k} for k in keys],
            aggregates=aggregates,
            fragments=fragments,
        )
        out.append((keys, aggregates, prepared))
    return out


def enrich_page(
    plan: SourcePlan,
    enrichers: list[Enricher],
    rows: list[dict],
    *,
    created: set[int],
    key_to_record: dict[str, int],
    read: list[EnrichmentRead] | None,
    fragments: bool,
) -> Enrichment:
    """Recompute the enrichers' properties of every record the page's rows name, in the
    caller's transaction: one import batch per enricher (records the page created take the
    direct insert, the others the change-detecting upsert). read: enrichment_read() of these
    rows, if the read-ahead thread made it; otherwise the aggregates are read here.
    key_to_record: the page's own batch result's (canonical key -> record): enrichers keyed by
    the same property find their records there, without looking the keys up again.
    Idempotent: a second call with the same source data changes nothing."""
    if read is None:
        read = enrichment_read(plan, enrichers, rows, fragments)
    out = Enrichment()
    for (oplan, _specs, _conn), (keys, aggregates, prepared) in zip(enrichers, read, strict=True):
        if not keys:
            continue
        # Key problems (a key that does not parse, one without a record) are the page's own,
        # reported once by its source; what this batch adds are its values' problems.
        known = dict(prepared.errors)
        result = import_batch(
            plan=oplan,
            rows=[{oplan.key_column: k} for k in keys],
            aggregates=aggregates,
            fresh=created,
            prepared=prepared,
            known_records=key_to_record if oplan.key_property.pk == plan.key_property.pk else None,
        )
        for rid, pids in result.changed.items():
            out.changed.setdefault(rid, set()).update(pids)
        for rid, by_prop in result.fresh_values.items():
            out.fresh_values.setdefault(rid, {}).update(by_prop)
        out.invalid_records |= result.invalid_records
        for message, count in result.errors.items():
            left = count - known.get(message, 0)
            if left > 0:
                out.errors[message] = out.errors.get(message, 0) + left
    return out
