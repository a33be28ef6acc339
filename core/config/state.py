"""The configuration held by the database, read into the normalized shape of `core.config.schema`
(`Spec.data`), so the plan compares files and database with `==` and the export writes files
from it.

Objects refer to each other by config ids. `ids` maps (class, primary key) to the id an object
has (or will have) in the files: its `config_id` for managed objects, the file id for an object
about to be adopted, a generated id when exporting unmanaged objects.

Teams and team members are Django auth groups and users, which have no `config_id` column: the
config ids of the groups and users that config files manage are kept in Setting rows of the
reserved plugins `config:team` and `config:teammember` (key = config id, value = JSON
{"pk": ..., "created": true|false}, `locked_by` = the file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import User
from django.db.models import Model, QuerySet

from core import models as m

IdMap = dict[tuple[str, int], str]

TEAM_PLUGIN = "config:team"
TEAMMEMBER_PLUGIN = "config:teammember"
REGISTRY_PLUGINS = {"team": TEAM_PLUGIN, "teammember": TEAMMEMBER_PLUGIN}

DOMAIN_MODELS: dict[str, type[Model]] = {
    "setting": m.Setting,
    "model": m.RecordModel,
    "app": m.App,
    "source": m.Source,
    "property": m.Property,
    "schedule": m.Schedule,
    "group": m.Group,
    "destination": m.Destination,
    "apikey": m.ApiKey,
}
AUTH_MODELS: dict[str, type[Model]] = {"team": AuthGroup, "teammember": User}


@dataclass
class RegistryEntry:
    """A Setting row recording that an auth group or user is managed by a config file."""

    row: m.Setting
    pk: int
    created: bool


def registry_entries(cls: str) -> dict[str, RegistryEntry]:
    """config id -> entry, for "team" or "teammember"."""
    out: dict[str, RegistryEntry] = {}
    for row in m.Setting.objects.filter(plugin=REGISTRY_PLUGINS[cls]).order_by("key"):
        try:
            value = json.loads(row.value or "{}")
            out[row.key] = RegistryEntry(
                row=row, pk=int(value["pk"]), created=bool(value.get("created"))
            )
        except (ValueError, KeyError, TypeError):
            continue
    return out


def all_objects(cls: str) -> QuerySet:
    """Every database object of a config class (teams and members: all auth groups and users)."""
    if cls == "setting":
        return m.Setting.objects.exclude(plugin__startswith="config:").order_by("plugin", "key")
    if cls in AUTH_MODELS:
        return AUTH_MODELS[cls].objects.order_by("pk")
    return DOMAIN_MODELS[cls].objects.order_by("pk")


def managed_objects(cls: str) -> dict[str, Model]:
    """config id -> object, for the objects config files manage."""
    if cls in REGISTRY_PLUGINS:
        entries = registry_entries(cls)
        found = AUTH_MODELS[cls].objects.in_bulk([e.pk for e in entries.values()])
        return {cid: found[e.pk] for cid, e in entries.items() if e.pk in found}
    return {obj.config_id: obj for obj in all_objects(cls).exclude(config_id="")}


def lock_of(cls: str, obj: Model) -> str:
    """The file that owns `obj` ("" when no config file does)."""
    if cls in REGISTRY_PLUGINS:
        for entry in registry_entries(cls).values():
            if entry.pk == obj.pk:
                return entry.row.locked_by
        return ""
    return getattr(obj, "locked_by", "") or ""


# --- readers: one per class, returning Spec.data's shape -----------------------------------------


def _filters(rows) -> list[dict[str, Any]]:
    return [
        {
            "key": f.key,
            "op": f.op,
            "match": f.match or "",
            "relative_match_number": f.relative_match_number,
            "relative_match_unit": f.relative_match_unit or "",
            "relative_match_direction": f.relative_match_direction or "",
        }
        for f in rows
    ]


def read_setting(obj: m.Setting, ids: IdMap) -> dict[str, Any]:
    return {"plugin": obj.plugin, "key": obj.key, "value": obj.value}


def read_model(obj: m.RecordModel, ids: IdMap) -> dict[str, Any]:
    return {"name": obj.name, "type": obj.type}


def read_app(obj: m.App, ids: IdMap) -> dict[str, Any]:
    refresh = m.AppRefreshQuery.objects.filter(app=obj).first()
    return {
        "name": obj.name,
        "type": obj.type,
        "options": dict(obj.options or {}),
        "secret_options": dict(obj.secret_options or {}),
        "refresh": (
            {"query": refresh.query, "recurring_frequency": refresh.recurring_frequency}
            if refresh
            else None
        ),
    }


def read_source(obj: m.Source, ids: IdMap) -> dict[str, Any]:
    return {
        "name": obj.name,
        "type": obj.type,
        "app": ids.get(("app", obj.app_id)),
        "model": ids.get(("model", obj.model_id)),
        "options": dict(obj.options or {}),
        "mapping": {
            row.remote_key: ids.get(("property", row.property_id))
            for row in obj.mappings.order_by("pk")
        },
        "is_primary": obj.is_primary,
    }


def read_property(obj: m.Property, ids: IdMap) -> dict[str, Any]:
    return {
        "key": obj.key,
        "type": obj.type,
        "source": ids.get(("source", obj.source_id)),
        "model": ids.get(("model", obj.model_id)),
        "unique": obj.unique,
        "is_array": obj.is_array,
        "is_primary_key": obj.is_primary_key,
        "options": dict(obj.options or {}),
        "filters": _filters(obj.filters.order_by("position", "pk")),
    }


def read_schedule(obj: m.Schedule, ids: IdMap) -> dict[str, Any]:
    return {
        "source": ids.get(("source", obj.source_id)),
        "name": obj.name,
        "recurring": obj.recurring,
        "recurring_frequency": obj.recurring_frequency or None,
        "cron": obj.cron or "",
        "incremental": obj.incremental,
        "confirm_records": obj.confirm_records,
        "refresh_enabled": obj.refresh_enabled,
        "options": dict(obj.options or {}),
        "filters": _filters(obj.filters.order_by("position", "pk")),
    }


def read_group(obj: m.Group, ids: IdMap) -> dict[str, Any]:
    return {
        "model": ids.get(("model", obj.model_id)),
        "name": obj.name,
        "match_type": obj.match_type,
        "rules": [
            {
                "property": ids.get(("property", rule.property_id)),
                "op": rule.op,
                "match": rule.match or "",
                "relative_match_number": rule.relative_match_number,
                "relative_match_unit": rule.relative_match_unit or "",
            }
            for rule in obj.rules.order_by("position", "pk")
        ],
    }


def read_destination(obj: m.Destination, ids: IdMap) -> dict[str, Any]:
    return {
        "name": obj.name,
        "type": obj.type,
        "app": ids.get(("app", obj.app_id)),
        "model": ids.get(("model", obj.model_id)),
        "sync_mode": obj.sync_mode,
        "collection": obj.collection,
        "group": ids.get(("group", obj.group_id)) if obj.group_id else None,
        "options": dict(obj.options or {}),
        "secret_options": dict(obj.secret_options or {}),
        "mapping": {
            row.remote_key: ids.get(("property", row.property_id))
            for row in obj.mappings.order_by("remote_key")
        },
        "memberships": {
            row.remote_key: ids.get(("group", row.group_id))
            for row in obj.group_memberships.order_by("remote_key")
        },
    }


def read_apikey(obj: m.ApiKey, ids: IdMap) -> dict[str, Any]:
    return {
        "name": obj.name,
        "permission_all_read": obj.permission_all_read,
        "permission_all_write": obj.permission_all_write,
        "permissions": {p.topic: [p.read, p.write] for p in obj.permissions.order_by("topic")},
    }


def read_team(obj: AuthGroup, ids: IdMap) -> dict[str, Any]:
    return {
        "name": obj.name,
        "permissions": sorted(
            f"{p.content_type.app_label}.{p.codename}"
            for p in obj.permissions.select_related("content_type")
        ),
    }


def read_teammember(obj: User, ids: IdMap) -> dict[str, Any]:
    teams = sorted(ids[("team", g.pk)] for g in obj.groups.all() if ("team", g.pk) in ids)
    return {
        "email": (obj.email or obj.username).lower(),
        "first_name": obj.first_name,
        "last_name": obj.last_name,
        "team": teams[0] if teams else None,
    }


READERS = {
    "setting": read_setting,
    "model": read_model,
    "app": read_app,
    "source": read_source,
    "property": read_property,
    "schedule": read_schedule,
    "group": read_group,
    "destination": read_destination,
    "apikey": read_apikey,
    "team": read_team,
    "teammember": read_teammember,
}


def read(cls: str, obj: Model, ids: IdMap) -> dict[str, Any]:
    """The normalized data of a database object of class `cls`."""
    return READERS[cls](obj, ids)
