"""The templates of `manage.py generate`: each turns an id and a few inputs into one or more config
objects (Batch Generation: a table source writes its schedule and one property per column).

Template names follow Grouparoo's generators: `model`, `<app>:app` per app connector
(`sqlite:app`, `postgres:app`), `<app>:table:source` and `<app>:query:source` per source
connector, `property`, `schedule`, `group`, `<app>:destination` per destination connector,
`apikey`, `team` and `teammember`. Every template fills in values that validate, so a generated
file passes `manage.py validate` as written (its parents — app, model, source — must be in the
same directory, as they must for apply).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors import registry
from connectors.base import Option
from core.choices import ApiTopic, DestinationCollection, GroupMatchType, RecordModelType, SyncMode
from core.config.export import generate_id
from core.config.schema import Spec
from core.config.validate import Configuration, is_query_connector

DEFAULT_FREQUENCY_MS = 15 * 60 * 1000


class TemplateError(ValueError):
    """The inputs do not fit the template (the message says which and why)."""


@dataclass(frozen=True)
class Input:
    name: str
    help: str
    default: Any = None
    required: bool = False
    flag: bool = False


@dataclass
class Context:
    """What a template works with: the new object's id, its inputs, and the directory's
    validated configuration (to find parents and free ids)."""

    object_id: str
    params: dict[str, str]
    config: Configuration

    def get(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name)
        return default if value in (None, "") else value

    def flag(self, name: str) -> bool:
        return str(self.params.get(name, "")).lower() in ("true", "1", "yes", "on")

    def parent(self, cls: str, *, name: str = "parent") -> Spec:
        object_id = self.get(name)
        if not object_id:
            raise TemplateError(f"--{name} is required: the id of the {cls} to use")
        spec = self.config.get(cls, object_id)
        if spec is None:
            known = ", ".join(s.id for s in self.config.of_class(cls)) or "none"
            raise TemplateError(
                f"--{name}: no {cls} {object_id!r} in this directory (known: {known})"
            )
        return spec

    def model(self) -> str:
        given = self.get("model")
        models = [s.id for s in self.config.of_class("model")]
        if given:
            if given not in models:
                raise TemplateError(
                    f"--model: no model {given!r} in this directory (known: {', '.join(models) or 'none'})"
                )
            return given
        if len(models) == 1:
            return models[0]
        raise TemplateError(
            f"--model is required (models here: {', '.join(models) or 'none; generate one first'})"
        )

    def free_id(self, cls: str, wanted: str, prefix: str) -> str:
        taken = {s.id for s in self.config.of_class(cls)}
        if wanted not in taken:
            return wanted
        candidate = f"{prefix}_{wanted}"
        n = 1
        while candidate in taken:
            n += 1
            candidate = f"{prefix}_{wanted}_{n}"
        return candidate


@dataclass
class Template:
    name: str
    description: str
    cls: str
    build: Callable[[Context], dict[str, list[dict[str, Any]]]]
    inputs: tuple[Input, ...] = ()
    batch: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def usage(self) -> str:
        parts = [f"{self.name} ID"]
        for item in self.inputs:
            if item.flag:
                parts.append(f"[--{item.name}]")
            elif item.required:
                parts.append(f"--{item.name} VALUE")
            else:
                parts.append(f"[--{item.name} VALUE]")
        return " ".join(parts)


# --- helpers -----------------------------------------------------------------------------------

# Values for required options that have no default, so a generated app validates as written.
PLACEHOLDERS = {
    ("sqlite", "path"): "{id}.sqlite3",
    ("duckdb", "path"): "{id}.duckdb",
    ("csv", "path"): "{id}.csv",
    ("*", "url"): "https://example.com/{id}",
    ("*", "host"): "localhost",
    ("*", "database"): "{id}",
    ("*", "user"): "grouparoo",
}


def _option_name(key: str) -> str:
    """An option key as a command-line input (statementTimeout -> statement-timeout)."""
    out = ""
    for ch in key:
        out += f"-{ch.lower()}" if ch.isupper() else ch
    return out.replace("_", "-")


def _option_inputs(options: tuple[Option, ...]) -> tuple[Input, ...]:
    return tuple(
        Input(_option_name(o.key), f"{o.label}{' (secret)' if o.secret else ''}") for o in options
    )


def _options(
    ctx: Context, connector_key: str, options: tuple[Option, ...], *, env_prefix: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for option in options:
        given = ctx.get(_option_name(option.key))
        if given is not None:
            out[option.key] = _typed(given, option)
        elif option.secret:
            out[option.key] = f"env:{env_prefix}_{option.key.upper()}"
        elif option.required:
            placeholder = PLACEHOLDERS.get((connector_key, option.key)) or PLACEHOLDERS.get(
                ("*", option.key)
            )
            if option.default is not None:
                out[option.key] = option.default
            elif placeholder:
                out[option.key] = placeholder.format(id=ctx.object_id)
            elif option.type == "choice" and option.choices:
                out[option.key] = option.choices[0][0]
            else:
                out[option.key] = ctx.object_id
    return out


def _typed(value: str, option: Option) -> Any:
    if option.type == "number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(
                f"--{_option_name(option.key)} must be a number, not {value!r}"
            ) from None
        return int(number) if number.is_integer() else number
    if option.type == "boolean":
        return str(value).lower() in ("true", "1", "yes", "on")
    return value


def _name(ctx: Context) -> str:
    return ctx.get("name") or ctx.object_id


def _schedule(ctx: Context, source_id: str, *, column: str | None) -> dict[str, Any]:
    minutes = ctx.get("frequency-minutes", "15")
    try:
        frequency = int(float(minutes) * 60 * 1000)
    except ValueError:
        raise TemplateError(f"--frequency-minutes must be a number, not {minutes!r}") from None
    if frequency < 60 * 1000:
        raise TemplateError("--frequency-minutes must be at least 1")
    schedule_id = ctx.free_id("schedule", f"{source_id}_schedule", "schedule")
    return {
        "class": "Schedule",
        "id": schedule_id,
        "name": schedule_id,
        "sourceId": source_id,
        "recurring": True,
        "recurringFrequency": frequency,
        "incremental": bool(column),
        "confirmRecords": False,
        "refreshEnabled": True,
        "options": {"column": column} if column else {},
        "filters": [],
    }


def _source_options(ctx: Context, connector: Any, table: str) -> dict[str, Any]:
    """A table source's options: `table` from --from (default the id), the connector's other
    options from their inputs or placeholders."""
    others = tuple(o for o in connector.options if o.key != "table")
    options = _options(
        ctx, connector.app_key, others, env_prefix=generate_id(ctx.object_id).upper()
    )
    if any(o.key == "table" for o in connector.options):
        options = {"table": table, **options}
    return options


def _with_schedule(
    ctx: Context, source: dict[str, Any], column: str | None
) -> list[dict[str, Any]]:
    if ctx.flag("no-schedule"):
        return [source]
    return [source, _schedule(ctx, source["id"], column=column)]


def _property(
    prop_id: str, source_id: str, *, key: str, type_: str, unique: bool, options: dict[str, Any]
) -> dict[str, Any]:
    return {
        "class": "Property",
        "id": prop_id,
        "key": key,
        "type": type_,
        "sourceId": source_id,
        "unique": unique,
        "isArray": False,
        "options": options,
        "filters": [],
    }


def _live_columns(ctx: Context, app: Spec, source_type: str, table: str) -> dict[str, str]:
    """{column: our type} of a table, read from the live database through the app's options."""
    from connectors.base import ConnectorError

    connector = registry.get_source(source_type)
    options = {**app.data["options"], **app.data["secret_options"]}
    from core import crypto

    try:
        options = crypto.resolve_secrets(options)
        with connector(options, {"table": table}) as source:
            return {c.name: c.type for c in source.list_columns()}
    except (ConnectorError, crypto.SecretUnavailable) as exc:
        message = getattr(exc, "message", str(exc))
        raise TemplateError(
            f"cannot read the columns of {table!r} through app {app.id!r}: {message}"
        ) from None


