"""Export stage: decide what each destination must receive, then send it.

Build (per batch of changed records, a fixed number of statements for all destinations):
  one SELECT of the mapped property values, one of current memberships, one of record states,
  one of each (destination, record)'s newest and newest-complete exports; Python compares
  snapshots; one UPDATE cancels superseded pending exports; one bulk insert adds the new ones.
  An export row exists only where the snapshot differs from what the destination has or is
  about to have.

Send: a sender claims due pending exports of one destination (FOR UPDATE SKIP LOCKED on
PostgreSQL), commits the claim, calls the connector once for the batch, and records every
outcome in one executemany. A worker that dies mid-send leaves `processing` rows whose lease
expires; they are sent again with the same content (destinations upsert, so that is harmless).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from django.db import connection, transaction
from django.utils import timezone

from connectors import registry
from connectors.base import ConnectorError, ExportPayload, SyncOperations
from core import values
from core.choices import (
    DestinationCollection,
    ErrorLevel,
    ExportState,
    ObjectState,
    PropertyType,
    RecordState,
)
from core.engine import db
from core.models import Destination
from core.settings_registry import setting_number

logger = logging.getLogger(__name__)

EXPORT_COLUMNS = (
    "destination_id",
    "record_id",
    "run_id",
    "old_properties",
    "new_properties",
    "old_groups",
    "new_groups",
    "to_delete",
    "state",
    "attempts",
    "error_message",
    "error_level",
    "created_at",
    "updated_at",
)


@dataclass
class DestinationPlan:
    destination: Destination
    mapping: list[tuple[str, int, str, bool]]  # remote key, property id, type, is_array
    groups: dict[int, str]  # group id -> remote name
    collection: str
    tracked_group_id: int | None
    # The sync mode deletes records that leave (sync); otherwise they are updated (additive, enrich).
    deletes: bool = True


def destination_plans(model_id: int) -> list[DestinationPlan]:
    plans = []
    qs = (
        Destination.objects.filter(model_id=model_id, state=ObjectState.READY)
        .exclude(collection=DestinationCollection.NONE)
        .prefetch_related("mappings__property", "group_memberships")
    )
    for d in qs:
        plans.append(
            DestinationPlan(
                destination=d,
                mapping=[
                    (m.remote_key, m.property_id, m.property.type, m.property.is_array)
                    for m in d.mappings.all()
                ],
                groups={gm.group_id: gm.remote_key for gm in d.group_memberships.all()},
                collection=d.collection,
                tracked_group_id=d.group_id,
                deletes=SyncOperations.for_mode(d.sync_mode).delete,
            )
        )
    return plans



# Snapshots are JSON text in the export rows: written once per export by the run, read once by
# the sender. orjson reads them 3x and writes them 5-8x faster than the json module (which
# stays the fallback for what orjson will not do exactly; see _json and _dumps).
_BIG_INT = re.compile(r"[0-9]{20}")  # an integer of 2**64 or more, which orjson reads as a float


def _json(value: Any) -> Any:
    if isinstance(value, str):
        # Most snapshots of a first sync are empty (no old properties, no old groups).
        if value == "{}":
            return {}
        if value == "[]":
            return []
        if _BIG_INT.search(value) is None:
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                pass  # json reads what orjson refuses (NaN), or says why it is not JSON
        return json.loads(value)
    return value


def _exporter(property_type: str):
    """values.export_value for one property type, as a function of the value alone (None: the
    value is exported as it is)."""
    from functools import partial

    general = partial(values.export_value, property_type)
    if property_type == PropertyType.DATE:
        datetime, utc = values.dt.datetime, values.dt.UTC

        def export_date(value: Any) -> Any:
            # What the import stage hands over: UTC datetimes, already in export form but text.
            if value.__class__ is datetime and value.tzinfo is utc:
                return value.isoformat()
            return general(value)

        return export_date
    if property_type == PropertyType.INTEGER:
        return int  # export_value's own conversion, for a value that is not None
    if property_type == PropertyType.BOOLEAN:
        return bool
    return None


_ENCODER = json.JSONEncoder(default=str)
# As json.dumps(value, default=str) gives them: a datetime through str() ("2026-01-01 00:00:00+00:00").
_DUMPS_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME
_LIST_JSON: dict[tuple, str] = {}


def _encode(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str, option=_DUMPS_OPTIONS).decode()
    except TypeError:  # an integer beyond 64 bits, a key that is not a string
        return _ENCODER.encode(value)


def _dumps(value: Any) -> str:
    """JSON of a snapshot: a dict of properties or a list of group names, with the values
    json.dumps(value, default=str) would give (the separators differ: no spaces). Group lists
    repeat from export to export; their text is kept."""
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    if isinstance(value, list):
        key = tuple(value)
        try:
            return _LIST_JSON[key]
        except (KeyError, TypeError):  # TypeError: an unhashable item
            text = _encode(value)
            if len(_LIST_JSON) < 10_000 and all(v.__class__ is str for v in key):
                _LIST_JSON[key] = text
            return text
    return _encode(value)


def _typed(row: tuple) -> Any:
    text, number, when, boolean = row
    for v in (text, number, when, boolean):
        if v is not None:
            return v
    return None


def exports_build(
    *,
    model_id: int,
    record_ids: list[int],
    run_id: int | None,
    plans: list[DestinationPlan] | None = None,
    now=None,
    fresh_values: dict[int, dict[int, list]] | None = None,
    snapshots: dict[int, dict[int, str]] | None = None,
    fresh_members: dict[int, set[int]] | None = None,
) -> int:
    """Create exports for `record_ids` wherever a destination's snapshot changed. Returns the
    number created. Runs inside the caller's transaction; idempotent: a second call with nothing
    changed creates nothing.

    fresh_values: every value of records created in this transaction, as written
    ({record: {property: [typed values by position]}}, see BatchResult.fresh_values): they are
    not read back, and such records have no earlier export to compare with.
    snapshots: fresh_snapshots() of those records, if the caller built them already
    (PostgreSQL).
    fresh_members: the groups records created in this transaction joined in it ({record:
    {group}}, from memberships_update): their only memberships, so they are not read back."""
    now = now or timezone.now()
    plans = destination_plans(model_id) if plans is None else plans
    if not plans or not record_ids:
        return 0
    record_ids = sorted(set(record_ids))
    prop_ids = sorted({pid for p in plans for _, pid, _, _ in p.mapping})
    fresh_values = fresh_values or {}
    stored_ids = [rid for rid in record_ids if rid not in fresh_values] if fresh_values else record_ids
    cond_s, params_s = db.in_list("record_id", stored_ids)

    values_by_record: dict[int, dict[int, list]] = dict(fresh_values)
    if prop_ids and stored_ids:
        cond_p, params_p = db.in_list("property_id", prop_ids)
        for rid, pid, text, number, when, boolean in db.fetchall(
            "SELECT record_id, property_id, value_text, value_number, value_datetime, value_boolean "
            f"FROM core_recordproperty WHERE {cond_s} AND {cond_p} ORDER BY record_id, property_id, position",
            [*params_s, *params_p],
        ):
            values_by_record.setdefault(rid, {}).setdefault(pid, []).append(
                _typed((text, number, when, boolean))
            )
    members: dict[int, set[int]] = dict(fresh_members or {})
    member_ids = [rid for rid in record_ids if rid not in members] if members else record_ids
    if member_ids:
        cond_m, params_m = db.in_list("record_id", member_ids)
        for rid, gid in db.fetchall(
            f"SELECT record_id, group_id FROM core_groupmember WHERE {cond_m} AND left_at IS NULL",
            params_m,
        ):
            members.setdefault(rid, set()).add(gid)
    # Records created in this transaction are ready and have no exports yet.
    states = {rid: RecordState.READY for rid in fresh_values}
    if stored_ids:
        cond_id, params_id = db.in_list("id", stored_ids)
        states.update(db.fetchall(f"SELECT id, state FROM core_record WHERE {cond_id}", params_id))
    dest_ids = [p.destination.pk for p in plans]
    cond_d, params_d = db.in_list("destination_id", dest_ids)
    newest: dict[tuple[int, int], tuple] = {}
    newest_complete: dict[tuple[int, int], tuple] = {}
    for did, rid, eid, state, new_props, new_groups, to_delete, rn_all, rn_state in (
        db.fetchall(
            "SELECT destination_id, record_id, id, state, new_properties, new_groups, to_delete, rn_all, rn_state FROM ("
            "SELECT destination_id, record_id, id, state, new_properties, new_groups, to_delete, "
            "ROW_NUMBER() OVER (PARTITION BY destination_id, record_id ORDER BY id DESC) AS rn_all, "
            "ROW_NUMBER() OVER (PARTITION BY destination_id, record_id, state ORDER BY id DESC) AS rn_state "
            f"FROM core_export WHERE {cond_s} AND {cond_d} AND state <> %s) e WHERE rn_all = 1 OR (rn_state = 1 AND state = %s)",
            [*params_s, *params_d, ExportState.CANCELED, ExportState.COMPLETE],
        )
        if stored_ids
        else []
    ):
        entry = (eid, state, _json(new_props), _json(new_groups), bool(to_delete))
        if rn_all == 1:
            newest[(did, rid)] = entry
        if state == ExportState.COMPLETE and rn_state == 1:
            newest_complete[(did, rid)] = entry

    to_insert: list[tuple] = []
    supersede: dict[int, list[int]] = {}
    replace_failed: dict[int, list[int]] = {}
    ts = db.ts(now)
    for plan in plans:
        did = plan.destination.pk
        mapping = _snapshot_mapping(plan)
        ready = (snapshots or {}).get(did, {})
        for rid in record_ids:
            state = states.get(rid)
            if state is None:
                continue
            mine = members.get(rid, set())
            tracked = state != RecordState.DELETED and (
                plan.collection == DestinationCollection.MODEL
                or (
                    plan.collection == DestinationCollection.GROUP and plan.tracked_group_id in mine
                )
            )
            last = newest.get((did, rid))
            done = newest_complete.get((did, rid))
            delivered = done is not None and not done[4]
            old_props = done[2] if delivered else {}
            old_groups = done[3] if delivered else []
            if delivered and last[0] != done[0] and last[1] == ExportState.PROCESSING and not last[4]:
                # Being sent as we build (it will be superseded): the groups it may write are
                # this destination's, to remove if the record no longer has them.
                old_groups = sorted({*old_groups, *last[3]})
            if tracked:
                text = ready.get(rid)  # a fresh record's snapshot, as JSON text (PostgreSQL)
                props = None
                if text is None or last is not None:
                    props = _snapshot(mapping, values_by_record.get(rid, {}))
                groups = sorted(plan.groups[g] for g in mine if g in plan.groups)
                if last is not None and not last[4] and last[2] == props and last[3] == groups:
                    continue
                to_insert.append(
                    (did, rid, run_id, old_props, props, old_groups, groups, False, text)
                )
            else:
                if last is None or last[4]:
                    continue  # never sent, or already leaving
                props = last[2]  # sync: deleted where the destination has it
                if not plan.deletes:
                    # Additive and enrich never delete: the leaving record is updated with its
                    # current values and loses its groups (Grouparoo). With no value left (gone
                    # from its source), the last ones sent still say which record it is.
                    current = _snapshot(mapping, values_by_record.get(rid, {}))
                    if any(v is not None for v in current.values()):
                        props = current
                to_insert.append((did, rid, run_id, old_props, props, old_groups, [], True, None))
            if last is not None and last[1] == ExportState.PENDING:
                supersede.setdefault(did, []).append(rid)
            if last is not None and last[1] != ExportState.COMPLETE:
                # It failed, or may fail while we build (a sender has it): a failure the new
                # export replaces is superseded.
                replace_failed.setdefault(did, []).append(rid)

    for did, rids in supersede.items():
        cond, params = db.in_list("record_id", rids)
        db.execute(
            f"UPDATE core_export SET state = %s, updated_at = %s, error_message = %s WHERE destination_id = %s AND state = %s AND {cond}",
            [
                ExportState.CANCELED,
                ts,
                "superseded by a newer export",
                did,
                ExportState.PENDING,
                *params,
            ],
        )
    if db.is_postgres():
        # COPY text written directly: JSON never holds a raw tab or newline, only backslashes.
        tail = f"{ExportState.PENDING}\t0\t\t\t{db.copy_value(ts)}\t{db.copy_value(ts)}"
        db.copy_lines(
            "core_export",
            EXPORT_COLUMNS,
            [
                f"{did}\t{rid}\t{db.copy_value(run)}\t{_dumps(op).replace(BS, BS2)}\t"
                f"{_dumps(np).replace(BS, BS2) if text is None else text}\t"
                f"{_dumps(og).replace(BS, BS2)}\t{_dumps(ng).replace(BS, BS2)}\t"
                f"{'t' if to_delete else 'f'}\t{tail}"
                for did, rid, run, op, np, og, ng, to_delete, text in to_insert
            ],
        )
    else:
        rows = [
            (did, rid, run, _dumps(op), _dumps(np), _dumps(og), _dumps(ng), to_delete,
             ExportState.PENDING, 0, "", "", ts, ts)
            for did, rid, run, op, np, og, ng, to_delete, _text in to_insert
        ]
        db.bulk_insert("core_export", EXPORT_COLUMNS, rows)
    # A failed export replaced by the new one no longer counts as failed.
    for did, rids in replace_failed.items():
        exports_supersede_failed(destination_id=did, record_ids=rids, now=now)
    return len(to_insert)


BS, BS2 = "\\", "\\\\"


def exports_supersede_failed(*, destination_id: int, record_ids: list[int] | None = None, now=None) -> int:
    """Failed exports of the destination (of these records; None: all) that a newer export of
    the same record replaced become `superseded`: they no longer count as failed anywhere (their
    runs' exports_failed, the destination's failed exports, retries), and keep their error for
    the history. Returns how many. Runs in the caller's transaction; idempotent.

    A newer export is any one not canceled: what the destination should hold is now its
    content, so fixing the value that failed (or a record that changed again) clears the
    failure. One UPDATE ... RETURNING, then one UPDATE per run it touched."""
    ts = db.ts(now or timezone.now())
    cond, params = ("1 = 1", []) if record_ids is None else db.in_list("record_id", record_ids)
    rows = db.fetchall(
        f"UPDATE core_export SET state = %s, updated_at = %s WHERE destination_id = %s AND state = %s AND {cond} "
        "AND EXISTS (SELECT 1 FROM core_export n WHERE n.destination_id = core_export.destination_id "
        "AND n.record_id = core_export.record_id AND n.id > core_export.id AND n.state <> %s) RETURNING run_id",
        [ExportState.SUPERSEDED, ts, destination_id, ExportState.FAILED, *params, ExportState.CANCELED],
    )
    _uncount_failed(rows)
    return len(rows)


def exports_requeue_failed(*, destination_id: int, since=None, until=None, now=None) -> int:
    """Put the destination's failed exports (created in [since, until] when given) that no
    newer export replaced back in the queue with fresh attempts; returns how many. They no
    longer count as failed in their runs' exports_failed: the retry's outcome counts instead
    (once, if it fails again; not at all when it is delivered). Runs in the caller's
    transaction; idempotent (a second call finds nothing failed left)."""
    ts = db.ts(now or timezone.now())
    extra, params = "", []
    if since is not None:
        extra, params = extra + " AND created_at >= %s", [*params, db.ts(since)]
    if until is not None:
        extra, params = extra + " AND created_at <= %s", [*params, db.ts(until)]
    rows = db.fetchall(
        "UPDATE core_export SET state = %s, attempts = 0, send_after = NULL, error_message = '', "
        f"error_level = '', updated_at = %s WHERE destination_id = %s AND state = %s{extra} "
        "AND NOT EXISTS (SELECT 1 FROM core_export n WHERE n.destination_id = core_export.destination_id "
        "AND n.record_id = core_export.record_id AND n.id > core_export.id AND n.state <> %s) RETURNING run_id",
        [ExportState.PENDING, ts, destination_id, ExportState.FAILED, *params, ExportState.CANCELED],
    )
    _uncount_failed(rows)
    return len(rows)


def _uncount_failed(rows: list[tuple]) -> None:
    """Take exports that no longer count as failed (rows of their run_id) off their runs'
    exports_failed: one UPDATE per run."""
    per_run: dict[int, int] = {}
    for (run_id,) in rows:
        if run_id is not None:
            per_run[run_id] = per_run.get(run_id, 0) + 1
    for run_id, n in sorted(per_run.items()):
        db.execute(
            "UPDATE core_run SET exports_failed = CASE WHEN exports_failed > %s THEN exports_failed - %s ELSE 0 END "
            "WHERE id = %s",
            [n, n, run_id],
        )


def _snapshot_mapping(plan: DestinationPlan) -> list[tuple]:
    return [
        (remote, pid, _exporter(ptype), is_array, ptype)
        for remote, pid, ptype, is_array in plan.mapping
    ]


def _snapshot(mapping: list[tuple], rvals: dict[int, list]) -> dict[str, Any]:
    """A record's properties as a destination receives them ({remote key: value})."""
    props = {}
    for remote, pid, export, is_array, ptype in mapping:
        vals = rvals.get(pid)
        if not is_array and vals and len(vals) == 1:  # the common case, inlined
            v = vals[0]
            props[remote] = v if export is None or v is None else export(v)
            continue
        vals = [values.export_value(ptype, v) for v in vals or () if v is not None]
        props[remote] = vals if is_array else (vals[0] if vals else None)
    return props


