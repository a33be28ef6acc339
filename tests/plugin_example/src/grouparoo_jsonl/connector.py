"""JSON Lines files (one JSON object per line) as a source and a destination: an example of a
connector shipped in its own package. Importing this module registers three classes; the
package's `grouparoo.connectors` entry point makes Grouparoo-py import it at start-up.

It implements the contracts of `connectors.base` in plain Python (no database), reusing a few
helpers of the host package (`connectors.sql`: filter operations by type, aggregation names, key
normalisation). It reads whole files, which suits an example, not a million rows.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from connectors.base import (
    AppConnector,
    Batch,
    Column,
    ConnectorError,
    DestinationConnector,
    ExportPayload,
    ExportResult,
    MappingOptions,
    Option,
    PropertySpec,
    SourceConnector,
    SyncOperations,
)
from connectors.registry import register
from connectors.sql import (
    AGGREGATION_METHODS,
    OPS_BY_TYPE,
    infer_type,
    key_norm,
    normalize_aggregation,
)

OPS = ("eq", "ne", "exists", "notExists", "gt", "gte", "lt", "lte", "in", "substring", "notSubstring")
TRUE = ("1", "true", "t", "yes", "y")


def _path(app_options: dict[str, Any], name: Any) -> str:
    directory = os.path.realpath(str(app_options.get("directory") or ""))
    if not name:
        raise ConnectorError("No file name given.", permanent=True)
    path = os.path.realpath(os.path.join(directory, str(name)))
    if os.path.dirname(path) != directory:
        raise ConnectorError(f'"{name}" is not a file name inside the app\'s directory.', permanent=True)
    return path


def _load(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.readlines()
    except FileNotFoundError:
        raise ConnectorError(f'file "{os.path.basename(path)}" does not exist', permanent=True) from None
    except OSError as exc:
        raise ConnectorError(f'cannot read "{os.path.basename(path)}": {exc.strerror}', permanent=True) from None
    rows = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConnectorError(f"line {number} is not JSON: {exc.msg}", permanent=True) from None
    return rows


def _comparable(value: Any) -> Any:
    """Numbers (and numeric text) as Decimal, so 20 and "20.0" compare as numbers."""
    if isinstance(value, bool) or value is None:
        return value
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return str(value)


def _matches(row: dict[str, Any], spec: dict[str, Any]) -> bool:
    """One filter spec {"key", "op", "match"} on one row (NULL passes no comparison, ne and
    notSubstring included, as in SQL)."""
    op, value, match = spec.get("op"), row.get(spec.get("key")), spec.get("match")
    if op == "exists":
        return value is not None
    if op == "notExists":
        return value is None
    if op not in OPS:
        raise ConnectorError(f'filter "{op}" is not supported by JSON Lines sources', permanent=True)
    if value is None:
        return False
    if op == "in":
        return any(_matches(row, {**spec, "op": "eq", "match": m.strip()}) for m in str(match).split(","))
    if op in ("substring", "notSubstring"):
        return (str(match).lower() in str(value).lower()) == (op == "substring")
    if isinstance(value, bool):
        left, right = value, str(match).strip().lower() in TRUE
    else:
        left, right = _comparable(value), _comparable(match)
        if type(left) is not type(right):
            left, right = str(value), str(match)
    return {"eq": left == right, "ne": left != right, "gt": left > right, "gte": left >= right,
            "lt": left < right, "lte": left <= right}[op]


@register
class JsonlApp(AppConnector):
    key = "jsonl"
    label = "JSON Lines files"
    options = (Option("directory", "Directory", required=True, help_text="Where the .jsonl files are."),)

    def test_connection(self) -> str:
        directory = str(self.app_options.get("directory") or "")
        if not os.path.isdir(directory):
            raise ConnectorError(f'directory "{directory}" does not exist', permanent=True)
        count = sum(1 for name in os.listdir(directory) if name.endswith(".jsonl"))
        return f"{count} JSON Lines files in {directory}"


@register
class JsonlSource(SourceConnector):
    """Rows of a .jsonl file; properties aggregate rows per key like a table source's."""

    key = "jsonl-file"
    app_key = "jsonl"
    label = "JSON Lines file"
    options = (Option("file", "File", required=True, help_text="A .jsonl file in the app's directory."),)
    property_options = (
        Option("column", "Field", required=True),
        Option("aggregationMethod", "Aggregation method", type="choice", default="exact",
               choices=tuple((m, m.replace("_", " ")) for m in AGGREGATION_METHODS)),
        Option("sortColumn", "Sort field"),
    )

    def _rows(self, *fields: str | None) -> list[dict[str, Any]]:
        """Every row of the file; each of `fields` must be a field some row has."""
        rows = _load(_path(self.app_options, self.source_options.get("file")))
        known = {k for r in rows for k in r}
        for name in fields:
            if name is not None and rows and name not in known:
                raise ConnectorError(f'unknown field "{name}" (the file has: {", ".join(sorted(known))})', permanent=True)
        return rows

    def _filtered(self, filters: Iterable[dict[str, Any]], watermark_column: str | None = None,
                  since: Any = None, key_column: str | None = None) -> list[dict[str, Any]]:
        filters = list(filters)
        rows = self._rows(key_column, watermark_column, *(f.get("key") for f in filters))
        for spec in filters:
            rows = [r for r in rows if _matches(r, spec)]
        if watermark_column and since is not None:
            rows = [r for r in rows if _matches(r, {"key": watermark_column, "op": "gte", "match": since})]
        return rows

    def preview(self, limit: int = 10) -> list[dict[str, Any]]:
        return self._rows()[:limit]

    def list_columns(self) -> list[Column]:
        rows = self._rows()[:100]
        names = list(dict.fromkeys(k for r in rows for k in r))
        columns = []
        for name in names:
            type_ = infer_type(r.get(name) for r in rows)
            columns.append(Column(name, type_, tuple(o for o in OPS_BY_TYPE[type_] if o in OPS)))
        return columns

    def read_batch(self, *, key_column: str, columns: list[str] | None, watermark_column: str | None,
                   since: Any | None, after: Any | None, limit: int, filters: list[dict[str, Any]],
                   distinct_keys: bool = False) -> Batch:
        rows = [r for r in self._filtered(filters, watermark_column, since, key_column) if r.get(key_column) is not None]
        rows.sort(key=lambda r: _comparable(r[key_column]))
        if after is not None:
            rows = [r for r in rows if _comparable(r[key_column]) > _comparable(after)]
        if distinct_keys:
            rows = [{key_column: k} for k in dict.fromkeys(r[key_column] for r in rows)]
        page = rows[:limit]
        while page and len(page) < len(rows) and rows[len(page)][key_column] == page[-1][key_column]:
            page.append(rows[len(page)])  # never end a page inside one key's rows
        if columns is not None and not distinct_keys:
            wanted = [key_column, *columns]
            page = [{c: r.get(c) for c in wanted} for r in page]
        return Batch(page, page[-1][key_column] if page else None)

    def max_watermark(self, *, watermark_column: str, filters: list[dict[str, Any]]) -> Any | None:
        rows = self._filtered(filters, watermark_column)
        values = [r[watermark_column] for r in rows if r.get(watermark_column) is not None]
        return max(values, key=_comparable) if values else None

    def count(self, *, watermark_column: str | None, since: Any | None, filters: list[dict[str, Any]]) -> int:
        return len(self._filtered(filters, watermark_column, since))

    def aggregate(self, *, properties: list[PropertySpec], key_column: str, key_property: str,
                  keys: list[Any]) -> dict[Any, dict[str, Any]]:
        wanted = {key_norm(k): k for k in keys if k is not None}
        by_key: dict[Any, list[dict[str, Any]]] = {}
        for row in self._rows(key_column):
            norm = key_norm(row.get(key_column))
            if norm in wanted:
                by_key.setdefault(norm, []).append(row)
        out: dict[Any, dict[str, Any]] = {}
        for norm, key in wanted.items():
            values: dict[str, Any] = {}
            for prop in properties:
                rows = [r for r in by_key.get(norm, []) if all(_matches(r, f) for f in prop.filters)]
                values[prop.key] = _aggregate(prop, rows)
            out[key] = values
        return out