PROPERTY_TYPES = {
    "integer": "integer",
    "float": "float",
    "boolean": "boolean",
    "date": "date",
    "string": "string",
}


def _column_type(column: str, db_type: str | None) -> str:
    type_ = PROPERTY_TYPES.get(db_type or "string", "string")
    if type_ == "string" and "email" in column.lower():
        return "email"
    return type_


def _mapping_arg(ctx: Context) -> tuple[str, str] | None:
    value = ctx.get("mapping")
    if value is None:
        return None
    if value.count("=") != 1 or not all(value.split("=")):
        raise TemplateError(
            '--mapping must look like "column=property_id", e.g. --mapping id=user_id'
        )
    column, prop = value.split("=")
    return column.strip(), prop.strip()


def _primary_key_of(ctx: Context, model: str) -> Spec | None:
    for spec in ctx.config.of_class("property"):
        if spec.data.get("model") == model and spec.data.get("is_primary_key"):
            return spec
    return None


# --- the templates -------------------------------------------------------------------------------


def _model(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    model_type = ctx.get("type", RecordModelType.PROFILE.value)
    if model_type not in RecordModelType.values:
        raise TemplateError(f"--type must be one of {', '.join(RecordModelType.values)}")
    return {
        f"models/{ctx.object_id}.json": [
            {"class": "Model", "id": ctx.object_id, "name": _name(ctx), "type": model_type}
        ]
    }


def _app_template(key: str, connector: Any) -> Template:
    def build(ctx: Context) -> dict[str, list[dict[str, Any]]]:
        options = _options(
            ctx, key, connector.options, env_prefix=generate_id(ctx.object_id).upper()
        )
        return {
            f"apps/{ctx.object_id}.json": [
                {
                    "class": "App",
                    "id": ctx.object_id,
                    "name": _name(ctx),
                    "type": key,
                    "options": options,
                }
            ]
        }

    return Template(
        name=f"{key}:app",
        description=f"A {connector.label} app (a connection). Secret options default to env:<ID>_<OPTION>.",
        cls="app",
        build=build,
        inputs=(Input("name", "Display name"), *_option_inputs(connector.options)),
    )


def _source_template(key: str, connector: Any) -> Template:
    app_key = connector.app_key
    flavour = "query" if is_query_connector(connector) else "table"
    prefix = key[: -len(f"-{flavour}")] if key.endswith(f"-{flavour}") else app_key

    def build_table(ctx: Context) -> dict[str, list[dict[str, Any]]]:
        app = ctx.parent("app")
        if app.data["type"] != app_key:
            raise TemplateError(
                f"--parent: app {app.id!r} is a {app.data['type']} app, not {app_key}"
            )
        model = ctx.model()
        table = ctx.get("from", ctx.object_id)
        wanted = ctx.get("with-columns")
        mapping = _mapping_arg(ctx)
        hwm = ctx.get("high-water-mark")
        live: dict[str, str] | None = None
        columns: list[str] = []
        if wanted in ("*", "all") or ctx.flag("all-columns"):
            live = _live_columns(ctx, app, key, table)
            columns = list(live)
        elif wanted:
            columns = [c.strip() for c in wanted.split(",") if c.strip()]
            if ctx.flag("live"):
                live = _live_columns(ctx, app, key, table)
                missing = [c for c in columns if c not in live]
                if missing:
                    raise TemplateError(
                        f"--with-columns: {', '.join(missing)} not in table {table!r}"
                    )
        if mapping is None:
            if not columns:
                raise TemplateError(
                    '--mapping is required without --with-columns: "column=property_id" maps the '
                    "source to a unique property (its own column makes it the primary source)"
                )
            column = "id" if "id" in columns else columns[0]
            mapping = (
                column,
                ctx.free_id("property", generate_id(f"{ctx.object_id}_{column}"), ctx.object_id),
            )
        column, mapped_prop = mapping
        taken = {s.id for s in ctx.config.of_class("property")}
        own_mapping = mapped_prop not in taken  # a new property: this source is primary
        if own_mapping and column not in columns:
            columns.insert(0, column)
        source = {
            "class": "Source",
            "id": ctx.object_id,
            "name": _name(ctx),
            "type": key,
            "appId": app.id,
            "modelId": model,
            "options": _source_options(ctx, connector, table),
            "mapping": {column: mapped_prop},
        }
        files: dict[str, list[dict[str, Any]]] = {
            f"sources/{ctx.object_id}.json": _with_schedule(ctx, source, hwm)
        }
        taken.add(mapped_prop)
        for name in columns:
            unique = name == column
            if unique:
                if not own_mapping:
                    continue  # the mapping names a property another source owns
                prop_id = mapped_prop
            else:
                base = ctx.free_id("property", generate_id(name) or "column", ctx.object_id)
                prop_id, n = base, 1
                while prop_id in taken:
                    n += 1
                    prop_id = f"{base}_{n}"
                taken.add(prop_id)
            type_ = _column_type(name, live.get(name) if live else None)
            if unique and type_ == "float":
                type_ = "integer"
            files[f"properties/{prop_id}.json"] = [
                _property(
                    prop_id,
                    ctx.object_id,
                    key=prop_id,
                    type_=type_,
                    unique=unique,
                    options={"column": name, "aggregationMethod": "exact"},
                )
            ]
        return files

    def build_query(ctx: Context) -> dict[str, list[dict[str, Any]]]:
        app = ctx.parent("app")
        if app.data["type"] != app_key:
            raise TemplateError(
                f"--parent: app {app.id!r} is a {app.data['type']} app, not {app_key}"
            )
        model = ctx.model()
        mapping = _mapping_arg(ctx)
        if mapping is None:
            pk = _primary_key_of(ctx, model)
            if pk is None:
                raise TemplateError(
                    '--mapping "column=property_id" is required: the model has no primary key in '
                    "this directory yet"
                )
            mapping = (pk.data["options"].get("column") or pk.data["key"], pk.id)
        column, mapped_prop = mapping
        if ctx.config.get("property", mapped_prop) is None:
            raise TemplateError(
                f"--mapping: no property {mapped_prop!r} in this directory (a query source maps an existing unique property)"
            )
        query = ctx.get("query", f"SELECT {column} FROM {ctx.get('from', ctx.object_id)}")
        source = {
            "class": "Source",
            "id": ctx.object_id,
            "name": _name(ctx),
            "type": key,
            "appId": app.id,
            "modelId": model,
            "options": {"query": query},
            "mapping": {column: mapped_prop},
        }
        return {f"sources/{ctx.object_id}.json": _with_schedule(ctx, source, None)}

    common = (
        Input("parent", "The id of the app", required=True),
        Input("model", "The id of the model (default: the only one)"),
        Input("name", "Display name"),
        Input("frequency-minutes", "Minutes between scheduled runs", default="15"),
        Input("no-schedule", "Write the source without a schedule", flag=True),
    )
    if flavour == "table":
        return Template(
            name=f"{prefix}:table:source",
            description=(
                f"A {connector.label} source with its schedule, and one property per column "
                f"(--with-columns a,b,c, or '*' for every column of the live table)."
            ),
            cls="source",
            build=build_table,
            batch=True,
            inputs=(
                *common,
                *_option_inputs(tuple(o for o in connector.options if o.key != "table")),
                Input("from", "The table (default: the id)"),
                Input(
                    "mapping", "column=property_id; a new property makes this the primary source"
                ),
                Input("with-columns", "Columns to make properties of, comma separated, or *"),
                Input(
                    "live", "Check --with-columns against the live table and type them", flag=True
                ),
                Input("high-water-mark", "The schedule's watermark column (e.g. updated_at)"),
            ),
        )
    return Template(
        name=f"{prefix}:query:source",
        description=f"A {connector.label} source (a SELECT) with its schedule.",
        cls="source",
        build=build_query,
        batch=True,
        inputs=(
            *common,
            Input("query", "The SELECT returning the rows (default: SELECT <column> FROM <id>)"),
            Input("mapping", "column=property_id (default: the model's primary key)"),
        ),
    )


def _property_template(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    source = ctx.parent("source")
    try:
        connector = registry.get_source(source.data["type"])
    except registry.UnknownConnector as exc:
        raise TemplateError(str(exc)) from None
    type_ = ctx.get("type", "string")
    if is_query_connector(connector):
        mapped = next(iter(source.data["mapping"].values()), None)
        if not mapped:
            raise TemplateError(f"source {source.id!r} has no mapping to use in a query")
        options = {
            "query": ctx.get(
                "query", f"SELECT NULL AS value WHERE {{{{{{ {mapped} }}}}}} IS NOT NULL"
            )
        }
    else:
        options = {
            "column": ctx.get("column", ctx.object_id),
            "aggregationMethod": ctx.get("aggregation-method", "exact"),
        }
        if ctx.get("sort-column"):
            options["sortColumn"] = ctx.get("sort-column")
    prop = _property(
        ctx.object_id,
        source.id,
        key=ctx.get("key", ctx.object_id),
        type_=type_,
        unique=ctx.flag("unique"),
        options=options,
    )
    return {f"properties/{ctx.object_id}.json": [prop]}


def _schedule_template(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    source = ctx.parent("source")
    for other in ctx.config.of_class("schedule"):
        if other.data.get("source") == source.id:
            raise TemplateError(
                f'source {source.id!r} already has a schedule, "{other.id}" ({other.file})'
            )
    schedule = _schedule(ctx, source.id, column=ctx.get("high-water-mark"))
    schedule["id"] = ctx.object_id
    schedule["name"] = _name(ctx)
    return {f"schedules/{ctx.object_id}.json": [schedule]}


def _group_template(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    model = ctx.model()
    match_type = ctx.get("match-type", GroupMatchType.ALL.value)
    if match_type not in GroupMatchType.values:
        raise TemplateError("--match-type must be all or any")
    rules = []
    if ctx.get("property"):
        prop = ctx.parent("property", name="property")
        rule: dict[str, Any] = {"propertyId": prop.id, "op": ctx.get("op", "exists")}
        if ctx.get("match") is not None:
            rule["match"] = ctx.get("match")
        rules.append(rule)
    return {
        f"groups/{ctx.object_id}.json": [
            {
                "class": "Group",
                "id": ctx.object_id,
                "name": _name(ctx),
                "modelId": model,
                "matchType": match_type,
                "rules": rules,
            }
        ]
    }


def _destination_template(key: str, connector: Any) -> Template:
    prefix = key[: -len("-export")] if key.endswith("-export") else connector.app_key

    def build(ctx: Context) -> dict[str, list[dict[str, Any]]]:
        app = ctx.parent("app")
        if app.data["type"] != connector.app_key:
            raise TemplateError(
                f"--parent: app {app.id!r} is a {app.data['type']} app, not {connector.app_key}"
            )
        model = ctx.model()
        defaults = {"table": ctx.object_id, "primaryKey": "id"}
        for name, value in defaults.items():
            if (
                any(o.key == name for o in connector.options)
                and ctx.get(_option_name(name)) is None
            ):
                ctx.params[_option_name(name)] = value
        options = _options(
            ctx, connector.app_key, connector.options, env_prefix=generate_id(ctx.object_id).upper()
        )
        collection = ctx.get("collection", DestinationCollection.MODEL.value)
        if collection not in DestinationCollection.values:
            raise TemplateError(
                f"--collection must be one of {', '.join(DestinationCollection.values)}"
            )
        sync_mode = ctx.get("sync-mode", SyncMode.SYNC.value)
        if sync_mode not in SyncMode.values:
            raise TemplateError(f"--sync-mode must be one of {', '.join(SyncMode.values)}")
        destination: dict[str, Any] = {
            "class": "Destination",
            "id": ctx.object_id,
            "name": _name(ctx),
            "type": key,
            "appId": app.id,
            "modelId": model,
            "collection": collection,
        }
        if collection == DestinationCollection.GROUP:
            destination["groupId"] = ctx.parent("group", name="group").id
        pk = _primary_key_of(ctx, model)
        mapping = {options.get("primaryKey", "id"): pk.id} if pk is not None else {}
        destination.update(
            {
                "syncMode": sync_mode,
                "options": options,
                "mapping": mapping,
                "destinationGroupMemberships": {},
            }
        )
        return {f"destinations/{ctx.object_id}.json": [destination]}

    return Template(
        name=f"{prefix}:destination",
        description=f"A {connector.label} destination; maps the model's primary key when known.",
        cls="destination",
        build=build,
        inputs=(
            Input("parent", "The id of the app", required=True),
            Input("model", "The id of the model (default: the only one)"),
            Input("name", "Display name"),
            Input("collection", "none, group or model (default model)"),
            Input("group", "The tracked group's id (collection group)"),
            Input("sync-mode", "sync, additive or enrich (default sync)"),
            *_option_inputs(connector.options),
        ),
    )


def _topics(ctx: Context, name: str) -> list[str]:
    value = ctx.get(name)
    if not value:
        return []
    topics = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in topics if t not in ApiTopic.values]
    if unknown:
        raise TemplateError(
            f"--{name}: unknown topic(s) {', '.join(unknown)} (one of {', '.join(ApiTopic.values)})"
        )
    return topics


def _apikey_template(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    read, write = _topics(ctx, "read"), _topics(ctx, "write")
    permissions = [
        {"topic": topic, "read": topic in read or topic in write, "write": topic in write}
        for topic in sorted(set(read) | set(write))
    ]
    return {
        f"apiKeys/{ctx.object_id}.json": [
            {
                "class": "ApiKey",
                "id": ctx.object_id,
                "name": _name(ctx),
                "options": {
                    "permissionAllRead": ctx.flag("all-read"),
                    "permissionAllWrite": ctx.flag("all-write"),
                },
                "permissions": permissions,
            }
        ]
    }


def _team_template(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    return {
        f"teams/{ctx.object_id}.json": [
            {
                "class": "Team",
                "id": ctx.object_id,
                "name": _name(ctx),
                "options": {
                    "permissionAllRead": ctx.flag("all-read"),
                    "permissionAllWrite": ctx.flag("all-write"),
                },
                "permissions": [],
            }
        ]
    }


def _teammember_template(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    team = ctx.parent("team")
    email = ctx.get("email")
    if not email or "@" not in email:
        raise TemplateError("--email is required (the member's email address)")
    return {
        f"teams/{team.id}_{ctx.object_id}.json": [
            {
                "class": "TeamMember",
                "id": ctx.object_id,
                "teamId": team.id,
                "email": email,
                "options": {
                    "firstName": ctx.get("first-name", ""),
                    "lastName": ctx.get("last-name", ""),
                },
            }
        ]
    }


def templates() -> dict[str, Template]:
    """Every template, by name (connector templates for each registered connector)."""
    found: list[Template] = [
        Template(
            "model",
            "A model: the shape of a kind of record.",
            "model",
            _model,
            inputs=(
                Input("name", "Display name"),
                Input("type", "profile, account or custom", default="profile"),
            ),
        )
    ]
    for key, connector in ((k, registry.get_app(k)) for k, _ in registry.app_choices()):
        found.append(_app_template(key, connector))
    names = set()
    for key, connector in ((k, registry.get_source(k)) for k, _ in registry.source_choices()):
        if connector.reads_records:
            continue  # computed from the records: a source file and its properties, by hand
        template = _source_template(key, connector)
        if template.name not in names:  # the first source of an app per flavour (csv-file)
            names.add(template.name)
            found.append(template)
    found.append(
        Template(
            "property",
            "A property of a source: a column (table sources) or a query with {{{ property_id }}} (query sources).",
            "property",
            _property_template,
            inputs=(
                Input("parent", "The id of the source", required=True),
                Input("key", "The property key (default: the id)"),
                Input("type", "string, email, integer, float, boolean, date, ... (default string)"),
                Input("column", "Table sources: the column (default: the id)"),
                Input(
                    "aggregation-method",
                    "Table sources: exact, count, sum, min, max, average, most recent value, ...",
                ),
                Input("sort-column", "Table sources: orders rows for most/least recent"),
                Input("query", "Query sources: a SELECT of one value"),
                Input("unique", "The property identifies records", flag=True),
            ),
        )
    )
    found.append(
        Template(
            "schedule",
            "A schedule for a source (every 15 minutes by default).",
            "schedule",
            _schedule_template,
            inputs=(
                Input("parent", "The id of the source", required=True),
                Input("name", "Display name"),
                Input("frequency-minutes", "Minutes between runs", default="15"),
                Input("high-water-mark", "The watermark column (e.g. updated_at)"),
            ),
        )
    )
    found.append(
        Template(
            "group",
            "A group of records defined by rules (optionally one rule from --property/--op/--match).",
            "group",
            _group_template,
            inputs=(
                Input("model", "The id of the model (default: the only one)"),
                Input("name", "Display name"),
                Input("match-type", "all or any (default all)"),
                Input("property", "A property id for a first rule"),
                Input("op", "The rule's operation (default exists)"),
                Input("match", "The rule's value"),
            ),
        )
    )
    for key, connector in (
        (k, registry.get_destination(k)) for k, _ in registry.destination_choices()
    ):
        found.append(_destination_template(key, connector))
    found.append(
        Template(
            "apikey",
            "An API key (apply mints the key and shows it once).",
            "apikey",
            _apikey_template,
            inputs=(
                Input("name", "Display name"),
                Input("read", "Topics to read, comma separated"),
                Input("write", "Topics to write, comma separated"),
                Input("all-read", "Read every topic", flag=True),
                Input("all-write", "Write every topic", flag=True),
            ),
        )
    )
    found.append(
        Template(
            "team",
            "A team: a Django group of staff users with model permissions.",
            "team",
            _team_template,
            inputs=(
                Input("name", "Display name"),
                Input("all-read", "Read everything", flag=True),
                Input("all-write", "Change everything", flag=True),
            ),
        )
    )
    found.append(
        Template(
            "teammember",
            "A member of a team: a staff user (password only through env:NAME).",
            "teammember",
            _teammember_template,
            inputs=(
                Input("parent", "The id of the team", required=True),
                Input("email", "The member's email", required=True),
                Input("first-name", "First name"),
                Input("last-name", "Last name"),
            ),
        )
    )
    return {t.name: t for t in found}
