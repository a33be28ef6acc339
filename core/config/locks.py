"""Which config file owns an object: the object's own `locked_by`, or — for rows edited as part
of a parent (a group's rules, a source's mappings, a destination's memberships, filters, API key
permissions, an app's refresh query) — the parent's. The admin (core.admin.locking) and anything
else refusing to change file-managed objects ask `locked_by_of(obj)`."""

from __future__ import annotations

from typing import Any

# Model label -> the attribute naming the parent whose file owns rows of that model.
PARENT_ATTRIBUTES = {
    "core.grouprule": "group",
    "core.sourcemapping": "source",
    "core.destinationmapping": "destination",
    "core.destinationgroupmembership": "destination",
    "core.propertyfilter": "property",
    "core.schedulefilter": "schedule",
    "core.apikeypermission": "api_key",
    "core.apprefreshquery": "app",
}


def locked_by_of(obj: Any) -> str:
    """The config file (relative to the config directory) that owns `obj`, or "" if none."""
    if obj is None:
        return ""
    own = getattr(obj, "locked_by", None)
    if own is not None:
        return own or ""
    attribute = PARENT_ATTRIBUTES.get(getattr(getattr(obj, "_meta", None), "label_lower", ""))
    if attribute:
        parent = getattr(obj, attribute, None)
        return getattr(parent, "locked_by", "") or "" if parent is not None else ""
    return ""