def _aggregate(prop: PropertySpec, rows: list[dict[str, Any]]) -> Any:
    method = normalize_aggregation(prop.options.get("aggregationMethod"))
    column, sort = prop.options.get("column"), prop.options.get("sortColumn")
    present = [r for r in rows if r.get(column) is not None]
    if method == "count":
        return len(present)
    if method in ("sum", "average", "min", "max"):
        try:
            numbers = [Decimal(str(r[column])) for r in present]
        except ArithmeticError:
            raise ConnectorError(f'property "{prop.key}": "{column}" holds values that are not numbers', permanent=True) from None
        if not numbers:
            return None
        return {"sum": sum(numbers), "average": sum(numbers) / len(numbers), "min": min(numbers), "max": max(numbers)}[method]
    if sort:
        dated = sorted((r for r in present if r.get(sort) is not None), key=lambda r: _comparable(r[sort]))
        present = (dated[::-1] if method == "most_recent" else dated) + [r for r in present if r.get(sort) is None]
    if prop.is_array:
        return [r[column] for r in present]
    return present[0][column] if present else None


@register
class JsonlDestination(DestinationConnector):
    """Keeps a .jsonl file with one object per record, keyed by `keyField`, groups under "groups"."""

    key = "jsonl-export"
    app_key = "jsonl"
    label = "JSON Lines file export"
    options = (
        Option("file", "File", required=True),
        Option("keyField", "Key field", required=True),
    )

    def mapping_options(self) -> MappingOptions:
        return MappingOptions(required=((str(self.destination_options.get("keyField")), "any"),), allow_any=True)

    def export_batch(self, exports: list[ExportPayload], *, operations: SyncOperations) -> list[ExportResult]:
        """Upsert, update or delete by keyField, then replace the file atomically. Idempotent."""
        path = _path(self.app_options, self.destination_options.get("file"))
        field = str(self.destination_options.get("keyField"))
        records = {key_norm(r.get(field)): r for r in (_load(path) if os.path.exists(path) else [])}
        results = []
        for p in exports:
            key = p.new_properties.get(field, p.old_properties.get(field))
            if key is None:
                results.append(ExportResult(p.export_id, False, f'no value for "{field}"', level="info"))
                continue
            norm = key_norm(key)
            old = p.old_properties.get(field)
            if old is not None and key_norm(old) != norm:
                records.pop(key_norm(old), None)
            # Only the groups this destination wrote (old_groups) and no longer sends are removed.
            gone = set(p.old_groups) - set(() if p.to_delete else p.new_groups)
            kept = set(records.get(norm, {}).get("groups", ())) - gone
            if p.to_delete and operations.delete:
                records.pop(norm, None)
            elif p.to_delete and field not in p.new_properties:
                if norm in records:  # left without a key: it only loses its groups
                    records[norm]["groups"] = sorted(kept)
            elif norm in records or operations.create:
                # A leaving record that is not deleted is updated with its current values.
                records[norm] = {**p.new_properties, "groups": sorted(kept | set(() if p.to_delete else p.new_groups))}
            else:
                results.append(ExportResult(p.export_id, True, skipped=True))
                continue
            results.append(ExportResult(p.export_id, True))
        fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record in records.values():
                handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        os.replace(temp, path)
        return results
