"""The config file format, class by class: which keys each class takes, what Grouparoo 0.9 spelled
differently, and how one object becomes a normalized `Spec` — the same shape `core.config.state`
reads back from the database, so "what the files say" and "what the database holds" compare
with `==`.

Facts carried over from Grouparoo 0.9 (core/src/classes/codeConfig.ts and
core/src/modules/configLoaders/*.ts of grouparoo/grouparoo at v0.9.0, and the "Configuration
Files" page of its documentation):

- Every object has `id` and `class`; the class matches case-insensitively (`"class": "app"`,
  `"teamMember"`); ids must be unique per class.
- Source: `appId`, `modelId`, `type`, `options`, `mapping` {remote column: property id}. The
  source whose mapping names a property it owns itself is the model's primary source and that
  property is the Primary Key (Grouparoo's "bootstrapped" property).
- Property: `key` (or `name`), `type`, `sourceId`, `unique`, `isArray`, `options` (table:
  `column`, `aggregationMethod` such as "most recent value", `sortColumn`; query: `query` with
  `{{{ ... }}}` variables), `filters` [{key, op, match, relativeMatch*}]. `identifying` was
  tolerated with a deprecation warning.
- Schedule: `sourceId`, `recurring`, `recurringFrequency` in milliseconds, `incremental`,
  `confirmRecords` (formerly `confirmProfiles`), `refreshEnabled`, `options` (`column` or
  `maxColumn`), `filters`.
- Group: `modelId`, `rules` [{propertyId, op, match, relativeMatchNumber, relativeMatchUnit,
  relativeMatchDirection}]; relative dates are `relative_gt` (in the past) and `relative_lt` (in
  the future). `type` was tolerated with a warning ("manual" groups were refused).
- Destination: `appId`, `modelId`, `type`, `syncMode`, `collection` ("none", "group", "model"),
  `groupId`, `options`, `mapping` {destination field: property id},
  `destinationGroupMemberships` {remote name: group id}.
- ApiKey and Team: `permissions` [{topic, read, write}], `options` {permissionAllRead,
  permissionAllWrite}; ApiKey `apiKey`. TeamMember: `teamId`, `email`, `options` {firstName,
  lastName, password}. Setting: `pluginName`, `key`, `value`.
- App: `type`, `options`, `refresh` {query, recurringFrequency (ms)}.
- Option values naming an environment variable `GROUPAROO_OPTION__<TOPIC>__<value>` are read
  from it. Here `env:NAME` works too (and is how secrets are best written).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from connectors import registry
from connectors.base import Option
from connectors.url_credentials import split_url_options, url_secrets
from core.choices import (
    AGGREGATION_ALIASES,
    FILTER_OP_ALIASES,
    ApiTopic,
    DestinationCollection,
    FilterOp,
    GroupMatchType,
    PropertyType,
    RecordModelType,
    RelativeUnit,
    RuleOp,
    SyncMode,
)
from core.config.loader import RawObject
from core.config.problems import ERROR, WARNING, Problem, Problems

ENV_PREFIX = "env:"
GROUPAROO_OPTION_PREFIX = "GROUPAROO_OPTION__"

# Classes in the order objects are created (a class only refers to classes before it, except a
# source's mapping, which is set once the properties exist).
CLASSES: tuple[str, ...] = (
    "setting",
    "model",
    "app",
    "source",
    "property",
    "schedule",
    "group",
    "destination",
    "apikey",
    "team",
    "teammember",
)
CLASS_LABELS = {
    "setting": "Setting",
    "model": "Model",
    "app": "App",
    "source": "Source",
    "property": "Property",
    "schedule": "Schedule",
    "group": "Group",
    "destination": "Destination",
    "apikey": "ApiKey",
    "team": "Team",
    "teammember": "TeamMember",
}
# Grouparoo's development sample records: not configuration here (sources import records).
SKIPPED_CLASSES = {"record", "profile"}

COMMON_KEYS = frozenset({"id", "class"})
ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "setting": frozenset({"pluginName", "plugin", "key", "value"}),
    "model": frozenset({"name", "type"}),
    "app": frozenset({"name", "type", "options", "refresh"}),
    "source": frozenset({"name", "type", "appId", "modelId", "options", "mapping"}),
    "property": frozenset(
        {"key", "name", "type", "sourceId", "unique", "isArray", "options", "filters"}
    ),
    "schedule": frozenset(
        {
            "name",
            "sourceId",
            "recurring",
            "incremental",
            "recurringFrequency",
            "confirmRecords",
            "refreshEnabled",
            "options",
            "filters",
            "cron",
        }
    ),
    "group": frozenset({"name", "modelId", "rules", "matchType"}),
    "destination": frozenset(
        {
            "name",
            "type",
            "appId",
            "modelId",
            "syncMode",
            "collection",
            "groupId",
            "options",
            "mapping",
            "destinationGroupMemberships",
        }
    ),
    "apikey": frozenset(
        {"name", "apiKey", "permissions", "options", "permissionAllRead", "permissionAllWrite"}
    ),
    "team": frozenset(
        {"name", "permissions", "options", "permissionAllRead", "permissionAllWrite"}
    ),
    "teammember": frozenset({"teamId", "email", "options", "firstName", "lastName"}),
}
# Keys Grouparoo 0.9 accepted with a deprecation warning: accepted here with the same warning.
TOLERATED_KEYS: dict[str, dict[str, str]] = {
    "property": {
        "identifying": "Grouparoo removed `identifying` from properties; it is ignored (use `unique`)",
        "isPrimaryKey": "the primary key follows from the primary source's mapping; it is ignored",
    },
    "group": {"type": "Grouparoo 0.8 removed group types; `type` is ignored"},
    "schedule": {"confirmProfiles": "`confirmProfiles` was renamed `confirmRecords`"},
}

ALWAYS_WARN = frozenset({"confirmProfiles"})

# Group rule operations as Grouparoo spelled them -> ours. `relative_gt`/`relative_lt` and the
# LIKE family are handled in `_rule`.
RULE_OPS = {op.value: op.value for op in RuleOp}
# The older filter words Grouparoo's docs and generators used (equals, greater than, ...).
OLD_OP_WORDS = {word: op.value for word, op in FILTER_OP_ALIASES.items() if word != op.value}

# Grouparoo permission topics (singular) -> our API topics.
API_TOPIC_ALIASES: dict[str, tuple[str, ...]] = {
    "apiKey": (ApiTopic.API_KEYS,),
    "app": (ApiTopic.APPS,),
    "destination": (ApiTopic.DESTINATIONS,),
    "export": (ApiTopic.EXPORTS,),
    "group": (ApiTopic.GROUPS,),
    "import": (ApiTopic.IMPORTS,),
    "model": (ApiTopic.MODELS,),
    "property": (ApiTopic.PROPERTIES,),
    "record": (ApiTopic.RECORDS,),
    "profile": (ApiTopic.RECORDS,),
    "run": (ApiTopic.RUNS,),
    "source": (ApiTopic.SOURCES, ApiTopic.SCHEDULES),
    "schedule": (ApiTopic.SCHEDULES,),
    "system": (ApiTopic.SYSTEM, ApiTopic.SETTINGS),
    "setting": (ApiTopic.SETTINGS,),
}
# Grouparoo topics with nothing to grant here (their parts of Grouparoo do not exist).
UNMAPPED_TOPICS = frozenset({"file", "log", "notification", "resque", "setupStep", "team"})

# Team topics -> the Django models whose permissions they grant ("app_label.model").
TEAM_TOPIC_MODELS: dict[str, tuple[str, ...]] = {
    "apiKey": ("core.apikey", "core.apikeypermission"),
    "app": ("core.app", "core.apprefreshquery"),
    "destination": (
        "core.destination",
        "core.destinationmapping",
        "core.destinationgroupmembership",
    ),
    "export": ("core.export",),
    "group": ("core.group", "core.grouprule", "core.groupmember"),
    "import": ("core.import",),
    "model": ("core.recordmodel",),
    "property": ("core.property", "core.propertyfilter"),
    "record": ("core.record", "core.recordproperty"),
    "run": ("core.run",),
    "source": ("core.source", "core.sourcemapping", "core.schedule", "core.schedulefilter"),
    "system": ("core.setting",),
    "team": ("auth.group", "auth.user"),
}
TEAM_TOPIC_ALIASES = {
    ApiTopic.API_KEYS.value: "apiKey",
    ApiTopic.APPS.value: "app",
    ApiTopic.DESTINATIONS.value: "destination",
    ApiTopic.EXPORTS.value: "export",
    ApiTopic.GROUPS.value: "group",
    ApiTopic.IMPORTS.value: "import",
    ApiTopic.MODELS.value: "model",
    ApiTopic.PROPERTIES.value: "property",
    ApiTopic.RECORDS.value: "record",
    "profile": "record",
    ApiTopic.RUNS.value: "run",
    ApiTopic.SOURCES.value: "source",
    ApiTopic.SCHEDULES.value: "source",
    ApiTopic.SETTINGS.value: "system",
}
READ_ACTIONS = ("view",)
WRITE_ACTIONS = ("add", "change", "delete")

# Grouparoo 0.9's settings (core/src/modules/ops/setting.ts: plugins core, interface and
# telemetry) -> the core setting of this product that means the same. Grouparoo's retry delays
# of started imports and exports are how long work may stall before another worker takes it
# over: here one lease, `runs-lease-seconds`, covers runs and exports.
GROUPAROO_SETTINGS: dict[tuple[str, str], str] = {
    ("core", "exports-max-retries-count"): "exports-max-attempts",
    ("core", "groups-calculation-delay-minutes"): "groups-relative-recompute-minutes",
    ("core", "imports-retry-delay-seconds"): "runs-lease-seconds",
    ("core", "exports-retry-delay-seconds"): "runs-lease-seconds",
    ("core", "records-default-country-code"): "records-default-country-code",
}
_NO_PROCESSORS = "destinations answer each batch when it is sent; there are no export processors"
_NO_SWEEPER = "nothing here deletes old {what} yet"
# Grouparoo's settings with nothing to set here, and why: skipped with a warning naming them.
GROUPAROO_SETTINGS_IGNORED: dict[tuple[str, str], str] = {
    ("core", "cluster-name"): "the admin shows no cluster name",
    ("core", "runs-recurring-internal-run-frequency-hours"): (
        "records are read again by their sources' schedules (give one `incremental: false`)"
    ),
    ("core", "runs-previous-can-include-errors"): (
        "a run starts from the watermark its schedule stored after the last complete run"
    ),
    ("core", "export-processors-retry-delay-seconds"): _NO_PROCESSORS,
    ("core", "export-processors-max-retries-count"): _NO_PROCESSORS,
    ("core", "confirm-records-days"): (
        "a schedule with `confirmRecords` confirms its records on every full run"
    ),
    ("core", "sweeper-delete-old-runs-days"): _NO_SWEEPER.format(what="runs"),
    ("core", "sweeper-delete-old-imports-days"): _NO_SWEEPER.format(what="imports"),
    ("core", "sweeper-delete-old-logs-days"): "there is no log of changes here to sweep",
    ("interface", "status-calculation-frequency-seconds"): (
        "the admin computes its figures when a page is shown"
    ),
    ("telemetry", "customer-id"): "this product sends no telemetry",
}

# Option names of Grouparoo plugins that our connectors spell differently: (kind, connector key)
# -> {Grouparoo name: our name}.
OPTION_RENAMES: dict[tuple[str, str], dict[str, str]] = {
    ("app", "sqlite"): {"file": "path"},
    ("app", "postgres"): {"username": "user"},
}

_MUSTACHE = re.compile(r"\{\{\{?\s*(?P<name>[^{}\s]+)\s*\}?\}\}")


@dataclass(frozen=True)
class Ref:
    """A reference from one object to another: `key` (where in the file) -> class and id."""

    key: str
    cls: str
    id: str


@dataclass
class Spec:
    """One object of the files, normalized. `data` has exactly the shape state.read_* returns for
    the database object, with other objects named by their config ids."""

    cls: str
    id: str
    file: str
    index: int | None
    data: dict[str, Any]
    refs: list[Ref] = field(default_factory=list)
    # ApiKey: the key given in the file (resolved); TeamMember: the password (resolved).
    secret: str | None = None
    # Where each group rule was in the file ("rules[2]"), for problems found later.
    rule_paths: list[str] = field(default_factory=list)
    # Query properties: the ids of the properties their `{{{ }}}` variables name.
    query_uses: set[str] = field(default_factory=set)
    # Settings: the Grouparoo setting name the file gave, read as one of ours.
    grouparoo_key: str | None = None

    @property
    def label(self) -> str:
        return CLASS_LABELS[self.cls]

    @property
    def where(self) -> str:
        return f'{self.file}: {self.label} "{self.id}"'


class ObjectContext:
    """Collects problems about one raw object, naming its file, id and class."""

    def __init__(self, raw: RawObject, cls: str, problems: Problems) -> None:
        self.raw = raw
        self.cls = cls
        self.problems = problems
        self.failed = False

    def _problem(self, level: str, key: str, message: str) -> None:
        self.problems.add(
            Problem(
                level,
                self.raw.file,
                message,
                object_id=self.raw.id,
                object_class=CLASS_LABELS.get(self.cls, self.raw.class_name or None),
                key=key,
            )
        )

    def error(self, key: str, message: str) -> None:
        self.failed = True
        self._problem(ERROR, key, message)

    def warn(self, key: str, message: str) -> None:
        self._problem(WARNING, key, message)


# --- small value helpers --------------------------------------------------------------------


def class_of(raw: RawObject) -> str:
    """The canonical class name ("teammember" for "teamMember"), or "" when missing."""
    return raw.class_name.lower()


def text(ctx: ObjectContext, key: str, value: Any, *, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            ctx.error(key, "is required")
        return ""
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        ctx.error(key, f"must be a string, not {json_type(value)}")
        return ""
    return str(value)


def boolean(ctx: ObjectContext, key: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    ctx.error(key, f"must be true or false, not {value!r}")
    return default


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def match_text(value: Any) -> str:
    """A match value as the text our rules and filters store ("true", "100", "1.5")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(match_text(v) for v in value)
    return str(value)


