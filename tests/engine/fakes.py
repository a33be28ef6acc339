"""An in-memory destination whose behaviour tests script: failures, throttling, outages."""
from __future__ import annotations

from typing import Any, ClassVar

from connectors import registry
from connectors.base import (
    AppConnector,
    ConnectorError,
    DestinationConnector,
    ExportPayload,
    ExportResult,
    MappingOptions,
    Option,
    SyncOperations,
)


@registry.register
class MemoryApp(AppConnector):
    key = "memory"
    label = "Memory (tests)"
    options = (Option("name", "Name"), Option("token", "Token", type="secret"))

    def test_connection(self) -> str:
        return "ok"


@registry.register
class MemoryDestination(DestinationConnector):
    """Keeps rows in `STORE[name]` keyed by the `id` field. `SCRIPT[name]` is a list of actions
    consumed one per batch call: "ok", "down" (whole batch raises), ("throttle", seconds),
    ("fail", id) (that record fails), ("info", id) (final failure), ("notsent", id) (that record
    was never sent), ("call", function, action) (calls function, then does action)."""

    key = "memory-export"
    app_key = "memory"
    label = "Memory destination (tests)"
    options = (Option("name", "Name"),)
    STORE: ClassVar[dict[str, dict[str, dict]]] = {}
    GROUPS: ClassVar[dict[str, dict[str, list]]] = {}
    SCRIPT: ClassVar[dict[str, list[Any]]] = {}
    CALLS: ClassVar[dict[str, list[list[ExportPayload]]]] = {}

    def mapping_options(self) -> MappingOptions:
        return MappingOptions(required=(("id", "any"),))

    def export_batch(self, exports: list[ExportPayload], *, operations: SyncOperations) -> list[ExportResult]:
        name = self.destination_options.get("name", "default")
        self.CALLS.setdefault(name, []).append(exports)
        script = self.SCRIPT.setdefault(name, [])
        action = script.pop(0) if script else "ok"
        if isinstance(action, tuple) and action[0] == "call":  # ("call", function, action)
            action[1]()
            action = action[2]
        if action == "down":
            raise ConnectorError("connection refused")
        if isinstance(action, tuple) and action[0] == "throttle":
            raise ConnectorError("429 Too Many Requests", retry_after=action[1])
        store = self.STORE.setdefault(name, {})
        groups = self.GROUPS.setdefault(name, {})
        results = []
        for e in exports:
            key = str(e.new_properties.get("id"))
            if isinstance(action, tuple) and action[0] == "notsent" and key == str(action[1]):
                results.append(ExportResult(e.export_id, False, f"not sent: {key}", not_sent=True))
                continue
            if isinstance(action, tuple) and action[0] in ("fail", "info") and key == str(action[1]):
                results.append(ExportResult(e.export_id, False, f"rejected {key}", level="error" if action[0] == "fail" else "info"))
                continue
            exists = key in store
            if e.to_delete and operations.delete:
                store.pop(key, None)
                groups.pop(key, None)
                results.append(ExportResult(e.export_id, True))
                continue
            # A leaving record that is not deleted is written with its current values, no groups.
            if not exists and not operations.create:
                results.append(ExportResult(e.export_id, True, skipped=True))
                continue
            store[key] = dict(e.new_properties)
            groups[key] = [] if e.to_delete else list(e.new_groups)
            results.append(ExportResult(e.export_id, True))
        return results


def reset() -> None:
    for table in (MemoryDestination.STORE, MemoryDestination.GROUPS, MemoryDestination.SCRIPT, MemoryDestination.CALLS):
        table.clear()