def fresh_snapshots(
    plans: list[DestinationPlan], fresh_values: dict[int, dict[int, list]]
) -> dict[int, dict[int, str]]:
    """Snapshots of records created in this transaction, from the values written for them
    (BatchResult.fresh_values), built before the database has finished writing them:
    {destination: {record: their properties' JSON, in COPY text}} for exports_build. They need
    no database; a record's groups are added by exports_build."""
    out: dict[int, dict[int, str]] = {}
    for plan in plans:
        mapping = _snapshot_mapping(plan)
        mine = out[plan.destination.pk] = {}
        if any(is_array for _, _, _, is_array, _ in mapping):
            for rid, rvals in fresh_values.items():
                mine[rid] = _dumps(_snapshot(mapping, rvals)).replace(BS, BS2)
            continue
        # No arrays: what _snapshot does, as one comprehension per record (a fresh record has
        # one value per written property; a missing one, or None, exports as None). A UTC
        # datetime is left to orjson, which writes it as its export form (isoformat) does.
        flat = [
            (remote, pid, _utc_passthrough(export) if ptype == PropertyType.DATE else export)
            for remote, pid, export, _, ptype in mapping
        ]
        none = (None,)
        dumps = orjson.dumps
        for rid, rvals in fresh_values.items():
            props = {
                remote: v if (v := (rvals.get(pid) or none)[0]) is None or export is None else export(v)
                for remote, pid, export in flat
            }
            try:
                text = dumps(props).decode()
            except TypeError:  # not plain JSON after all: the general way
                text = _dumps(_snapshot(mapping, rvals))
            mine[rid] = text.replace(BS, BS2)
    return out


