"""Writing the database's configuration as config files, in the format `apply` reads.

`config_export(directory=...)` writes one file per object (a source and its schedule share one,
a team and its members share one), laid out as Grouparoo's config writer did: `models/`,
`apps/`, `sources/`, `properties/`, `groups/`, `destinations/`, plus `apiKeys/`, `teams/` and
`settings/`. Objects keep their config id; objects made in the admin get one generated from their
name. Files are plain JSON with a fixed key order, so exporting, applying the export to an empty
database and exporting again writes identical files.

Secrets are never written: a secret option set to `env:NAME` is written as is, and a secret
stored in the database is written as `env:<NAME>` with a generated name that the result lists
(set those variables where the server runs). A URL option holding credentials (see
connectors.url_credentials) is written the same way, as `env:<NAME>` for the whole URL (apply
reads it then, and stores the credentials encrypted again). API keys are written without their
key (apply mints a new one); team members without a password. Settings are written when a
config file manages them or their value differs from the default.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db.models import Model

from connectors import registry
from connectors.url_credentials import split_url_options
from core.choices import AggregationMethod, RuleOp
from core.config import state
from core.config.schema import (
    CLASSES,
    READ_ACTIONS,
    TEAM_TOPIC_MODELS,
    WRITE_ACTIONS,
    mustache_names,
    mustache_replace,
)

# Our aggregation names -> Grouparoo's spelling in files.
AGGREGATION_WORDS = {
    AggregationMethod.MOST_RECENT.value: "most recent value",
    AggregationMethod.LEAST_RECENT.value: "least recent value",
}
FOLDERS = {
    "setting": "settings",
    "model": "models",
    "app": "apps",
    "source": "sources",
    "property": "properties",
    "group": "groups",
    "destination": "destinations",
    "apikey": "apiKeys",
    "team": "teams",
}


@dataclass
class ExportResult:
    directory: Path
    files: list[str] = field(default_factory=list)
    objects: int = 0
    # (file, option, environment variable) for secrets written as env:NAME references.
    secrets: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def generate_id(text: str, separator: str = "_") -> str:
    """An id from a name, as Grouparoo generated them: lowercase letters, digits, `-` and `_`."""
    cleaned = re.sub(r"[^a-z0-9\-_ ]", " ", (text or "").lower()).strip()
    cleaned = cleaned.replace(" ", separator)
    return re.sub(r"[\-_ ][\-_ ]+", separator, cleaned)


def _natural_name(cls: str, obj: Model, ids: state.IdMap) -> str:
    if cls == "setting":
        return f"{obj.plugin}_{obj.key}"
    if cls == "property":
        return obj.key
    if cls == "schedule":
        return f"{ids.get(('source', obj.source_id), 'source')}_schedule"
    if cls == "teammember":
        return obj.email.split("@")[0]
    return getattr(obj, "name", "") or ""


def _exported_objects(cls: str) -> list[Model]:
    if cls in state.REGISTRY_PLUGINS:
        return list(state.managed_objects(cls).values())
    objects = list(state.all_objects(cls))
    if cls == "setting":
        from core.settings_registry import DEFAULTS

        defaults = {d.key: d.default for d in DEFAULTS}
        objects = [
            s
            for s in objects
            if s.config_id or not (s.plugin == "core" and defaults.get(s.key) == s.value)
        ]
    return objects


def export_ids(objects: dict[str, list[Model]]) -> state.IdMap:
    """(class, pk) -> config id: the object's own, else one generated from its name."""
    ids: state.IdMap = {}
    used: dict[str, set[str]] = {cls: set() for cls in CLASSES}
    managed = {cls: state.managed_objects(cls) for cls in state.REGISTRY_PLUGINS}
    for cls in CLASSES:
        for obj in objects[cls]:
            own = getattr(obj, "config_id", "") or ""
            if cls in managed:
                own = next((cid for cid, o in managed[cls].items() if o.pk == obj.pk), "")
            if own:
                ids[(cls, obj.pk)] = own
                used[cls].add(own)
    for cls in CLASSES:  # in class order: a schedule's generated id uses its source's id
        for obj in objects[cls]:
            if (cls, obj.pk) in ids:
                continue
            base = generate_id(_natural_name(cls, obj, ids)) or f"{cls}_{obj.pk}"
            candidate, n = base, 1
            while candidate in used[cls]:
                n += 1
                candidate = f"{base}_{n}"
            used[cls].add(candidate)
            ids[(cls, obj.pk)] = candidate
    return ids


