"""The records of a model as the input of a source computed from them (the calculated-property
source, connectors/calculated.py): their keys, and the values of the properties it reads.

Such a source has no rows of its own: its "rows" are the model's records that hold a value of
the property it is mapped by (the model's primary key), keyed by that value. A connector never
touches the database (connectors/base.py), so the engine hands it a `RecordReader` before using
it (`bind_records`) and reads its pages on the run's own thread, inside the run's transaction.

Every method is one or two statements, whatever the page's size.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core import values
from core.choices import VALUE_KIND_BY_TYPE, PropertyType, ValueKind
from core.engine import db
from core.models import Property

_TYPED_COLUMN = {
    ValueKind.TEXT: "value_text",
    ValueKind.NUMBER: "value_number",
    ValueKind.DATETIME: "value_datetime",
    ValueKind.BOOLEAN: "value_boolean",
}


def _utc(value: Any) -> dt.datetime | None:
    """A datetime column as an aware UTC datetime (SQLite's raw cursor hands back text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = values.coerce(PropertyType.DATE, value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _typed(prop: Property, value: Any) -> Any:
    kind = VALUE_KIND_BY_TYPE.get(prop.type)
    if value is None:
        return None
    if kind == ValueKind.DATETIME:
        return _utc(value)
    if kind == ValueKind.BOOLEAN:
        return bool(value)
    if kind == ValueKind.NUMBER and prop.type == PropertyType.INTEGER:
        return int(value)
    return value


class RecordReader:
    """Reads the records of `key_property`'s model for a source mapped by `key_property`."""

    def __init__(self, key_property: Property) -> None:
        self.key_property = key_property
        self.properties = {
            p.key: p for p in Property.objects.filter(model_id=key_property.model_id)
        }

    def _canonical(self, key: Any) -> str | None:
        try:
            return values.canonical(
                self.key_property.type, values.coerce(self.key_property.type, key)
            )
        except ValueError:
            return None

    def keys(self, *, after: int | None, limit: int, equal_to: Any = None) -> list[tuple[int, str]]:
        """[(record id, key)] of the records holding a key, by record id, after `after` (a record
        id; None: from the start), at most `limit`; only the record whose key is `equal_to`
        when given. The key is the value as the source that wrote it gave it (its raw text)."""
        sql = (
            "SELECT record_id, raw_value FROM core_recordproperty WHERE property_id = %s "
            "AND position = 0 AND unique_value IS NOT NULL AND record_id > %s"
        )
        params: list[Any] = [self.key_property.pk, after if after is not None else -1]
        if equal_to is not None:
            sql += " AND unique_value = %s"
            params.append(self._canonical(equal_to))
        sql += " ORDER BY record_id LIMIT %s"
        params.append(limit)
        return [(record_id, raw) for record_id, raw in db.fetchall(sql, params)]

    def count(self) -> int:
        """How many records hold a key."""
        rows = db.fetchall(
            "SELECT COUNT(*) FROM core_recordproperty WHERE property_id = %s AND position = 0 "
            "AND unique_value IS NOT NULL",
            [self.key_property.pk],
        )
        return int(rows[0][0])

    def values(self, keys: list[Any], property_keys: set[str]) -> dict[Any, dict[str, Any]]:
        """{key: {"createdAt": datetime, "updatedAt": datetime, "properties": {property key:
        [values by position]}}} for the records with these keys (as `keys` gives them): the typed
        values of the properties named (unknown names are left out). Keys of no record are
        missing."""
        by_canonical: dict[str, Any] = {}
        for key in keys:
            canon = self._canonical(key)
            if canon is not None:
                by_canonical[canon] = key
        if not by_canonical:
            return {}
        wanted = [self.properties[k] for k in sorted(property_keys) if k in self.properties]
        by_id = {p.pk: p for p in wanted}
        clause, params = db.in_list("k.unique_value", list(by_canonical))
        out: dict[Any, dict[str, Any]] = {}
        for canon, created, updated in db.fetchall(
            "SELECT k.unique_value, r.created_at, r.updated_at FROM core_recordproperty k "
            f"JOIN core_record r ON r.id = k.record_id WHERE k.property_id = %s AND {clause}",
            [self.key_property.pk, *params],
        ):
            out[by_canonical[canon]] = {
                "createdAt": _utc(created),
                "updatedAt": _utc(updated),
                "properties": {},
            }
        if not wanted or not out:
            return out
        id_clause, id_params = db.in_list("v.property_id", list(by_id))
        for canon, pid, _position, text, number, when, boolean in db.fetchall(
            "SELECT k.unique_value, v.property_id, v.position, v.value_text, v.value_number, "
            "v.value_datetime, v.value_boolean FROM core_recordproperty k "
            "JOIN core_recordproperty v ON v.record_id = k.record_id "
            f"WHERE k.property_id = %s AND {clause} AND {id_clause} "
            "ORDER BY k.unique_value, v.property_id, v.position",
            [self.key_property.pk, *params, *id_params],
        ):
            prop = by_id[pid]
            raw = {
                "value_text": text,
                "value_number": number,
                "value_datetime": when,
                "value_boolean": boolean,
            }[_TYPED_COLUMN[VALUE_KIND_BY_TYPE[prop.type]]]
            typed = _typed(prop, raw)
            if typed is None:
                continue
            out[by_canonical[canon]]["properties"].setdefault(prop.key, []).append(typed)
        return out


def bind_records(connector: Any, key_property: Property) -> bool:
    """Hand a source connector that reads records (`reads_records`) its reader of the records of
    `key_property`'s model. True when it is one: its pages are then read on this thread, where
    the run's transaction is."""
    if not getattr(connector, "reads_records", False):
        return False
    connector.bind_records(RecordReader(key_property))
    return True