def _utc_passthrough(export: Any) -> Any:
    """A date property's exporter for fresh_snapshots: UTC datetimes pass through to orjson."""
    datetime, utc = values.dt.datetime, values.dt.UTC

    def export_date(value: Any) -> Any:
        if value.__class__ is datetime and value.tzinfo is utc:
            return value
        return export(value)

    return export_date


# --- sending ---------------------------------------------------------------------------------


@dataclass
class SendSummary:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    throttled: int = 0
    claimed: int = 0
    # Failed, but a newer export of the record is already queued: not counted as failed.
    superseded: int = 0


def _release_expired(destination_id: int, now) -> None:
    lease = timedelta(seconds=setting_number("runs-lease-seconds"))
    # A newer export of the same record is already pending: it carries the newest state, so the
    # abandoned one is superseded (releasing it would make a second pending row per record).
    db.execute(
        "UPDATE core_export SET state = %s, started_at = NULL, error_message = %s WHERE destination_id = %s "
        "AND state = %s AND started_at < %s AND EXISTS (SELECT 1 FROM core_export p WHERE p.destination_id = "
        "core_export.destination_id AND p.record_id = core_export.record_id AND p.state = %s)",
        [ExportState.CANCELED, "superseded by a newer export", destination_id, ExportState.PROCESSING,
         db.ts(now - lease), ExportState.PENDING],
    )
    db.execute(
        "UPDATE core_export SET state = %s, started_at = NULL WHERE destination_id = %s AND state = %s AND started_at < %s",
        [ExportState.PENDING, destination_id, ExportState.PROCESSING, db.ts(now - lease)],
    )