class _Writer:
    def __init__(self, result: ExportResult, ids: state.IdMap) -> None:
        self.result = result
        self.ids = ids

    def secrets(
        self, cls: str, object_id: str, file: str, secret_options: dict[str, Any]
    ) -> dict[str, Any]:
        out = {}
        for name, value in sorted(secret_options.items()):
            if isinstance(value, str) and value.startswith("env:"):
                out[name] = value
                continue
            variable = re.sub(r"[^A-Z0-9]+", "_", f"{cls}_{object_id}_{name}".upper()).strip("_")
            out[name] = f"env:{variable}"
            self.result.secrets.append((file, f"options.{name}", variable))
        return out

    @staticmethod
    def filters(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for f in rows:
            item: dict[str, Any] = {"key": f["key"], "op": f["op"]}
            if f["match"] != "":
                item["match"] = f["match"]
            if f["relative_match_number"] is not None:
                item["relativeMatchNumber"] = f["relative_match_number"]
                item["relativeMatchUnit"] = f["relative_match_unit"]
                if f["relative_match_direction"]:
                    item["relativeMatchDirection"] = f["relative_match_direction"]
            out.append(item)
        return out

    def setting(self, oid: str, d: dict[str, Any], file: str) -> dict[str, Any]:
        return {
            "class": "Setting",
            "id": oid,
            "pluginName": d["plugin"],
            "key": d["key"],
            "value": d["value"],
        }

    def model(self, oid: str, d: dict[str, Any], file: str) -> dict[str, Any]:
        return {"class": "Model", "id": oid, "name": d["name"], "type": d["type"]}

    def url_options(self, d: dict[str, Any], file: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """An app's (plain, secret) options with each URL option's credentials among the secrets,
        also for rows stored before they were split out."""
        try:
            declared = registry.get_app(d["type"]).options
        except registry.UnknownConnector:
            return d["options"], d["secret_options"]
        stored = {**d["options"], **d["secret_options"]}
        plain, secrets, errors = split_url_options(declared, d["options"], d["secret_options"], stored)
        for key, message in sorted(errors.items()):
            self.result.warnings.append(f"{file}: options.{key}: {message}")
        return plain, secrets

    def app(self, oid: str, d: dict[str, Any], file: str) -> dict[str, Any]:
        plain, secrets = self.url_options(d, file)
        out = {
            "class": "App",
            "id": oid,
            "name": d["name"],
            "type": d["type"],
            "options": {**plain, **self.secrets("app", oid, file, secrets)},
        }
        if d["refresh"]:
            out["refresh"] = {
                "query": d["refresh"]["query"],
                "recurringFrequency": d["refresh"]["recurring_frequency"] * 1000,
            }
        return out

    def source(self, oid: str, d: dict[str, Any], file: str) -> dict[str, Any]:
        return {
            "class": "Source",
            "id": oid,
            "name": d["name"],
            "type": d["type"],
            "appId": d["app"],
            "modelId": d["model"],
            "options": d["options"],
            "mapping": d["mapping"],
        }

    def schedule(self, oid: str, d: dict[str, Any], file: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "class": "Schedule",
            "id": oid,
            "name": d["name"],
            "sourceId": d["source"],
            "recurring": d["recurring"],
        }
        if d["recurring_frequency"]:
            out["recurringFrequency"] = d["recurring_frequency"] * 1000
        if d["cron"]:
            out["cron"] = d["cron"]
        out.update(
            {
                "incremental": d["incremental"],
                "confirmRecords": d["confirm_records"],
                "refreshEnabled": d["refresh_enabled"],
                "options": d["options"],
                "filters": self.filters(d["filters"]),
            }
        )
        return out

    def property(
        self, oid: str, d: dict[str, Any], file: str, keys_to_ids: dict[str, str]
    ) -> dict[str, Any]:
        options = dict(d["options"])
        method = options.get("aggregationMethod")
        if method in AGGREGATION_WORDS:
            options["aggregationMethod"] = AGGREGATION_WORDS[method]
        if isinstance(options.get("query"), str):
            names = {
                n: keys_to_ids[n] for n in mustache_names(options["query"]) if n in keys_to_ids
            }
            options["query"] = mustache_replace(options["query"], names)
        return {
            "class": "Property",
            "id": oid,
            "key": d["key"],
            "type": d["type"],
            "sourceId": d["source"],
            "unique": d["unique"],
            "isArray": d["is_array"],
            "options": options,
            "filters": self.filters(d["filters"]),
        }

    def group(self, oid: str, d: dict[str, Any], file: str) -> dict[str, Any]:
        rules = []
        for r in d["rules"]:
            rule: dict[str, Any] = {"propertyId": r["property"]}
            if r["op"] in (RuleOp.IN_LAST, RuleOp.IN_NEXT):
                past = r["op"] == RuleOp.IN_LAST
                rule.update(
                    {
                        "op": "relative_gt" if past else "relative_lt",
                        "relativeMatchNumber": r["relative_match_number"],
                        "relativeMatchUnit": r["relative_match_unit"],
                        "relativeMatchDirection": "subtract" if past else "add",
                    }
                )
            else:
                rule["op"] = r["op"]
                if r["match"] != "":
                    rule["match"] = r["match"]
            rules.append(rule)
        return {
            "class": "Group",
            "id": oid,
            "name": d["name"],
            "modelId": d["model"],
            "matchType": d["match_type"],
            "rules": rules,
        }

    def destination(self, oid: str, d: dict[str, Any], file: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "class": "Destination",
            "id": oid,
            "name": d["name"],
            "type": d["type"],
            "appId": d["app"],
            "modelId": d["model"],
            "collection": d["collection"],
        }
        if d["group"]:
            out["groupId"] = d["group"]
        out.update(
            {
                "syncMode": d["sync_mode"],
                "options": {
                    **d["options"],
                    **self.secrets("destination", oid, file, d["secret_options"]),
                },
                "mapping": dict(sorted(d["mapping"].items())),
                "destinationGroupMemberships": dict(sorted(d["memberships"].items())),
            }
        )
        return out

    def apikey(self, oid: str, d: dict[str, Any], file: str) -> dict[str, Any]:
        return {
            "class": "ApiKey",
            "id": oid,
            "name": d["name"],
            "options": {
                "permissionAllRead": d["permission_all_read"],
                "permissionAllWrite": d["permission_all_write"],
            },
            "permissions": [
                {"topic": topic, "read": rw[0], "write": rw[1]}
                for topic, rw in sorted(d["permissions"].items())
            ],
        }

    def team(self, oid: str, d: dict[str, Any], file: str) -> dict[str, Any]:
        granted = set(d["permissions"])

        def has(topic: str, actions: tuple[str, ...]) -> bool:
            return all(
                f"{model.split('.')[0]}.{action}_{model.split('.')[1]}" in granted
                for model in TEAM_TOPIC_MODELS[topic]
                for action in actions
            )

        read = {t: has(t, READ_ACTIONS) for t in TEAM_TOPIC_MODELS}
        write = {t: has(t, READ_ACTIONS + WRITE_ACTIONS) for t in TEAM_TOPIC_MODELS}
        all_read, all_write = all(read.values()), all(write.values())
        permissions = [
            {"topic": t, "read": read[t], "write": write[t]}
            for t in sorted(TEAM_TOPIC_MODELS)
            if (read[t] and not all_read) or (write[t] and not all_write)
        ]
        expressible = set()
        for t in TEAM_TOPIC_MODELS:
            if read[t] or write[t]:
                for model in TEAM_TOPIC_MODELS[t]:
                    app_label, name = model.split(".")
                    actions = READ_ACTIONS + (WRITE_ACTIONS if write[t] else ())
                    expressible.update(f"{app_label}.{a}_{name}" for a in actions)
        if granted - expressible:
            self.result.warnings.append(
                f'{file}: Team "{oid}": permissions {", ".join(sorted(granted - expressible)[:5])} '
                f"are not a whole topic and are left out"
            )
        out: dict[str, Any] = {
            "class": "Team",
            "id": oid,
            "name": d["name"],
            "options": {"permissionAllRead": all_read, "permissionAllWrite": all_write},
        }
        out["permissions"] = permissions
        return out

    def teammember(self, oid: str, d: dict[str, Any], file: str) -> dict[str, Any]:
        return {
            "class": "TeamMember",
            "id": oid,
            "teamId": d["team"],
            "email": d["email"],
            "options": {"firstName": d["first_name"], "lastName": d["last_name"]},
        }


def _safe_name(object_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9\-_.]", "_", object_id) or "object"


def config_export(*, directory: str | Path, force: bool = False) -> ExportResult:
    """Write the configuration held by the database as config files under `directory`.

    Refuses (ValueError) a directory that already holds `.json` or `.js` files unless `force`,
    which overwrites the files it writes and reports the others as stale. Changes nothing in the
    database; exporting twice writes the same files.
    """
    base = Path(directory)
    existing = (
        sorted(
            p.relative_to(base).as_posix() for p in base.rglob("*") if p.suffix in (".json", ".js")
        )
        if base.exists()
        else []
    )
    if existing and not force:
        raise ValueError(
            f"{base} already holds config files ({len(existing)}); export into an empty "
            f"directory or pass --force"
        )
    result = ExportResult(directory=base)
    objects = {cls: _exported_objects(cls) for cls in CLASSES}
    ids = export_ids(objects)
    writer = _Writer(result, ids)
    files: dict[str, list[dict[str, Any]]] = {}

    def path_of(cls: str, oid: str) -> str:
        return f"{FOLDERS[cls]}/{_safe_name(oid)}.json"

    schedules_by_source = {obj.source_id: obj for obj in objects["schedule"]}
    members_by_team: dict[str, list[Model]] = {}
    for member in objects["teammember"]:
        team = state.read_teammember(member, ids)["team"]
        members_by_team.setdefault(team or "", []).append(member)
    keys_to_ids: dict[int, dict[str, str]] = {}
    for prop in objects["property"]:
        keys_to_ids.setdefault(prop.model_id, {})[prop.key] = ids[("property", prop.pk)]

    for cls in CLASSES:
        if cls in ("schedule", "teammember"):
            continue
        for obj in objects[cls]:
            oid = ids[(cls, obj.pk)]
            file = path_of(cls, oid)
            data = state.read(cls, obj, ids)
            if cls == "property":
                content = writer.property(oid, data, file, keys_to_ids.get(obj.model_id, {}))
            else:
                content = getattr(writer, cls)(oid, data, file)
            files.setdefault(file, []).append(content)
            if cls == "source" and obj.pk in schedules_by_source:
                schedule = schedules_by_source[obj.pk]
                sid = ids[("schedule", schedule.pk)]
                files[file].append(
                    writer.schedule(sid, state.read("schedule", schedule, ids), file)
                )
            if cls == "team":
                for member in sorted(
                    members_by_team.get(oid, []), key=lambda u: ids[("teammember", u.pk)]
                ):
                    mid = ids[("teammember", member.pk)]
                    files[file].append(
                        writer.teammember(mid, state.read("teammember", member, ids), file)
                    )
    orphans = members_by_team.get("", [])
    for member in orphans:
        result.warnings.append(
            f'TeamMember "{ids[("teammember", member.pk)]}" belongs to no managed team and is left out'
        )

    base.mkdir(parents=True, exist_ok=True)
    for rel, contents in sorted(files.items()):
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        payload: Any = contents[0] if len(contents) == 1 else contents
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        result.files.append(rel)
        result.objects += len(contents)
    stale = sorted(set(existing) - set(result.files))
    for rel in stale:
        result.warnings.append(f"{rel}: not written by this export (stale?); remove it if it is")
    return result
