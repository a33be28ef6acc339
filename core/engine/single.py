"""One record at a time, on demand: import a record now by a unique value (Grouparoo's
`grouparoo sync <value>`), and export a record to its destinations now.

The same stages as a run, for a batch of one: each source is read with an `eq` filter on its
mapped column, properties are written through the same staging upsert, groups and exports are
recomputed for the record.
"""

from __future__ import annotations

from django.db import transaction

from connectors import registry
from core import values
from core.choices import ExportState
from core.engine import db
from core.engine.exports import destination_plans, exports_build, exports_send
from core.engine.groups import memberships_update, model_groups
from core.engine.imports import import_batch, property_spec, read_columns, source_plan
from core.engine.record_inputs import bind_records
from core.models import Export, Property, Record, RecordModel


class RecordNotFound(LookupError):
    """No source holds a row for the value."""


def _record_value(record_id: int, prop: Property):
    rows = db.fetchall(
        "SELECT raw_value FROM core_recordproperty WHERE record_id = %s AND property_id = %s AND position = 0",
        [record_id, prop.pk],
    )
    return rows[0][0] if rows else None


def record_import_now(
    *, model: RecordModel, property_key: str, value: str, export: bool = True
) -> Record:
    """Read every source of the model for the record whose unique `property_key` is `value`,
    update its properties and groups, and build its exports (sent now when export=True).
    Raises RecordNotFound when no record-creating source has the value, Property.DoesNotExist
    for an unknown key, ValueError for a property that is not unique. Idempotent."""
    prop = Property.objects.get(model=model, key=property_key)
    if not prop.unique:
        raise ValueError(f"{property_key!r} is not a unique property: it cannot identify a record")
    canonical = values.canonical(prop.type, values.coerce(prop.type, value))
    sources = sorted(model.sources.select_related("app"), key=lambda s: (not s.is_primary, s.pk))
    plans = []
    for source in sources:
        try:
            plans.append(source_plan(source))
        except ValueError:
            continue  # a source without a mapping cannot be read for one record
    existing = db.fetchall(
        "SELECT record_id FROM core_recordproperty WHERE property_id = %s AND unique_value = %s",
        [prop.pk, canonical],
    )
    record_id = existing[0][0] if existing else None
    changed: set[int] = set()
    changed_props: set[int] = set()
    with transaction.atomic():
        # Record-creating sources first, then the ones that enrich by a value the record now has.
        for plan in sorted(plans, key=lambda p: (not p.creates_records, not p.source.is_primary)):
            if plan.key_property.pk == prop.pk:
                column, match = plan.key_column, value
            elif record_id is not None and _record_value(record_id, plan.key_property) is not None:
                column, match = plan.key_column, _record_value(record_id, plan.key_property)
            elif plan.creates_records and prop in plan.row_properties:
                column, match = prop.options["column"], value  # the row that carries this value
            else:
                continue
            cls = registry.get_source(plan.source.type)
            filters = [*plan.filters, {"key": column, "op": "eq", "match": str(match)}]
            with cls(
                plan.source.app.connector_options(), plan.source.connector_options()
            ) as connector:
                bind_records(connector, plan.key_property)
                page = connector.read_batch(
                    key_column=plan.key_column,
                    columns=read_columns(plan) if plan.creates_records else [plan.key_column],
                    watermark_column=None,
                    since=None,
                    after=None,
                    limit=10,
                    filters=filters,
                    distinct_keys=not plan.creates_records,
                )
                aggregates = {}
                if plan.aggregate_properties and page.rows:
                    aggregates = connector.aggregate(
                        properties=[property_spec(p) for p in plan.aggregate_properties],
                        key_column=plan.key_column,
                        key_property=plan.key_property.key,
                        keys=[r[plan.key_column] for r in page.rows],
                    )
            if not page.rows:
                continue
            result = import_batch(plan=plan, rows=page.rows, aggregates=aggregates)
            changed |= set(result.changed) | result.merged_into
            for pids in result.changed.values():
                changed_props |= pids
            if record_id is None:
                found = db.fetchall(
                    "SELECT record_id FROM core_recordproperty WHERE property_id = %s AND unique_value = %s",
                    [prop.pk, canonical],
                )
                record_id = found[0][0] if found else None
        if record_id is None:
            raise RecordNotFound(f"No source has a record with {property_key} = {value!r}.")
        memberships = memberships_update(
            groups=model_groups(model.pk), record_ids=[record_id], changed_properties=None
        )
        exports_build(model_id=model.pk, record_ids=[record_id], run_id=None)
    record = Record.objects.get(pk=record_id)
    if export:
        record_export_now(record=record, build=False)
    record.changed_properties = changed_props  # for callers that report what moved
    record.groups_changed = memberships.count
    return record


def record_export_now(*, record: Record, build: bool = True) -> dict[int, str]:
    """Build the record's exports (where its snapshot changed) and send what is pending for it
    now. Returns {destination id: state of the record's newest export}. Idempotent."""
    if build:
        with transaction.atomic():
            exports_build(
                model_id=record.model_id,
                record_ids=[record.pk],
                run_id=None,
                plans=destination_plans(record.model_id),
            )
    pending = set(
        Export.objects.filter(record=record, state=ExportState.PENDING).values_list(
            "destination_id", flat=True
        )
    )
    for destination_id in sorted(pending):
        exports_send(destination_id=destination_id)
    out = {}
    for export in (
        Export.objects.filter(record=record)
        .exclude(state=ExportState.CANCELED)
        .order_by("destination_id", "-pk")
    ):
        out.setdefault(export.destination_id, export.state)
    return out