_CLAIMED_COLUMNS = "id, record_id, run_id, old_properties, new_properties, old_groups, new_groups, to_delete, attempts"


def _due(destination_id: int, limit: int, now) -> tuple[str, list]:
    """The destination's due pending exports, `limit` of them (rows `e`), for a claim to lock:
    not throttled, and no export of the same record in flight.

    The order is the queue index's (core_export_queue: destination, send_after, id), so a claim
    reads only the rows it takes, however many completed exports came before them. Never-deferred
    exports (send_after NULL) go oldest first; deferred ones that are due by their due time,
    after them on SQLite and before them on PostgreSQL (each database's own place for NULLs,
    which its index order follows). Ordering by id alone let PostgreSQL walk the primary key
    past every completed export (migration 0012)."""
    sql = (
        "FROM core_export e WHERE e.destination_id = %s AND e.state = %s "
        "AND (e.send_after IS NULL OR e.send_after <= %s) AND NOT EXISTS (SELECT 1 FROM core_export p "
        "WHERE p.destination_id = e.destination_id AND p.record_id = e.record_id AND p.state = %s) "
        "ORDER BY e.send_after, e.id LIMIT %s"
    )
    return sql, [destination_id, ExportState.PENDING, db.ts(now), ExportState.PROCESSING, limit]