# A number written as text: an optional sign, ASCII digits, an optional fraction and exponent.
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z", re.ASCII)
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)


def number_value(value: Any) -> int | float | None:
    """A JSON number, or a string holding a plainly written one ("60", "1800000", "1e3"), as a
    number (an int when whole); None for anything else (booleans, "abc", "nan", "1_000").

    Grouparoo kept option values as text and its columns coerced numbers given as strings (a
    rule's `"relativeMatchNumber": "60"` in its own demo configs), so both spellings are read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    if _INTEGER_TEXT.match(stripped):
        try:
            return int(stripped)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            return None
    if not _NUMBER_TEXT.match(stripped):
        return None
    return number_value(float(stripped))


def env_value(name: str) -> str | None:
    return os.environ.get(name)


def mustache_names(template: str) -> list[str]:
    """The variable names of `{{{ name }}}` (or `{{ name }}`) placeholders, in order."""
    return [m.group("name") for m in _MUSTACHE.finditer(template or "")]


def mustache_replace(template: str, mapping: dict[str, str]) -> str:
    """`template` with each placeholder's name replaced through `mapping` (braces kept)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in mapping:
            return match.group(0)
        start, end = match.span("name")
        whole = match.group(0)
        offset = match.start()
        return whole[: start - offset] + mapping[name] + whole[end - offset :]

    return _MUSTACHE.sub(replace, template or "")


