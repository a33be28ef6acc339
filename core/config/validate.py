"""Validating a config directory as a whole: references, names that must be unique, the primary
source and primary key of each model, what the connectors accept, group rules against property
types, and dependency cycles. Reads files only; never touches the database.

`config_validate(directory=...)` returns a `Configuration`: the normalized specs in the order they
can be created, and every problem (errors and warnings), each naming file, object id and key.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors import registry
from connectors.base import validate_declared
from core.choices import (
    RELATIVE_RULE_OPS,
    RULE_OPS_BY_KIND,
    VALUE_KIND_BY_TYPE,
    VALUELESS_RULE_OPS,
    DestinationCollection,
    RuleOp,
)
from core.config import schema
from core.config.loader import load_directory, project_directory
from core.config.problems import ERROR, WARNING, Problem, Problems
from core.config.schema import CLASS_LABELS, CLASSES, Ref, Spec


@dataclass
class Configuration:
    """A validated config directory."""

    directory: Path
    specs: list[Spec] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)
    files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems.errors

    def get(self, cls: str, object_id: str | None) -> Spec | None:
        if object_id is None:
            return None
        for spec in self.specs:
            if spec.cls == cls and spec.id == object_id:
                return spec
        return None

    def of_class(self, cls: str) -> list[Spec]:
        return [s for s in self.specs if s.cls == cls]


def is_query_connector(connector: Any) -> bool:
    """Query sources compute properties with a `query` option (columnar sources use `column`)."""
    return any(o.key == "query" for o in getattr(connector, "property_options", ()))


class _Linker:
    def __init__(self, config: Configuration) -> None:
        self.config = config
        self.problems = config.problems
        self.index: dict[tuple[str, str], Spec] = {}

    # -- problem helpers --

    def problem(self, level: str, spec: Spec, key: str, message: str) -> None:
        self.problems.add(
            Problem(level, spec.file, message, object_id=spec.id, object_class=spec.label, key=key)
        )

    def error(self, spec: Spec, key: str, message: str) -> None:
        self.problem(ERROR, spec, key, message)

    def warn(self, spec: Spec, key: str, message: str) -> None:
        self.problem(WARNING, spec, key, message)

    def get(self, cls: str, object_id: str | None) -> Spec | None:
        return self.index.get((cls, object_id)) if object_id else None

    # -- the passes --

    def run(self, specs: list[Spec]) -> list[Spec]:
        specs = self.merge_grouparoo_settings(self.deduplicate(specs))
        self.check_references(specs)
        self.derive_property_models(specs)
        self.unique_names(specs)
        self.resolve_rule_keys(specs)
        self.query_sources(specs)
        self.calculated_properties(specs)
        self.mappings(specs)
        self.file_paths(specs)
        self.connectors(specs)
        self.group_rules(specs)
        self.destinations(specs)
        self.schedules(specs)
        self.settings(specs)
        self.api_keys(specs)
        return self.order(specs)

    def deduplicate(self, specs: list[Spec]) -> list[Spec]:
        kept: list[Spec] = []
        for spec in specs:
            first = self.index.get((spec.cls, spec.id))
            if first is not None:
                self.error(
                    spec,
                    "id",
                    f'duplicate {spec.label} id "{spec.id}" (also in {first.file}); ids must be '
                    f"unique per class",
                )
                continue
            self.index[(spec.cls, spec.id)] = spec
            kept.append(spec)
        return kept

    def merge_grouparoo_settings(self, specs: list[Spec]) -> list[Spec]:
        """Grouparoo's two retry delays of stalled work are one setting here: the same value
        given twice is one setting (the first object manages it); different values are an
        error (unique_names)."""
        first: dict[tuple[str, str], Spec] = {}
        kept = []
        for spec in specs:
            if spec.cls == "setting":
                marker = (spec.data["plugin"], spec.data["key"])
                earlier = first.setdefault(marker, spec)
                if (
                    earlier is not spec
                    and spec.grouparoo_key
                    and earlier.grouparoo_key
                    and earlier.data["value"] == spec.data["value"]
                ):
                    del self.index[(spec.cls, spec.id)]
                    continue
            kept.append(spec)
        return kept

    def check_references(self, specs: list[Spec]) -> None:
        skipped = self.config.skipped_files
        for spec in specs:
            for ref in spec.refs:
                if (ref.cls, ref.id) not in self.index:
                    note = f" (note: {len(skipped)} .js file(s) were skipped)" if skipped else ""
                    self.error(
                        spec,
                        ref.key,
                        f'references {CLASS_LABELS[ref.cls]} "{ref.id}", which no config file '
                        f"defines{note}",
                    )

    def derive_property_models(self, specs: list[Spec]) -> None:
        for spec in specs:
            if spec.cls == "property":
                source = self.get("source", spec.data["source"])
                spec.data["model"] = source.data["model"] if source else None

    def unique_names(self, specs: list[Spec]) -> None:
        """Names the database keeps unique: report the second object naming the first."""
        seen: dict[tuple[Any, ...], Spec] = {}
        keys = {
            "model": ("name",),
            "app": ("name",),
            "source": ("name",),
            "destination": ("name",),
            "apikey": ("name",),
            "team": ("name",),
            "teammember": ("email",),
            "property": ("model", "key"),
            "group": ("model", "name"),
            "setting": ("plugin", "key"),
            "schedule": ("source",),
        }
        for spec in specs:
            fields = keys.get(spec.cls)
            if not fields:
                continue
            values = tuple(spec.data.get(f) for f in fields)
            if any(v in (None, "") for v in values):
                continue
            marker = (spec.cls, *values)
            first = seen.get(marker)
            if first is None:
                seen[marker] = spec
                continue
            field_key = {
                "model": "modelId",
                "source": "sourceId",
                "plugin": "pluginName",
            }.get(fields[-1], fields[-1])
            what = " and ".join(f"{f} {v!r}" for f, v in zip(fields, values, strict=True))
            self.error(
                spec,
                field_key,
                f'{spec.label} "{first.id}" ({first.file}) already has {what}; it must be unique',
            )

    def _model_properties(self, model: str | None) -> list[Spec]:
        return [
            s
            for s in self.index.values()
            if s.cls == "property" and s.data.get("model") == model and model is not None
        ]

    def resolve_rule_keys(self, specs: list[Spec]) -> None:
        for spec in specs:
            if spec.cls != "group":
                continue
            for path, rule in zip(spec.rule_paths, spec.data["rules"], strict=True):
                key = rule.pop("property_key", None)
                if rule["property"] is None and key:
                    found = [
                        p
                        for p in self._model_properties(spec.data["model"])
                        if p.data["key"] == key
                    ]
                    if not found:
                        self.error(
                            spec,
                            f"{path}.key",
                            f"no property of this group's model has the key {key!r}",
                        )
                        continue
                    rule["property"] = found[0].id
                    spec.refs.append(Ref(f"{path}.key", "property", found[0].id))

    def _source_connector(self, source: Spec | None) -> Any:
        if source is None:
            return None
        try:
            return registry.get_source(source.data["type"])
        except registry.UnknownConnector:
            return None

    def query_sources(self, specs: list[Spec]) -> None:
        """`{{{ name }}}` in a query property names a property by id (or, as Grouparoo 0.9 read
        it, by key); it is stored with the property's key, which the connector binds. A query
        source without a mapping is mapped by the one unique property its queries use."""
        used: dict[str, set[str]] = {}  # source id -> property ids its queries use
        for spec in specs:
            if spec.cls != "property":
                continue
            source = self.get("source", spec.data["source"])
            if not is_query_connector(self._source_connector(source)):
                continue
            query = spec.data["options"].get("query")
            if not isinstance(query, str):
                continue
            props = self._model_properties(spec.data["model"])
            by_id = {p.id: p for p in props}
            by_key = {p.data["key"]: p for p in props}
            replace: dict[str, str] = {}
            for name in schema.mustache_names(query):
                target = by_id.get(name) or by_key.get(name)
                if target is None:
                    self.error(
                        spec,
                        "options.query",
                        f"{{{{{{ {name} }}}}}} names no property of this model (give a property id)",
                    )
                    continue
                replace[name] = target.data["key"]
                used.setdefault(source.id, set()).add(target.id)
                if target.id != spec.id:
                    spec.refs.append(Ref("options.query", "property", target.id))
            spec.data["options"]["query"] = schema.mustache_replace(query, replace)
            spec.query_uses = {(by_id.get(n) or by_key[n]).id for n in replace}
        for spec in specs:
            if spec.cls != "source" or spec.data["mapping"]:
                continue
            if not is_query_connector(self._source_connector(spec)):
                continue
            ids = used.get(spec.id, set())
            if len(ids) == 1:
                prop = self.get("property", next(iter(ids)))
                if prop is not None and prop.data["unique"]:
                    spec.data["mapping"] = {prop.data["key"]: prop.id}
                    spec.refs.append(Ref("mapping", "property", prop.id))
                    self.warn(
                        spec,
                        "mapping",
                        f'not given; the source is mapped by property "{prop.id}", the one its '
                        f"properties' queries use",
                    )

    def _reads_records(self, source: Spec | None) -> bool:
        return bool(getattr(self._source_connector(source), "reads_records", False))

    def calculated_properties(self, specs: list[Spec]) -> None:
        """Sources computed from the records (Grouparoo's calculated-property source): mapped by
        their model's primary key when the file gives no mapping (Grouparoo's had none), and
        their properties' `{{{ name }}}` placeholders name properties of the model, by id or key
        (stored as keys, which the function is given), or now/createdAt/updatedAt."""
        from connectors.calculated import node_command

        primary_key = {}
        for spec in specs:
            if spec.cls == "source" and len(spec.data["mapping"]) == 1:
                prop = self.get("property", next(iter(spec.data["mapping"].values())))
                if prop is not None and prop.data["source"] == spec.id:
                    primary_key.setdefault(spec.data["model"], prop)
        node_problem = None
        for spec in specs:
            if spec.cls == "source" and self._reads_records(spec):
                node_problem = node_problem or _node_problem(node_command)
                if node_problem:
                    self.warn(spec, "type", node_problem)
                prop = primary_key.get(spec.data["model"])
                if not spec.data["mapping"] and prop is not None:
                    spec.data["mapping"] = {prop.data["key"]: prop.id}
                    spec.refs.append(Ref("mapping", "property", prop.id))
            elif spec.cls == "property" and self._reads_records(
                self.get("source", spec.data["source"])
            ):
                self._calculated_property(spec)

    def _calculated_property(self, spec: Spec) -> None:
        from connectors.calculated import (
            BUILTINS,
            FUNCTION_OPTION,
            illegal_use,
            rename,
            template_names,
        )

        key = f"options.{FUNCTION_OPTION}"
        if spec.data["unique"]:
            self.error(
                spec, "unique", "a calculated property cannot be unique (it identifies no record)"
            )
        if spec.data["filters"]:
            self.error(spec, "filters", "calculated properties take no filters")
        template = spec.data["options"].get(FUNCTION_OPTION)
        if not isinstance(template, str):
            return
        if illegal_use(template):
            self.error(spec, key, f"cannot use {illegal_use(template)} in a calculated property")
        props = self._model_properties(spec.data["model"])
        by_id, by_key = {p.id: p for p in props}, {p.data["key"]: p for p in props}
        replace: dict[str, str] = {}
        for name in template_names(template):
            head, dot, part = name.partition(".")
            if head in BUILTINS:
                continue
            target = by_id.get(head) or by_key.get(head)
            if target is None or target is spec:
                what = "is this property itself" if target else "names no property of this model"
                self.error(spec, key, f"{{{{{{ {name} }}}}}} {what}")
                continue
            replace[name] = f"{target.data['key']}{dot}{part}"
            spec.refs.append(Ref(key, "property", target.id))
        spec.data["options"][FUNCTION_OPTION] = rename(template, replace)

    def mappings(self, specs: list[Spec]) -> None:
        primary_of: dict[str, Spec] = {}
        for spec in specs:
            if spec.cls != "source":
                continue
            mapping = spec.data["mapping"]
            if not mapping:
                self.error(
                    spec,
                    "mapping",
                    'is required: map a source column to a unique property, e.g. {"id": "user_id"}',
                )
                continue
            if len(mapping) > 1:
                self.error(spec, "mapping", "must map exactly one column to one unique property")
                continue
            column, prop_id = next(iter(mapping.items()))
            prop = self.get("property", prop_id)
            if prop is None:
                continue
            key = f"mapping.{column}"
            if prop.data["model"] is not None and prop.data["model"] != spec.data["model"]:
                self.error(
                    spec, key, f'property "{prop_id}" belongs to another model than this source'
                )
                continue
            if not prop.data["unique"]:
                self.error(
                    spec,
                    key,
                    f'the property "{prop_id}" needs to be set as "unique: true" to be used as the '
                    f"mapping of a source",
                )
                continue
            if prop.data["is_array"]:
                self.error(
                    spec,
                    key,
                    f'the property "{prop_id}" cannot be an array to be used as a mapping',
                )
                continue
            if prop.data["source"] == spec.id:
                model = spec.data["model"]
                first = primary_of.get(model)
                if first is not None:
                    self.error(
                        spec,
                        key,
                        f'model "{model}" already has a primary source, "{first.id}" '
                        f"({first.file}): a source is primary when its mapping names a property "
                        f"it owns",
                    )
                    continue
                primary_of[model] = spec
                spec.data["is_primary"] = True
                prop.data["is_primary_key"] = True
        for spec in specs:
            if spec.cls == "model" and spec.id not in primary_of:
                if any(s.cls == "source" and s.data["model"] == spec.id for s in specs):
                    self.warn(
                        spec,
                        "id",
                        "no source of this model is primary (maps a property it owns), so no "
                        "source creates its records",
                    )

    def file_paths(self, specs: list[Spec]) -> None:
        """Relative file paths in options (a sqlite app's `file`, a CSV source's `path`, a
        logger's `filename`) are made absolute against the project directory, as Grouparoo's
        plugins read them, so what is stored does not depend on where the server runs. A CSV
        app's base directory keeps its own: paths under an app that has one stay relative."""
        base = project_directory(self.config.directory)
        for spec in specs:
            connector = self._connector_class(spec)
            if connector is None:
                continue
            app = self.get("app", spec.data.get("app")) if spec.cls != "app" else None
            if app is not None and app.data["options"].get("baseDirectory"):
                continue
            opts = spec.data["options"]
            for option in getattr(connector, "options", ()):
                value = opts.get(option.key)
                if not option.file_path or not isinstance(value, str) or not value:
                    continue
                if "://" in value or os.path.isabs(os.path.expanduser(value)):
                    continue
                opts[option.key] = os.path.normpath(os.path.join(base, value))

    def _connector_class(self, spec: Spec) -> Any:
        getter = {
            "app": registry.get_app,
            "source": registry.get_source,
            "destination": registry.get_destination,
        }.get(spec.cls)
        if getter is None or not spec.data.get("type"):
            return None
        try:
            return getter(spec.data["type"])
        except registry.UnknownConnector:
            return None

    def connectors(self, specs: list[Spec]) -> None:
        for spec in specs:
            if spec.cls in ("source", "destination"):
                self._connector_object(spec)
            elif spec.cls == "app":
                self._app(spec)
            elif spec.cls == "property":
                self._property(spec)

    def _option_errors(
        self, spec: Spec, errors: dict[str, str], skip: set[str] = frozenset()
    ) -> None:
        for option, message in sorted(errors.items()):
            if option in skip:
                continue
            self.error(spec, f"options.{option}", message)

    def _app(self, spec: Spec) -> None:
        try:
            connector = registry.get_app(spec.data["type"])
        except registry.UnknownConnector:
            return
        merged = {**spec.data["options"], **spec.data["secret_options"]}
        self._option_errors(spec, connector.validate_options(merged))

    def _connector_object(self, spec: Spec) -> None:
        getter = registry.get_source if spec.cls == "source" else registry.get_destination
        try:
            connector = getter(spec.data["type"])
        except registry.UnknownConnector:
            return
        app = self.get("app", spec.data["app"])
        if app is not None and app.data["type"] and connector.app_key != app.data["type"]:
            self.error(
                spec,
                "type",
                f"a {spec.data['type']} {spec.label.lower()} needs a {connector.app_key} app, but "
                f'App "{app.id}" is a {app.data["type"]} app',
            )
        merged = {**spec.data["options"], **spec.data.get("secret_options", {})}
        skip: set[str] = set()
        if spec.cls == "source" and is_query_connector(connector):
            query = merged.get("query")
            if not query:
                skip.add("query")
                self.warn(
                    spec,
                    "options.query",
                    "not given (Grouparoo's query sources had none): the source computes its "
                    "properties for records other sources import, but cannot be run by a "
                    "schedule until it has a SELECT here",
                )
            elif isinstance(query, str) and schema.mustache_names(query):
                self.error(
                    spec,
                    "options.query",
                    "a source query cannot use {{{ }}} variables; only property queries can",
                )
        self._option_errors(spec, connector.validate_options(merged), skip)

    def _property(self, spec: Spec) -> None:
        source = self.get("source", spec.data["source"])
        connector = self._source_connector(source)
        if connector is None:
            return
        declared = tuple(getattr(connector, "property_options", ()))
        self._option_errors(spec, validate_declared(declared, spec.data["options"]))
        opts = spec.data["options"]
        if is_query_connector(connector):
            if spec.data["filters"]:
                self.error(
                    spec,
                    "filters",
                    "query properties take no filters (put the conditions in the query)",
                )
            mapped = next(iter(source.data["mapping"].values()), None) if source else None
            for used in sorted(spec.query_uses):
                if mapped and used != mapped:
                    mapped_key = (
                        self.get("property", mapped).data["key"]
                        if self.get("property", mapped)
                        else mapped
                    )
                    self.error(
                        spec,
                        "options.query",
                        f'{{{{{{ {used} }}}}}}: only the property the source is mapped by, "{mapped}" '
                        f"({{{{{{ {mapped} }}}}}} or {{{{{{ {mapped_key} }}}}}}), is available to a query",
                    )
        elif opts.get("aggregationMethod") in ("most_recent", "least_recent") and not opts.get(
            "sortColumn"
        ):
            self.error(
                spec,
                "options.sortColumn",
                f"is required with the aggregation method {opts['aggregationMethod'].replace('_', ' ')!r}",
            )

    def group_rules(self, specs: list[Spec]) -> None:
        from core.values import coerce_match

        for spec in specs:
            if spec.cls != "group":
                continue
            for path, rule in zip(spec.rule_paths, spec.data["rules"], strict=True):
                prop = self.get("property", rule["property"])
                if prop is None:
                    continue
                if prop.data["model"] is None:
                    continue  # its source is missing: reported there
                if prop.data["model"] != spec.data["model"]:
                    self.error(
                        spec,
                        f"{path}.propertyId",
                        f'property "{prop.id}" belongs to another model than this group',
                    )
                    continue
                if prop.data["type"] not in VALUE_KIND_BY_TYPE:
                    continue
                allowed = RULE_OPS_BY_KIND[VALUE_KIND_BY_TYPE[prop.data["type"]]]
                op = rule["op"]
                if op not in allowed:
                    shown = {RuleOp.IN_LAST: "relative_gt", RuleOp.IN_NEXT: "relative_lt"}.get(
                        op, op
                    )
                    self.error(
                        spec,
                        f"{path}.op",
                        f'{shown!r} does not suit property "{prop.id}" of type {prop.data["type"]} '
                        f"(allowed: {', '.join(str(a) for a in allowed)})",
                    )
                    continue
                if op in RELATIVE_RULE_OPS or op in VALUELESS_RULE_OPS:
                    continue
                try:
                    coerce_match(prop.data["type"], rule["match"], many=op == RuleOp.IN)
                except ValueError as exc:
                    self.error(spec, f"{path}.match", str(exc))

    def destinations(self, specs: list[Spec]) -> None:
        for spec in specs:
            if spec.cls != "destination":
                continue
            model = spec.data["model"]
            group = self.get("group", spec.data["group"])
            if spec.data["collection"] == DestinationCollection.GROUP and group is not None:
                if group.data["model"] != model:
                    self.error(
                        spec,
                        "groupId",
                        f'group "{group.id}" belongs to another model than this destination',
                    )
            for remote, prop_id in spec.data["mapping"].items():
                prop = self.get("property", prop_id)
                if prop is not None and prop.data["model"] not in (None, model):
                    self.error(
                        spec,
                        f"mapping.{remote}",
                        f'property "{prop_id}" belongs to another model than this destination',
                    )
            seen: dict[str, str] = {}
            for remote, group_id in spec.data["memberships"].items():
                key = f"destinationGroupMemberships.{remote}"
                member = self.get("group", group_id)
                if member is not None and member.data["model"] != model:
                    self.error(
                        spec,
                        key,
                        f'group "{group_id}" belongs to another model than this destination',
                    )
                if group_id in seen:
                    self.error(
                        spec, key, f'group "{group_id}" is already sent as {seen[group_id]!r}'
                    )
                seen.setdefault(group_id, remote)

    def schedules(self, specs: list[Spec]) -> None:
        for spec in specs:
            if spec.cls != "schedule":
                continue
            source = self.get("source", spec.data["source"])
            connector = self._source_connector(source)
            if getattr(connector, "reads_records", False):
                given = {
                    "options.column": spec.data["options"].get("column"),
                    "filters": spec.data["filters"],
                }
                for key in (k for k, value in given.items() if value):
                    self.error(
                        spec,
                        key,
                        f'source "{source.id}" computes its properties from the records: '
                        f"every run reads them all, with no watermark column or filters",
                    )
            if is_query_connector(connector) and not source.data["options"].get("query"):
                self.error(
                    spec,
                    "sourceId",
                    f'source "{source.id}" has no options.query, so a schedule has nothing to read',
                )

    def settings(self, specs: list[Spec]) -> None:
        from core.settings_registry import setting_default, setting_problem

        for spec in specs:
            if spec.cls != "setting":
                continue
            plugin, key, value = spec.data["plugin"], spec.data["key"], spec.data["value"]
            if plugin.startswith("config:"):
                self.error(spec, "pluginName", "plugin names starting with 'config:' are reserved")
                continue
            if plugin != "core":
                self.warn(
                    spec,
                    "pluginName",
                    f"no plugin {plugin!r} here; the setting is stored but nothing reads it",
                )
                continue
            if setting_default(key, plugin) is None:
                self.warn(
                    spec, "key", f"unknown setting core.{key}; it is stored but nothing reads it"
                )
                continue
            problem = setting_problem(key, value, plugin) if value != "" else "must not be empty"
            if problem:
                self.error(spec, "value", f"core.{key} {problem}")

    def api_keys(self, specs: list[Spec]) -> None:
        seen: dict[str, Spec] = {}
        for spec in specs:
            if spec.cls != "apikey" or not spec.secret:
                continue
            prefix = schema.api_key_prefix(spec.secret)
            first = seen.get(prefix or "")
            if first is not None:
                self.error(
                    spec, "apiKey", f'has the same prefix as ApiKey "{first.id}" ({first.file})'
                )
            elif prefix:
                seen[prefix] = spec

    # -- dependency order --

    def edges(self, spec: Spec) -> list[Ref]:
        out = []
        for ref in spec.refs:
            target = self.get(ref.cls, ref.id)
            if target is None or target is spec:
                continue
            # A source mapped by its own property (the primary key) is created before it.
            if (
                spec.cls == "source"
                and ref.cls == "property"
                and target.data.get("source") == spec.id
            ):
                continue
            out.append(ref)
        return out

    def order(self, specs: list[Spec]) -> list[Spec]:
        """Specs in an order where everything an object refers to comes first (Kahn's algorithm,
        ties by class order, then file); objects on a cycle are reported and left out."""
        rank = {cls: i for i, cls in enumerate(CLASSES)}
        position = {id(s): i for i, s in enumerate(specs)}
        deps: dict[int, set[int]] = {}
        users: dict[int, set[int]] = {}
        by_pos: dict[int, Spec] = {}
        for spec in specs:
            pos = position[id(spec)]
            by_pos[pos] = spec
            deps[pos] = set()
            for ref in self.edges(spec):
                target = position[id(self.get(ref.cls, ref.id))]
                deps[pos].add(target)
                users.setdefault(target, set()).add(pos)
        heap = [(rank[s.cls], position[id(s)]) for s in specs if not deps[position[id(s)]]]
        heapq.heapify(heap)
        ordered: list[Spec] = []
        remaining = {p: set(d) for p, d in deps.items()}
        while heap:
            _, pos = heapq.heappop(heap)
            ordered.append(by_pos[pos])
            for user in users.get(pos, ()):
                remaining[user].discard(pos)
                if not remaining[user] and by_pos[user] not in ordered:
                    heapq.heappush(heap, (rank[by_pos[user].cls], user))
        left = {position[id(s)] for s in specs} - {position[id(s)] for s in ordered}
        reported: set[int] = set()
        for start in sorted(left):
            if start in reported:
                continue
            cycle = self._find_cycle(start, by_pos, left)
            if not cycle:
                continue
            reported.update(p for p, _ in cycle)
            first_pos, first_ref = cycle[0]
            steps = " → ".join(
                f'{by_pos[p].label} "{by_pos[p].id}" ({ref.key})' for p, ref in cycle
            )
            first = by_pos[first_pos]
            self.error(
                first,
                first_ref.key,
                f'dependency cycle: {steps} → {first.label} "{first.id}"',
            )
        return ordered

    def _find_cycle(
        self, start: int, by_pos: dict[int, Spec], left: set[int]
    ) -> list[tuple[int, Ref]]:
        """A cycle through `start` or reachable from it: [(position, ref to the next)]."""
        position = {id(s): p for p, s in by_pos.items()}
        path: list[tuple[int, Ref]] = []
        on_path: dict[int, int] = {}

        def visit(pos: int) -> list[tuple[int, Ref]] | None:
            on_path[pos] = len(path)
            for ref in self.edges(by_pos[pos]):
                target = position[id(self.get(ref.cls, ref.id))]
                if target not in left:
                    continue
                path.append((pos, ref))
                if target in on_path:
                    return path[on_path[target] :]
                found = visit(target)
                if found:
                    return found
                path.pop()
            del on_path[pos]
            return None

        return visit(start) or []


def _node_problem(node_command: Any) -> str | None:
    """Why calculated properties cannot run here (no Node.js, or too old), else None."""
    from connectors.base import ConnectorError

    try:
        node_command()
    except ConnectorError as exc:
        return f"{exc.message} Until then its runs fail."
    return None


def config_validate(*, directory: str | Path, allow_js: bool | None = None) -> Configuration:
    """Read and check every config file under `directory`. Changes nothing (the database is not
    even read); calling it twice gives the same result. `allow_js`: run `.js` files with
    Node.js (None: as GROUPAROO_CONFIG_ALLOW_JS says; see core.config.loader)."""
    loaded = load_directory(directory, allow_js=allow_js)
    config = Configuration(
        directory=loaded.directory,
        problems=loaded.problems,
        files=loaded.files,
        skipped_files=loaded.skipped_files,
    )
    specs: list[Spec] = []
    for raw in loaded.objects:
        spec = schema.normalize(raw, config.problems)
        if spec is not None:
            specs.append(spec)
    config.specs = _Linker(config).run(specs)
    return config