def _claim_held(destination_id: int, limit: int, now) -> list[tuple]:
    """Due pending exports locked (FOR UPDATE SKIP LOCKED) by the caller's transaction, which
    sends them and records their outcomes before it commits (PostgreSQL)."""
    _release_expired(destination_id, now)
    due, params = _due(destination_id, limit, now)
    return db.fetchall(f"SELECT {_CLAIMED_COLUMNS} {due} FOR UPDATE OF e SKIP LOCKED", params)


def _claim(destination_id: int, limit: int, now) -> list[tuple]:
    """Due pending exports leased: marked `processing` with their lease start, committed."""
    lock = " FOR UPDATE SKIP LOCKED" if db.is_postgres() else ""
    ts = db.ts(now)
    due, params = _due(destination_id, limit, now)
    with transaction.atomic():
        _release_expired(destination_id, now)
        return db.fetchall(
            "UPDATE core_export SET state = %s, started_at = %s, updated_at = %s "
            f"WHERE id IN (SELECT e.id {due}{lock}) RETURNING {_CLAIMED_COLUMNS}",
            [ExportState.PROCESSING, ts, ts, *params],
        )


def exports_send(
    *, destination_id: int, limit: int | None = None, now=None, hold: bool = False
) -> SendSummary:
    """Claim and send one batch of due exports of a destination. Returns what happened.

    Safe to run concurrently and twice: claims are exclusive; outcomes are recorded only for
    rows this call claimed. A failing destination affects only its own exports.

    Claims are leases by default: the rows are marked `processing` (committed), sent, then
    given their outcome, and a sender that dies leaves them to be taken over when the lease
    expires. hold=True (PostgreSQL; a run's sender process) claims by row lock instead: one
    transaction locks the due pending rows (FOR UPDATE SKIP LOCKED, so leasing senders pass
    them by), sends them and records the outcomes. A sender that dies mid-send leaves them
    pending at once, and each export is written twice (created, outcome) instead of three
    times (an UPDATE of 100,000 exports is about 1.2 s of PostgreSQL's CPU). The lock is held
    for one send, so it suits a sender whose destination answers in seconds."""
    if hold and db.is_postgres():
        with transaction.atomic():
            return _exports_send(destination_id, limit, now, hold=True)
    return _exports_send(destination_id, limit, now, hold=False)