def api_key_prefix(key: str) -> str:
    """The prefix the server finds `key` by: ours for a key of the form `grp_<prefix>.<secret>`,
    one derived from its hash for any other (Grouparoo's keys); see core.services.api_keys."""
    from core.services.api_keys import api_key_prefix as prefix_of

    return prefix_of(key)


# --- options ----------------------------------------------------------------------------------


def options(
    ctx: ObjectContext,
    value: Any,
    *,
    key: str = "options",
    topic: str,
    declared: tuple[Option, ...] = (),
    renames: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Normalize an options object into (plain options, secret options).

    Null values are dropped (as Grouparoo did). Secret options (declared type "secret") keep
    `env:NAME` references as they are — they are read at connect time — and a literal secret is
    accepted with a warning. Other options have `env:NAME` and `GROUPAROO_OPTION__<TOPIC>__<v>`
    values resolved now, since only secrets are resolved at connect time.
    """
    if value is None:
        return {}, {}
    if not isinstance(value, dict):
        ctx.error(key, f"must be an object, not {json_type(value)}")
        return {}, {}
    secret_keys = {o.key for o in declared if o.secret}
    number_keys = {o.key for o in declared if o.type == "number"}
    plain: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for name, item in value.items():
        if item is None:
            continue
        name = str(name)
        if renames and name in renames and renames[name] not in value:
            ctx.warn(
                f"{key}.{name}", f"is spelled `{renames[name]}` here; read as `{renames[name]}`"
            )
            name = renames[name]
        path = f"{key}.{name}"
        secret = name in secret_keys
        if isinstance(item, str):
            item = _option_string(ctx, path, item, topic=topic, secret=secret)
            if item is None:
                continue
        if name in number_keys and not secret:
            item = _number_option(ctx, path, item)
            if item is None:
                continue
        (secrets if secret else plain)[name] = item
    return plain, secrets


def _number_option(ctx: ObjectContext, path: str, item: Any) -> int | float | None:
    """A number option's value as a number: Grouparoo stored options as text, so `"5432"` and
    `5432` are one port. Empty is unset; anything else that is not a number is an error."""
    if item == "":
        return None
    number = number_value(item)
    if number is None:
        ctx.error(path, f"must be a number, not {item!r}")
    return number


def _option_string(ctx: ObjectContext, path: str, item: str, *, topic: str, secret: bool) -> Any:
    grouparoo_env = f"{GROUPAROO_OPTION_PREFIX}{topic.upper()}__{item}"
    if item.startswith(ENV_PREFIX):
        name = item[len(ENV_PREFIX) :].strip()
        if not name:
            ctx.error(path, "`env:` needs a variable name (env:NAME)")
            return None
        if secret:
            if env_value(name) is None:
                ctx.warn(
                    path,
                    f"environment variable {name} is not set here; it is read when the server "
                    f"connects, so it must be set there",
                )
            return f"{ENV_PREFIX}{name}"
        resolved = env_value(name)
        if resolved is None:
            ctx.error(path, f"environment variable {name} is not set")
            return None
        return resolved
    if item and env_value(grouparoo_env) is not None:
        return f"{ENV_PREFIX}{grouparoo_env}" if secret else env_value(grouparoo_env)
    if secret and item:
        ctx.warn(path, "a secret written in clear in a config file; prefer env:NAME")
    return item


def apply_option_compat(
    ctx: ObjectContext,
    kind: str,
    connector_key: str,
    plain: dict[str, Any],
    declared: tuple[Option, ...],
) -> None:
    """Grouparoo option spellings our connectors do not share, and required options with a
    declared default that a Grouparoo file could leave out (Grouparoo's host was optional)."""
    if kind == "app" and connector_key == "postgres" and "ssl" in plain:
        ssl = plain.pop("ssl")
        on = ssl is True or str(ssl).strip().lower() in ("true", "1", "require", "yes")
        if on and "sslmode" not in plain:
            plain["sslmode"] = "require"
        ctx.warn("options.ssl", f"is read as sslmode {'require' if on else '(default)'}")
    for option in declared:
        if option.required and option.default is not None and option.key not in plain:
            if not option.secret:
                plain[option.key] = option.default
                ctx.warn(
                    f"options.{option.key}",
                    f"not set; using the connector's default {option.default!r}",
                )


# --- filters and rules ------------------------------------------------------------------------

FILTER_KEYS = frozenset(
    {"key", "op", "match", "relativeMatchNumber", "relativeMatchUnit", "relativeMatchDirection"}
)


def filters(ctx: ObjectContext, value: Any, key: str = "filters") -> list[dict[str, Any]]:
    """Normalize a filters array ([{key, op, match, relativeMatch*}])."""
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.error(key, f"must be an array, not {json_type(value)}")
        return []
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        path = f"{key}[{i}]"
        if not isinstance(item, dict):
            ctx.error(path, f"must be an object, not {json_type(item)}")
            continue
        for extra in sorted(set(item) - FILTER_KEYS):
            ctx.error(f"{path}.{extra}", "is not a key of a filter")
        op = _filter_op(ctx, f"{path}.op", item.get("op"))
        column = text(ctx, f"{path}.key", item.get("key"), required=True)
        number, unit, direction = _relative(ctx, path, item)
        match = match_text(item.get("match"))
        if (
            op
            and op not in (FilterOp.EXISTS, FilterOp.NOT_EXISTS)
            and match == ""
            and number is None
        ):
            ctx.error(f"{path}.match", f"operation {op!r} needs a value to compare with")
        out.append(
            {
                "key": column,
                "op": op,
                "match": match,
                "relative_match_number": number,
                "relative_match_unit": unit,
                "relative_match_direction": direction,
            }
        )
    return out


def _filter_op(ctx: ObjectContext, key: str, value: Any) -> str:
    op = text(ctx, key, value, required=True)
    if not op:
        return ""
    if op in FilterOp.values:
        return op
    lowered = op.strip().lower()
    if lowered in OLD_OP_WORDS:
        new = OLD_OP_WORDS[lowered]
        ctx.warn(key, f"the old filter word {op!r} is read as {new!r}")
        return new
    ctx.error(key, f"unknown filter operation {op!r} (one of {', '.join(FilterOp.values)})")
    return ""


def _relative(ctx: ObjectContext, path: str, item: dict[str, Any]) -> tuple[int | None, str, str]:
    number = item.get("relativeMatchNumber")
    unit = item.get("relativeMatchUnit")
    direction = item.get("relativeMatchDirection")
    if number is not None:
        value = number_value(number)
        if value is None or value < 0 or not isinstance(value, int):
            ctx.error(f"{path}.relativeMatchNumber", f"must be a whole number, not {number!r}")
            number = None
        else:
            number = value
    unit_text = str(unit).strip().lower() if unit not in (None, "") else ""
    if unit_text and unit_text not in RelativeUnit.values:
        ctx.error(
            f"{path}.relativeMatchUnit",
            f"unknown unit {unit!r} (one of {', '.join(RelativeUnit.values)})",
        )
        unit_text = ""
    if (number is None) != (not unit_text):
        ctx.error(f"{path}.relativeMatchUnit", "a relative match needs both a number and a unit")
    direction_text = str(direction).strip().lower() if direction not in (None, "") else ""
    if direction_text and direction_text not in ("subtract", "add"):
        ctx.error(
            f"{path}.relativeMatchDirection", f"must be 'subtract' or 'add', not {direction!r}"
        )
        direction_text = ""
    return number, unit_text, direction_text


_LIKE = re.compile(r"^(?P<head>%?)(?P<body>[^%_]*)(?P<tail>%?)$")


def _like_op(op: str, match: str) -> tuple[str, str] | None:
    """A LIKE pattern as one of our operations, when it has one (x, x%, %x, %x%)."""
    found = _LIKE.match(match)
    if not found or not found.group("body"):
        return None
    head, body, tail = found.group("head"), found.group("body"), found.group("tail")
    negated = op.lower().startswith("not")
    if head and tail:
        return (RuleOp.NOT_SUBSTRING if negated else RuleOp.SUBSTRING), body
    if negated:
        return (RuleOp.NE, body) if not head and not tail else None
    if tail:
        return RuleOp.STARTS_WITH, body
    if head:
        return RuleOp.ENDS_WITH, body
    return RuleOp.EQ, body


RULE_KEYS = frozenset(
    {
        "propertyId",
        "key",
        "type",
        "op",
        "operation",
        "match",
        "relativeMatchNumber",
        "relativeMatchUnit",
        "relativeMatchDirection",
    }
)


def rules(ctx: ObjectContext, value: Any, refs: list[Ref]) -> list[tuple[str, dict[str, Any]]]:
    """Normalize group rules into [(path in the file, rule)]. A rule names its property by
    `propertyId` (or by `key`, resolved once the properties are known); `op` may also be written
    `operation: {op}`."""
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.error("rules", f"must be an array, not {json_type(value)}")
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(value):
        path = f"rules[{i}]"
        if not isinstance(item, dict):
            ctx.error(path, f"must be an object, not {json_type(item)}")
            continue
        for extra in sorted(set(item) - RULE_KEYS):
            ctx.error(f"{path}.{extra}", "is not a key of a group rule")
        rule = _rule(ctx, path, item)
        if rule is None:
            continue
        if item.get("propertyId") not in (None, ""):
            prop = text(ctx, f"{path}.propertyId", item.get("propertyId"))
            if prop in ("grouparooId", "grouparooCreatedAt"):
                ctx.error(f"{path}.propertyId", f"rules on Grouparoo's {prop!r} are not supported")
                continue
            rule["property"] = prop
            refs.append(Ref(f"{path}.propertyId", "property", prop))
        elif item.get("key") not in (None, ""):
            rule["property"] = None
            rule["property_key"] = text(ctx, f"{path}.key", item.get("key"))
        else:
            ctx.error(f"{path}.propertyId", "is required (the id of the property the rule tests)")
            continue
        out.append((path, rule))
    return out


def _rule(ctx: ObjectContext, path: str, item: dict[str, Any]) -> dict[str, Any] | None:
    raw_op = item.get("op")
    op_key = f"{path}.op"
    if raw_op is None and isinstance(item.get("operation"), dict):
        raw_op = item["operation"].get("op")
        op_key = f"{path}.operation.op"
    op = text(ctx, op_key, raw_op, required=True)
    if not op:
        return None
    match = match_text(item.get("match"))
    number, unit, direction = _relative(ctx, path, item)
    lowered = op.strip().lower()
    if op in ("relative_gt", "relative_lt") or (op in ("gt", "lt") and number is not None):
        past = op in ("relative_gt", "gt")
        expected = "subtract" if past else "add"
        if direction and direction != expected:
            what = "in the past (relative_gt)" if past else "in the future (relative_lt)"
            ctx.error(
                f"{path}.relativeMatchDirection",
                f"{direction!r} with {op!r} is not supported: 'in the last N' is relative_gt with "
                f"'subtract' and 'in the next N' is relative_lt with 'add' ({op!r} means {what})",
            )
            return None
        if number is None or not unit:
            ctx.error(f"{path}.relativeMatchNumber", "a relative rule needs a number and a unit")
            return None
        return {
            "property": None,
            "op": RuleOp.IN_LAST.value if past else RuleOp.IN_NEXT.value,
            "match": "",
            "relative_match_number": number,
            "relative_match_unit": unit,
        }
    if number is not None:
        ctx.error(f"{path}.relativeMatchNumber", f"operation {op!r} takes no relative match")
        return None
    if op in ("like", "notLike", "iLike", "notILike"):
        converted = _like_op(op, match)
        if converted is None:
            ctx.error(
                op_key,
                f"{op!r} with the pattern {match!r} has no equivalent here (supported: x, x%, %x, "
                f"%x%, as eq, startsWith, endsWith and substring)",
            )
            return None
        new_op, match = converted
        ctx.warn(op_key, f"{op!r} {item.get('match')!r} is read as {new_op.value!r} {match!r}")
        op = new_op.value
    elif op not in RULE_OPS:
        if lowered in OLD_OP_WORDS:
            new = OLD_OP_WORDS[lowered]
            ctx.warn(op_key, f"the old filter word {op!r} is read as {new!r}")
            op = new
        else:
            ctx.error(op_key, f"unknown rule operation {op!r} (one of {', '.join(RULE_OPS)})")
            return None
    if op in (RuleOp.IN_LAST, RuleOp.IN_NEXT):
        ctx.error(op_key, f"{op!r} needs relativeMatchNumber and relativeMatchUnit")
        return None
    if op not in (RuleOp.EXISTS, RuleOp.NOT_EXISTS) and match == "":
        ctx.error(f"{path}.match", f"operation {op!r} needs a value to compare with")
        return None
    if op in (RuleOp.EXISTS, RuleOp.NOT_EXISTS):
        match = ""
    return {
        "property": None,
        "op": op,
        "match": match,
        "relative_match_number": None,
        "relative_match_unit": "",
    }


# --- permissions ------------------------------------------------------------------------------


def _permission_entries(ctx: ObjectContext, value: Any) -> list[tuple[str, str, bool, bool]]:
    """[(path, topic, read, write)] of a permissions array."""
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.error("permissions", f"must be an array, not {json_type(value)}")
        return []
    out = []
    for i, item in enumerate(value):
        path = f"permissions[{i}]"
        if not isinstance(item, dict):
            ctx.error(path, f"must be an object, not {json_type(item)}")
            continue
        for extra in sorted(set(item) - {"topic", "read", "write"}):
            ctx.error(f"{path}.{extra}", "is not a key of a permission")
        topic = text(ctx, f"{path}.topic", item.get("topic"), required=True)
        read = boolean(ctx, f"{path}.read", item.get("read"), False)
        write = boolean(ctx, f"{path}.write", item.get("write"), False)
        if topic:
            out.append((path, topic, read, write))
    return out


def _all_flags(ctx: ObjectContext, data: dict[str, Any]) -> tuple[bool, bool]:
    opts = data.get("options")
    if opts is not None and not isinstance(opts, dict):
        ctx.error("options", f"must be an object, not {json_type(opts)}")
        opts = {}
    opts = opts or {}
    for extra in sorted(set(opts) - {"permissionAllRead", "permissionAllWrite"}):
        ctx.error(
            f"options.{extra}", "is not an option here (permissionAllRead, permissionAllWrite)"
        )
    read = boolean(
        ctx,
        "options.permissionAllRead",
        opts.get("permissionAllRead", data.get("permissionAllRead")),
        False,
    )
    write = boolean(
        ctx,
        "options.permissionAllWrite",
        opts.get("permissionAllWrite", data.get("permissionAllWrite")),
        False,
    )
    return read, write


def api_permissions(ctx: ObjectContext, value: Any) -> dict[str, list[bool]]:
    """{our API topic: [read, write]} from Grouparoo's or our topic names."""
    out: dict[str, list[bool]] = {}
    for path, topic, read, write in _permission_entries(ctx, value):
        if topic in ApiTopic.values:
            topics: tuple[str, ...] = (topic,)
        elif topic in API_TOPIC_ALIASES:
            topics = tuple(str(t) for t in API_TOPIC_ALIASES[topic])
        elif topic in UNMAPPED_TOPICS:
            ctx.warn(
                f"{path}.topic", f"Grouparoo's topic {topic!r} has no equivalent here; ignored"
            )
            continue
        else:
            known = sorted(set(ApiTopic.values) | set(API_TOPIC_ALIASES))
            ctx.error(f"{path}.topic", f"unknown topic {topic!r} (one of {', '.join(known)})")
            continue
        for t in topics:
            current = out.setdefault(t, [False, False])
            current[0] = current[0] or read
            current[1] = current[1] or write
    return dict(sorted(out.items()))


def team_permissions(ctx: ObjectContext, data: dict[str, Any]) -> list[str]:
    """Sorted Django permission names ("core.view_app") a team grants."""
    all_read, all_write = _all_flags(ctx, data)
    granted: set[str] = set()

    def grant(topic: str, read: bool, write: bool) -> None:
        for model in TEAM_TOPIC_MODELS[topic]:
            app_label, name = model.split(".")
            actions = (READ_ACTIONS if read or write else ()) + (WRITE_ACTIONS if write else ())
            granted.update(f"{app_label}.{action}_{name}" for action in actions)

    for topic in TEAM_TOPIC_MODELS:
        grant(topic, all_read, all_write)
    for path, topic, read, write in _permission_entries(ctx, data.get("permissions")):
        name = TEAM_TOPIC_ALIASES.get(topic, topic)
        if name in TEAM_TOPIC_MODELS:
            grant(name, read, write)
        elif topic in UNMAPPED_TOPICS:
            ctx.warn(
                f"{path}.topic", f"Grouparoo's topic {topic!r} has no equivalent here; ignored"
            )
        else:
            known = sorted(TEAM_TOPIC_MODELS)
            ctx.error(f"{path}.topic", f"unknown topic {topic!r} (one of {', '.join(known)})")
    return sorted(granted)


# --- per class ---------------------------------------------------------------------------------


def normalize(raw: RawObject, problems: Problems) -> Spec | None:
    """Check one object's keys and values and return its Spec (None when it has no usable class or
    id, or is a skipped class). Problems are added with the object's file, id and key."""
    cls = class_of(raw)
    ctx = ObjectContext(raw, cls, problems)
    if not cls:
        ctx.error("class", f"is required (one of {', '.join(CLASS_LABELS.values())})")
        return None
    if cls in SKIPPED_CLASSES:
        ctx.warn("class", f"{raw.class_name} objects (Grouparoo sample records) are skipped here")
        return None
    if cls not in CLASS_LABELS:
        ctx.error(
            "class", f"unknown class {raw.class_name!r} (one of {', '.join(CLASS_LABELS.values())})"
        )
        return None
    object_id = raw.id
    if object_id is None:
        ctx.error("id", "is required")
    elif isinstance(raw.data.get("id"), (dict, list, bool)):
        ctx.error("id", "must be a string")
        object_id = None
    for key in raw.data:
        if key in COMMON_KEYS or key in ALLOWED_KEYS[cls]:
            continue
        tolerated = TOLERATED_KEYS.get(cls, {}).get(key)
        if tolerated:
            # Grouparoo warned when the value was set (`identifying: false` passed silently).
            if raw.data[key] or key in ALWAYS_WARN:
                ctx.warn(key, tolerated)
        else:
            ctx.error(key, f"is not a key of a {CLASS_LABELS[cls]}")
    refs: list[Ref] = []
    data = NORMALIZERS[cls](ctx, raw.data, refs)
    if object_id is None or data is None:
        return None
    spec = Spec(cls=cls, id=object_id, file=raw.file, index=raw.index, data=data, refs=refs)
    if cls == "apikey":
        spec.secret = data.pop("_key", None)
    if cls == "teammember":
        spec.secret = data.pop("_password", None)
    if cls == "group":
        spec.rule_paths = data.pop("_rule_paths", [])
    if cls == "setting":
        spec.grouparoo_key = data.pop("_grouparoo_key", None)
    return spec


def _ref(
    ctx: ObjectContext,
    refs: list[Ref],
    data: dict[str, Any],
    key: str,
    cls: str,
    *,
    required: bool = True,
) -> str | None:
    value = text(ctx, key, data.get(key), required=required)
    if not value:
        return None
    refs.append(Ref(key, cls, value))
    return value


def _setting(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any] | None:
    plugin = data.get("pluginName", data.get("plugin"))
    value = data.get("value")
    if value is None:
        ctx.error("value", "is required")
    elif isinstance(value, (dict, list)):
        ctx.error("value", f"must be a string, number or boolean, not {json_type(value)}")
    plugin_name = text(ctx, "pluginName", plugin, required=True)
    key = text(ctx, "key", data.get("key"), required=True)
    ours = GROUPAROO_SETTINGS.get((plugin_name, key))
    grouparoo_key = None
    if ours is not None and ours != key:
        ctx.warn("key", f"Grouparoo's setting {plugin_name}.{key} is this product's core.{ours}")
        grouparoo_key, plugin_name, key = key, "core", ours
    elif (plugin_name, key) in GROUPAROO_SETTINGS_IGNORED:
        reason = GROUPAROO_SETTINGS_IGNORED[(plugin_name, key)]
        ctx.warn(
            "key",
            f"Grouparoo's setting {plugin_name}.{key} has no meaning here ({reason}); ignored",
        )
        return None
    return {
        "plugin": plugin_name,
        "key": key,
        "value": match_text(value) if not isinstance(value, (dict, list)) else "",
        "_grouparoo_key": grouparoo_key,
    }


def _model(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any]:
    model_type = text(ctx, "type", data.get("type")) or RecordModelType.PROFILE.value
    if model_type not in RecordModelType.values:
        ctx.error(
            "type",
            f"unknown model type {model_type!r} (one of {', '.join(RecordModelType.values)})",
        )
    return {"name": text(ctx, "name", data.get("name"), required=True), "type": model_type}


def _connector(ctx: ObjectContext, kind: str, value: Any) -> tuple[str, Any]:
    key = text(ctx, "type", value, required=True)
    if not key:
        return "", None
    getter = {
        "app": registry.get_app,
        "source": registry.get_source,
        "destination": registry.get_destination,
    }[kind]
    try:
        return registry.canonical(key), getter(key)
    except registry.UnknownConnector as exc:
        ctx.error("type", str(exc))
        return key, None


def _app(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any]:
    type_, connector = _connector(ctx, "app", data.get("type"))
    declared = tuple(getattr(connector, "options", ()))
    plain, secrets = options(
        ctx,
        data.get("options"),
        topic="app",
        declared=declared,
        renames=OPTION_RENAMES.get(("app", type_)),
    )
    apply_option_compat(ctx, "app", type_, plain, declared)
    # A URL option's credentials are stored encrypted, as the API and the admin store them.
    plain, secrets, url_errors = split_url_options(declared, plain, secrets)
    for key, message in sorted(url_errors.items()):
        ctx.error(f"options.{key}", message)
    refresh = None
    raw_refresh = data.get("refresh")
    if raw_refresh is not None:
        if not isinstance(raw_refresh, dict):
            ctx.error("refresh", f"must be an object, not {json_type(raw_refresh)}")
        else:
            for extra in sorted(set(raw_refresh) - {"query", "recurringFrequency"}):
                ctx.error(f"refresh.{extra}", "is not a key of an app refresh query")
            query = text(ctx, "refresh.query", raw_refresh.get("query"))
            if query and len(query) > 1:
                seconds = _milliseconds(
                    ctx,
                    "refresh.recurringFrequency",
                    raw_refresh.get("recurringFrequency"),
                    minimum=1,
                )
                refresh = {"query": query, "recurring_frequency": seconds or 60}
    return {
        "name": text(ctx, "name", data.get("name"), required=True),
        "type": type_,
        "options": plain,
        "secret_options": secrets,
        "refresh": refresh,
    }


def _milliseconds(ctx: ObjectContext, key: str, value: Any, *, minimum: int) -> int | None:
    """A Grouparoo frequency in milliseconds as whole seconds (None for null or 0); a number
    given as a string ("900000") is read as that number, as Grouparoo's column did."""
    if value is None:
        return None
    given, value = value, number_value(value)
    if value is None:
        ctx.error(key, f"must be a number of milliseconds, not {given!r}")
        return None
    if value == 0:
        return None
    if value < 0:
        ctx.error(key, "must not be negative")
        return None
    seconds = round(value / 1000)
    if seconds * 1000 != value:
        ctx.warn(key, f"{value} ms is rounded to {seconds} s (frequencies are kept in seconds)")
    if seconds < minimum:
        unit = "one minute" if minimum == 60 else f"{minimum} s"
        ctx.error(key, f"must be at least {unit} ({minimum * 1000} ms), not {value} ms")
        return None
    return seconds


def _mapping(
    ctx: ObjectContext, refs: list[Ref], value: Any, key: str, target: str
) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        ctx.error(key, f"must be an object, not {json_type(value)}")
        return {}
    out: dict[str, str] = {}
    for remote, target_id in value.items():
        if target_id is None:
            continue
        path = f"{key}.{remote}"
        if not isinstance(target_id, str) or not target_id:
            ctx.error(path, f"must be the id of a {CLASS_LABELS[target]} (a string)")
            continue
        refs.append(Ref(path, target, target_id))
        out[str(remote)] = target_id
    return out


def _source(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any]:
    type_, connector = _connector(ctx, "source", data.get("type"))
    declared = tuple(getattr(connector, "options", ()))
    plain, secrets = options(ctx, data.get("options"), topic="source", declared=declared)
    plain.update(secrets)
    for name, value in plain.items():
        if isinstance(value, str) and "://" in value and url_secrets(value):
            ctx.warn(
                f"options.{name}",
                "the URL holds credentials (user info or a token): a source's options are not "
                "encrypted, so whoever may view sources can read them",
            )
    return {
        "name": text(ctx, "name", data.get("name"), required=True),
        "type": type_,
        "app": _ref(ctx, refs, data, "appId", "app"),
        "model": _ref(ctx, refs, data, "modelId", "model"),
        "options": plain,
        "mapping": _mapping(ctx, refs, data.get("mapping"), "mapping", "property"),
        "is_primary": False,
    }


def _property(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any]:
    key = data.get("key") if data.get("key") not in (None, "") else data.get("name")
    prop_type = text(ctx, "type", data.get("type"), required=True)
    if prop_type and prop_type not in PropertyType.values:
        ctx.error(
            "type", f"unknown property type {prop_type!r} (one of {', '.join(PropertyType.values)})"
        )
    plain, secrets = options(ctx, data.get("options"), topic="property")
    plain.update(secrets)
    method = plain.get("aggregationMethod")
    if method is not None:
        normalized = AGGREGATION_ALIASES.get(str(method).strip().lower())
        if normalized is None:
            known = sorted(
                {
                    "exact",
                    "average",
                    "count",
                    "sum",
                    "min",
                    "max",
                    "most recent value",
                    "least recent value",
                }
            )
            ctx.error(
                "options.aggregationMethod",
                f"unknown aggregation method {method!r} (one of {', '.join(known)})",
            )
        else:
            plain["aggregationMethod"] = normalized.value
    unique = boolean(ctx, "unique", data.get("unique"), False)
    is_array = boolean(ctx, "isArray", data.get("isArray"), False)
    if unique and is_array:
        ctx.error("isArray", "a unique property cannot be an array")
    return {
        "key": text(ctx, "key", key, required=True),
        "type": prop_type,
        "source": _ref(ctx, refs, data, "sourceId", "source"),
        "model": None,
        "unique": unique,
        "is_array": is_array,
        "is_primary_key": False,
        "options": plain,
        "filters": filters(ctx, data.get("filters")),
    }


def _schedule(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any]:
    confirm = data.get("confirmRecords")
    if confirm is None and "confirmProfiles" in data:
        confirm = data.get("confirmProfiles")
    recurring = boolean(ctx, "recurring", data.get("recurring"), False)
    cron = text(ctx, "cron", data.get("cron"))
    if cron:
        from croniter import croniter

        if not croniter.is_valid(cron):
            ctx.error("cron", f"{cron!r} is not a valid cron expression")
    seconds = _milliseconds(ctx, "recurringFrequency", data.get("recurringFrequency"), minimum=60)
    frequency = data.get("recurringFrequency")
    if recurring and not cron and (frequency is None or number_value(frequency) == 0):
        ctx.error(
            "recurringFrequency",
            "a recurring schedule needs a frequency (in ms) or a cron expression",
        )
    raw_options = data.get("options")
    plain, secrets = options(ctx, raw_options, topic="schedule")
    plain.update(secrets)
    schedule_options: dict[str, Any] = {}
    for name, value in plain.items():
        if name in ("column", "maxColumn"):
            if "column" in schedule_options and schedule_options["column"] != value:
                ctx.error(f"options.{name}", "`column` and `maxColumn` name different columns")
            schedule_options["column"] = value
        elif name in ("query", "propertyId"):
            ctx.error(
                f"options.{name}",
                "Grouparoo's query schedules are not supported: put the SELECT in the source's "
                "options.query and map its key column with the source's `mapping`",
            )
        else:
            ctx.error(
                f"options.{name}",
                "is not a schedule option (column or maxColumn: the high watermark column)",
            )
    return {
        "source": _ref(ctx, refs, data, "sourceId", "source"),
        "name": text(ctx, "name", data.get("name")),
        "recurring": recurring,
        "recurring_frequency": seconds,
        "cron": cron,
        "incremental": boolean(ctx, "incremental", data.get("incremental"), True),
        "confirm_records": boolean(ctx, "confirmRecords", confirm, False),
        "refresh_enabled": boolean(ctx, "refreshEnabled", data.get("refreshEnabled"), True),
        "options": schedule_options,
        "filters": filters(ctx, data.get("filters")),
    }


def _group(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any]:
    if str(data.get("type") or "").lower() == "manual":
        ctx.error(
            "type",
            "manual groups are not supported (Grouparoo 0.8 removed them); give the group rules",
        )
    match_type = text(ctx, "matchType", data.get("matchType")) or GroupMatchType.ALL.value
    match_type = match_type.lower()
    if match_type not in GroupMatchType.values:
        ctx.error("matchType", f"must be 'all' or 'any', not {match_type!r}")
    pairs = rules(ctx, data.get("rules"), refs)
    return {
        "model": _ref(ctx, refs, data, "modelId", "model"),
        "name": text(ctx, "name", data.get("name"), required=True),
        "match_type": match_type,
        "rules": [rule for _, rule in pairs],
        "_rule_paths": [path for path, _ in pairs],
    }


def _destination(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any]:
    type_, connector = _connector(ctx, "destination", data.get("type"))
    declared = tuple(getattr(connector, "options", ()))
    plain, secrets = options(ctx, data.get("options"), topic="destination", declared=declared)
    sync_mode = (text(ctx, "syncMode", data.get("syncMode")) or SyncMode.SYNC.value).lower()
    if sync_mode not in SyncMode.values:
        ctx.error(
            "syncMode",
            f"unknown sync mode {data.get('syncMode')!r} (one of {', '.join(SyncMode.values)})",
        )
    group_id = text(ctx, "groupId", data.get("groupId"))
    collection = text(ctx, "collection", data.get("collection")).lower()
    if not collection:
        collection = (
            DestinationCollection.GROUP.value if group_id else DestinationCollection.NONE.value
        )
    if collection not in DestinationCollection.values:
        ctx.error(
            "collection",
            f"unknown collection {collection!r} (one of {', '.join(DestinationCollection.values)})",
        )
    group = None
    if collection == DestinationCollection.GROUP:
        if not group_id:
            ctx.error("groupId", "is required when the collection is 'group'")
        else:
            group = group_id
            refs.append(Ref("groupId", "group", group_id))
    elif group_id:
        ctx.warn("groupId", f"is ignored: the collection is {collection!r}, not 'group'")
    return {
        "name": text(ctx, "name", data.get("name"), required=True),
        "type": type_,
        "app": _ref(ctx, refs, data, "appId", "app"),
        "model": _ref(ctx, refs, data, "modelId", "model"),
        "sync_mode": sync_mode,
        "collection": collection,
        "group": group,
        "options": plain,
        "secret_options": secrets,
        "mapping": _mapping(ctx, refs, data.get("mapping"), "mapping", "property"),
        "memberships": _mapping(
            ctx,
            refs,
            data.get("destinationGroupMemberships"),
            "destinationGroupMemberships",
            "group",
        ),
    }


def _apikey(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any]:
    all_read, all_write = _all_flags(ctx, data)
    key = None
    raw_key = data.get("apiKey")
    if raw_key not in (None, ""):
        given = text(ctx, "apiKey", raw_key)
        # Read now (env:NAME and GROUPAROO_OPTION__APIKEY__<value> too): only its hash is kept.
        resolved = (
            _option_string(ctx, "apiKey", given, topic="apikey", secret=False) if given else None
        )
        if isinstance(resolved, str) and any(c.isspace() for c in resolved):
            ctx.error("apiKey", "must not contain spaces (a key is sent in one HTTP header)")
        elif isinstance(resolved, str) and resolved:
            key = resolved
            if resolved == given and not given.startswith(ENV_PREFIX):
                ctx.warn(
                    "apiKey",
                    "a key written in clear in a config file is known to everyone who reads the "
                    "files; it is stored hashed and works, but rotate it: leave `apiKey` out "
                    "and apply mints a new key and shows it once (or give it as env:NAME)",
                )
    return {
        "name": text(ctx, "name", data.get("name"), required=True),
        "permission_all_read": all_read,
        "permission_all_write": all_write,
        "permissions": api_permissions(ctx, data.get("permissions")),
        "_key": key,
    }


def _team(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any]:
    return {
        "name": text(ctx, "name", data.get("name"), required=True),
        "permissions": team_permissions(ctx, data),
    }


def _teammember(ctx: ObjectContext, data: dict[str, Any], refs: list[Ref]) -> dict[str, Any]:
    opts = data.get("options")
    if opts is not None and not isinstance(opts, dict):
        ctx.error("options", f"must be an object, not {json_type(opts)}")
        opts = {}
    opts = opts or {}
    for extra in sorted(set(opts) - {"firstName", "lastName", "password"}):
        ctx.error(
            f"options.{extra}", "is not an option of a team member (firstName, lastName, password)"
        )
    email = text(ctx, "email", data.get("email"), required=True).strip()
    if email and "@" not in email:
        ctx.error("email", f"{email!r} is not an email address")
    password = None
    raw_password = opts.get("password")
    if raw_password not in (None, ""):
        given = str(raw_password)
        if given.startswith(ENV_PREFIX):
            name = given[len(ENV_PREFIX) :].strip()
            password = env_value(name)
            if password is None:
                ctx.error("options.password", f"environment variable {name} is not set")
        elif env_value(f"{GROUPAROO_OPTION_PREFIX}TEAMMEMBER__{given}") is not None:
            password = env_value(f"{GROUPAROO_OPTION_PREFIX}TEAMMEMBER__{given}")
        else:
            password = given
            ctx.warn(
                "options.password",
                "a password written in clear in a config file is known to everyone who reads "
                "the files; it is stored hashed and works, but give it as env:NAME and change it",
            )
    return {
        "email": email.lower(),
        "first_name": text(ctx, "options.firstName", opts.get("firstName", data.get("firstName"))),
        "last_name": text(ctx, "options.lastName", opts.get("lastName", data.get("lastName"))),
        "team": _ref(ctx, refs, data, "teamId", "team"),
        "_password": password,
    }


NORMALIZERS = {
    "setting": _setting,
    "model": _model,
    "app": _app,
    "source": _source,
    "property": _property,
    "schedule": _schedule,
    "group": _group,
    "destination": _destination,
    "apikey": _apikey,
    "team": _team,
    "teammember": _teammember,
}