def _exports_send(destination_id: int, limit: int | None, now, *, hold: bool) -> SendSummary:
    from django.conf import settings

    now = now or timezone.now()
    summary = SendSummary()
    destination = Destination.objects.select_related("app").get(pk=destination_id)
    if not limit:
        # The setting caps the connector's own preference (SQL 5,000 rows, webhook 100).
        limit = settings.GROUPAROO_EXPORT_BATCH_SIZE
        try:
            limit = min(limit, registry.get_app(destination.app.type).preferred_batch_size)
        except registry.UnknownConnector:
            pass  # sending fails below, with the reason on each export
    claimed = _claim_held(destination_id, limit, now) if hold else _claim(destination_id, limit, now)
    if not claimed:
        return summary
    summary.claimed = len(claimed)
    payloads = [
        ExportPayload(
            export_id=eid,
            record_id=rid,
            old_properties=_json(op) or {},
            new_properties=_json(np) or {},
            old_groups=_json(og) or [],
            new_groups=_json(ng) or [],
            to_delete=bool(td),
        )
        for eid, rid, _run, op, np, og, ng, td, _att in claimed
    ]
    attempts = {eid: att for eid, _r, _run, _op, _np, _og, _ng, _td, att in claimed}
    runs = {eid: run for eid, _r, run, *_ in claimed}
    outcomes: dict[int, tuple[str, str, str, float | None, bool]] = {}
    try:
        cls = registry.get_destination(destination.type)
        with cls(destination.app.connector_options(), destination.connector_options()) as connector:
            results = connector.export_batch(
                payloads, operations=SyncOperations.for_mode(destination.sync_mode)
            )
        for r in results:
            outcomes[r.export_id] = (
                "ok" if r.success else ("notsent" if r.not_sent else "fail"),
                r.error
                if not r.skipped
                else (r.error or "not sent: the record does not exist at the destination"),
                r.level,
                r.retry_after,
                r.skipped,
            )
        for p in payloads:
            outcomes.setdefault(
                p.export_id,
                (
                    "fail",
                    "the destination returned no result for this record",
                    ErrorLevel.ERROR,
                    None,
                    False,
                ),
            )
    except ConnectorError as exc:
        level = ErrorLevel.ERROR
        for p in payloads:
            outcomes[p.export_id] = (
                "fatal" if exc.permanent else "fail",
                exc.message,
                level,
                exc.retry_after,
                False,
            )
    except Exception as exc:  # a connector bug must not leave rows claimed forever
        logger.exception("destination %s failed to export a batch", destination_id)
        for p in payloads:
            outcomes[p.export_id] = (
                "fail",
                f"unexpected error: {type(exc).__name__}",
                ErrorLevel.ERROR,
                None,
                False,
            )

    max_attempts = int(setting_number("exports-max-attempts"))
    base = setting_number("exports-retry-base-seconds")
    replaced = _replaced([eid for eid, (kind, *_rest) in outcomes.items() if kind in ("fail", "fatal")])
    done_at = timezone.now()
    ts = db.ts(done_at)
    updates = []
    per_run: dict[int, list[int]] = {}
    for eid, (kind, message, level, retry_after, skipped) in outcomes.items():
        att = attempts[eid]
        run_id = runs[eid]
        if kind == "ok":
            updates.append(
                (
                    ExportState.COMPLETE,
                    att + 1,
                    message if skipped else "",
                    ErrorLevel.INFO if skipped else "",
                    None,
                    ts,
                    ts,
                    eid,
                )
            )
            summary.sent += 1
            if run_id:
                per_run.setdefault(run_id, [0, 0])[0] += 1
        elif retry_after is not None and kind != "fatal":
            send_after = db.ts(done_at + timedelta(seconds=float(retry_after)))
            updates.append(
                (
                    ExportState.PENDING,
                    att,
                    f"throttled: {message}",
                    ErrorLevel.ERROR,
                    send_after,
                    None,
                    ts,
                    eid,
                )
            )
            summary.throttled += 1
        elif kind == "notsent":
            # Never sent (an earlier request of the batch failed): due with the failed ones,
            # attempts unchanged.
            send_after = db.ts(done_at + timedelta(seconds=retry_delay(base, att + 1)))
            updates.append(
                (ExportState.PENDING, att, message, ErrorLevel.ERROR, send_after, None, ts, eid)
            )
            summary.retried += 1
        elif eid in replaced:  # failed, but a newer export of the record is queued already
            updates.append((ExportState.SUPERSEDED, att + 1, message, level, None, ts, ts, eid))
            summary.superseded += 1
        elif kind == "fatal" or level == ErrorLevel.INFO or att + 1 >= max_attempts:
            updates.append((ExportState.FAILED, att + 1, message, level, None, ts, ts, eid))
            summary.failed += 1
            if run_id:
                per_run.setdefault(run_id, [0, 0])[1] += 1
        else:
            delay = retry_delay(base, att + 1)
            updates.append(
                (
                    ExportState.PENDING,
                    att + 1,
                    message,
                    level,
                    db.ts(done_at + timedelta(seconds=delay)),
                    None,
                    ts,
                    eid,
                )
            )
            summary.retried += 1
    with transaction.atomic():
        _record_outcomes(updates, ExportState.PENDING if hold else ExportState.PROCESSING)
        for run_id, (sent, failed) in per_run.items():
            db.execute(
                "UPDATE core_run SET exports_sent = exports_sent + %s, exports_failed = exports_failed + %s WHERE id = %s",
                [sent, failed, run_id],
            )
            if failed:
                from core.engine.runs import run_add_errors

                errs: dict[str, int] = {}
                for eid, (kind, message, _level, retry_after, _skipped) in outcomes.items():
                    if runs[eid] == run_id and kind not in ("ok", "notsent") and retry_after is None:
                        text = f"export to {destination.name}: {message}"
                        errs[text] = errs.get(text, 0) + 1
                run_add_errors(run_id, errs)
    return summary


def _replaced(export_ids: list[int]) -> set[int]:
    """The exports among these that a newer export of the same record (to the same destination,
    not canceled) replaces: one SELECT, only when some export of the batch failed."""
    if not export_ids:
        return set()
    cond, params = db.in_list("e.id", export_ids)
    return {
        eid
        for (eid,) in db.fetchall(
            f"SELECT e.id FROM core_export e WHERE {cond} AND EXISTS (SELECT 1 FROM core_export n "
            "WHERE n.destination_id = e.destination_id AND n.record_id = e.record_id AND n.id > e.id "
            "AND n.state <> %s)",
            [*params, ExportState.CANCELED],
        )
    }


# The longest wait between two attempts, whatever the base and the attempt number.
MAX_RETRY_DELAY_SECONDS = 7 * 24 * 3600.0


def retry_delay(base: float, failed_attempts: int) -> float:
    """Seconds an export waits after its `failed_attempts`-th failed attempt: base x 2^(n-1),
    at most MAX_RETRY_DELAY_SECONDS (so no base or attempt count can overflow a date)."""
    exponent = min(max(failed_attempts, 1) - 1, 64)
    return min(float(base) * 2.0**exponent, MAX_RETRY_DELAY_SECONDS)


def _record_outcomes(updates: list[tuple], claimed: str = ExportState.PROCESSING) -> None:
    """Write every outcome of a sent batch: one UPDATE ... FROM unnest(arrays) on PostgreSQL,
    one executemany on SQLite. Only rows still in their claimed state (`processing` under a
    lease, `pending` under our row lock) are touched."""
    if not updates:
        return
    if db.is_postgres():
        # Most outcomes of a batch are alike (complete, first attempt): one UPDATE per distinct
        # outcome, keyed by an id array, instead of unnesting eight arrays of the batch's size.
        alike: dict[tuple, list[int]] = {}
        for u in updates:
            alike.setdefault(u[:7], []).append(u[7])
        if len(alike) <= 4:
            for (state, att, msg, lvl, after, done, ts), ids in alike.items():
                db.execute(
                    "UPDATE core_export SET state = %s, attempts = %s, error_message = %s, error_level = %s, "
                    "send_after = %s, completed_at = %s, updated_at = %s, started_at = NULL "
                    "WHERE id = ANY(%s::bigint[]) AND state = %s",
                    [state, att, msg, lvl, after, done, ts, db.pg_array(ids), claimed],
                )
            return
        cols = list(
            zip(*updates, strict=True)
        )  # state, attempts, message, level, after, done, ts, id
        db.execute(
            "UPDATE core_export e SET state = v.state, attempts = v.attempts, error_message = v.msg, "
            "error_level = v.lvl, send_after = v.after, completed_at = v.done, updated_at = v.ts, started_at = NULL "
            "FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], "
            "%s::timestamptz[], %s::bigint[]) AS v(state, attempts, msg, lvl, after, done, ts, id) "
            "WHERE e.id = v.id AND e.state = %s",
            [*(db.pg_array(c) for c in cols), claimed],
        )
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE core_export SET state = %s, attempts = %s, error_message = %s, error_level = %s, "
            "send_after = %s, completed_at = %s, updated_at = %s, started_at = NULL WHERE id = %s AND state = %s",
            [(*u, claimed) for u in updates],
        )


def next_due(destination_ids: list[int]) -> Any:
    """When the next pending export of these destinations becomes due (None: none pending)."""
    if not destination_ids:
        return None
    cond, params = db.in_list("destination_id", destination_ids)
    rows = db.fetchall(
        f"SELECT MIN(COALESCE(send_after, created_at)), COUNT(*) FROM core_export WHERE {cond} AND state IN (%s, %s)",
        [*params, ExportState.PENDING, ExportState.PROCESSING],
    )
    return rows[0] if rows and rows[0][1] else None
