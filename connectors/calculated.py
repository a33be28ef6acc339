"""Calculated properties: an app ("calculated-property") and a source
("calculated-property-import") whose properties are computed from each record's other
properties by a JavaScript function, as Grouparoo's @grouparoo/calculated-property plugin did.

A property's `customFunction` is the text of a JavaScript function taking no arguments, with
`{{{ key }}}` placeholders (Mustache, as Grouparoo rendered them) that are replaced by the
record's values before it runs:

    "customFunction": "() => \"{{{ firstName }}} {{{ lastName }}}\".trim()"

A placeholder names a property of the model by its key, or `now`, `createdAt`, `updatedAt` (the
record's); a date may be followed by `.iso`, `.sql`, `.date` or `.time` (`{{{ signedUpAt.date }}}`),
as in Grouparoo. A value is substituted as text (an array property's values joined by ", ", a
date as ISO 8601, a missing value as nothing); `{{ key }}` escapes it for HTML, as Mustache does.
So a placeholder meant as a string goes inside quotes, and a value holding that quote breaks the
function for that record. What the function returns is the property's value (null or undefined:
no value).

The functions run in Node.js (`node` on PATH, version 20 or newer), one process per batch of
records, each call in a context (a JavaScript realm) of its own, as Grouparoo ran each in a VM of
its own — so a value that breaks out of its quotes changes nothing for other records: no
`require`, no `process`, no code generation from strings (`eval`, `Function`), a time limit per
call (promise jobs and writing the result included), and Node's permission model denies files
and child processes; the process gets an empty environment. Like Grouparoo, a function using
`require(`, `process.env` or `async` is refused. A record whose function throws gets no value
for that property (logged, with the count); a batch in which every call fails fails the run with
the first error (a broken function says so at once).

The source has no rows of its own: the engine hands it a reader of the model's records
(core/engine/record_inputs.py) with `bind_records`, and it is mapped by the model's primary key.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from connectors.base import (
    AppConnector,
    Batch,
    Column,
    ConnectorError,
    Option,
    PropertySpec,
    SourceConnector,
)
from connectors.registry import register

logger = logging.getLogger(__name__)

FUNCTION_OPTION = "customFunction"
CALL_TIMEOUT_MS = 1000
BATCH_TIMEOUT_SECONDS = 300
MIN_NODE_MAJOR = 20
# Grouparoo refused functions holding these (its recordProperty.ts).
ILLEGAL = ("require(", "process.env", "async")
BUILTINS = frozenset({"now", "createdAt", "updatedAt"})
DATE_PARTS = frozenset({"raw", "iso", "sql", "date", "time"})

# {{{ name }}} and {{& name }} insert a value as it is, {{ name }} escaped for HTML. Other tags
# (sections, comments, partials) are left as written.
_TAG = re.compile(
    r"\{\{\{\s*(?P<raw>[^{}\s]+)\s*\}\}\}|\{\{\s*(?:(?P<amp>&)\s*)?(?P<name>[^{}\s#^/!>=&][^{}\s]*)\s*\}\}"
)
# Mustache.js's HTML escaping.
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "/": "&#x2F;",
     "`": "&#x60;", "=": "&#x3D;"}
)  # fmt: skip

# Reads {"calls": [function source, ...], "timeout": ms} on stdin and writes one JSON array of
# [true, value] or [false, error message] per call on stdout. Every call gets a realm of its own
# whose global is a null-prototype object (no object of the runner's realm is reachable from it:
# a call can change neither another call's built-ins nor the runner's), its promise jobs run
# within its time limit, and its result is written as JSON (getters, toJSON) within that limit
# too; the runner only parses that text back and checks its shape.
NODE_RUNNER = r"""
const vm = require("vm");
const OPTIONS = { codeGeneration: { strings: false, wasm: false }, microtaskMode: "afterEvaluate" };
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const { calls, timeout } = JSON.parse(input);
  const out = calls.map((code) => {
    let text;
    try {
      text = vm.runInContext(
        `(() => { try { const toRun = ${code}; const value = toRun();
            return JSON.stringify([true, value === undefined ? null : value],
              (k, v) => (typeof v === "bigint" ? String(v) : v));
          } catch (error) {
            try { return JSON.stringify([false, String((error && error.message) || error)]); }
            catch (_) { return '[false, "threw a value that cannot be shown"]'; } } })()`,
        vm.createContext(Object.create(null), OPTIONS),
        { timeout }
      );
    } catch (error) {
      text = JSON.stringify([false, String(error && error.message)]);
    }
    let result = null;
    try {
      result = typeof text === "string" ? JSON.parse(text) : null;
    } catch (error) {}
    if (!Array.isArray(result) || result.length !== 2 || typeof result[0] !== "boolean") {
      result = [false, "returned a value that cannot be written as JSON"];
    }
    return JSON.stringify(result);
  });
  process.stdout.write("[" + out.join(",") + "]");
});
"""


class RecordValues(Protocol):
    """What the engine hands a calculated source (core.engine.record_inputs.RecordReader)."""

    def keys(
        self, *, after: int | None, limit: int, equal_to: Any = None
    ) -> list[tuple[int, str]]: ...

    def count(self) -> int: ...

    def values(self, keys: list[Any], property_keys: set[str]) -> dict[Any, dict[str, Any]]: ...


def template_names(template: str) -> list[str]:
    """The names the placeholders of a function use, in order ("signedUpAt.date" included)."""
    return [m.group("raw") or m.group("name") for m in _TAG.finditer(template or "")]


def rename(template: str, names: dict[str, str]) -> str:
    """`template` with the placeholders named in `names` renamed (tags kept as written)."""

    def replace(match: re.Match[str]) -> str:
        group = "raw" if match.group("raw") else "name"
        name = match.group(group)
        if name not in names:
            return match.group(0)
        start, end = match.span(group)
        whole, offset = match.group(0), match.start()
        return whole[: start - offset] + names[name] + whole[end - offset :]

    return _TAG.sub(replace, template or "")


def illegal_use(template: str) -> str | None:
    """What Grouparoo refused in a calculated property that `template` uses, or None."""
    return next((s for s in ILLEGAL if s in (template or "")), None)


def _iso(value: datetime) -> str:
    """A datetime as JavaScript's toISOString() writes it."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _date_part(value: datetime, part: str | None) -> str:
    iso = _iso(value)
    if part == "sql":
        return iso[:19].replace("T", " ")
    if part == "date":
        return iso[:10]
    if part == "time":
        return iso[11:19]
    return iso


def _text(value: Any) -> str:
    """A value as JavaScript's String() writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, datetime):
        return _iso(value)
    return str(value)


def _lookup(name: str, record: dict[str, Any], now: datetime) -> str:
    head, _, part = name.partition(".")
    if head == "now":
        value: Any = [now]
    elif head in ("createdAt", "updatedAt"):
        value = [record.get(head)] if record.get(head) is not None else []
    else:
        value = record["properties"].get(head, [])
    if part:
        if len(value) == 1 and isinstance(value[0], datetime) and part in DATE_PARTS:
            return _date_part(value[0], part)
        return ""
    if len(value) == 1:
        return _text(value[0])
    return ", ".join(_text(v) for v in value)


def render(template: str, record: dict[str, Any], now: datetime) -> str:
    """`template` with its placeholders replaced by the record's values (see the module
    docstring); `record` as RecordValues.values gives one."""

    def replace(match: re.Match[str]) -> str:
        if match.group("raw"):
            return _lookup(match.group("raw"), record, now)
        text = _lookup(match.group("name"), record, now)
        return text if match.group("amp") else text.translate(_ESCAPES)

    return _TAG.sub(replace, template)


@functools.lru_cache(maxsize=4)
def _node_version(node: str) -> int:
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        )
        return int(out.stdout.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def node_command() -> list[str]:
    """The command that runs NODE_RUNNER. Raises a permanent ConnectorError when Node.js is
    missing or older than MIN_NODE_MAJOR (its permission model is what denies files and child
    processes)."""
    node = shutil.which("node")
    if node is None:
        raise ConnectorError(
            "Calculated properties run their customFunction with Node.js, and no `node` program "
            f"was found on PATH: install Node.js {MIN_NODE_MAJOR} or newer.",
            permanent=True,
        )
    major = _node_version(node)
    if major < MIN_NODE_MAJOR:
        raise ConnectorError(
            f"Calculated properties need Node.js {MIN_NODE_MAJOR} or newer; `node` on PATH is "
            f"{'of an unknown version' if not major else f'version {major}'}.",
            permanent=True,
        )
    permission = "--permission" if major >= 23 else "--experimental-permission"
    return [
        node,
        "--no-warnings",
        "--disallow-code-generation-from-strings",
        permission,
        "-e",
        NODE_RUNNER,
    ]


def run_functions(calls: list[str]) -> list[tuple[bool, Any]]:
    """Run each function source in Node.js; [(True, value) or (False, error message)] in order.
    Raises ConnectorError when Node.js is missing or the batch cannot be run at all."""
    if not calls:
        return []
    command = node_command()
    payload = json.dumps({"calls": calls, "timeout": CALL_TIMEOUT_MS})
    with tempfile.TemporaryDirectory(prefix="grouparoo-calculated-") as scratch:
        try:
            done = subprocess.run(
                command, input=payload, capture_output=True, text=True, env={}, cwd=scratch,
                timeout=BATCH_TIMEOUT_SECONDS, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise ConnectorError(
                f"Calculated properties did not finish within {BATCH_TIMEOUT_SECONDS} s.",
                permanent=True,
            ) from None
        except OSError as exc:
            raise ConnectorError(f"Node.js could not be started ({exc.strerror or exc}).") from None
    if done.returncode != 0:
        first = (done.stderr or "").strip().splitlines()
        raise ConnectorError(
            "Node.js could not run the calculated properties: "
            + (first[0] if first else "no output"),
            permanent=True,
        )
    try:
        results = json.loads(done.stdout)
    except ValueError:
        raise ConnectorError("Node.js returned no results for the calculated properties.") from None
    return [(bool(ok), value) for ok, value in results]


def _value(result: Any, is_array: bool) -> Any:
    if isinstance(result, list) and is_array:
        return [v if not isinstance(v, (dict, list)) else json.dumps(v) for v in result]
    if isinstance(result, (dict, list)):
        return json.dumps(result)
    return result


@register
class CalculatedApp(AppConnector):
    """Nothing to connect to: checks that Node.js can run a calculated property."""

    key = "calculated-property"
    label = "Calculated properties"
    max_concurrency = 2
    options = ()

    def test_connection(self) -> str:
        [(ok, value)] = run_functions(["() => true"])
        if not ok or value is not True:
            raise ConnectorError(f"Node.js could not run a function: {value}", permanent=True)
        return (
            f"Node.js {_node_version(shutil.which('node') or 'node')} runs calculated properties."
        )


@register
class CalculatedSource(SourceConnector):
    """Properties computed from each record's other properties by a JavaScript function."""

    key = "calculated-property-import"
    app_key = "calculated-property"
    label = "Calculated properties"
    options: ClassVar[tuple[Option, ...]] = ()
    property_options: ClassVar[tuple[Option, ...]] = (
        Option(
            FUNCTION_OPTION,
            "Custom function",
            type="textarea",
            required=True,
            help_text="A JavaScript function of no arguments; {{{ key }}} is a property's value, "
            'e.g. () => "{{{ firstName }}} {{{ lastName }}}".',
        ),
    )
    reads_records = True

    def __init__(self, app_options: dict[str, Any], source_options: dict[str, Any]):
        super().__init__(app_options, source_options)
        self._records: RecordValues | None = None

    def bind_records(self, reader: RecordValues) -> None:
        """Called by the engine before the source is read."""
        self._records = reader

    def _reader(self) -> RecordValues:
        if self._records is None:
            raise ConnectorError(
                "A calculated-property source has no rows of its own: it is read by a run, "
                "which computes its properties from the records.",
                permanent=True,
            )
        return self._records

    def preview(self, limit: int = 10) -> list[dict[str, Any]]:
        return []

    def list_columns(self) -> list[Column]:
        return []

    def read_batch(
        self,
        *,
        key_column: str,
        columns: list[str] | None,
        watermark_column: str | None,
        since: Any | None,
        after: Any | None,
        limit: int,
        filters: list[dict[str, Any]],
        distinct_keys: bool = False,
    ) -> Batch:
        """The records' keys by record id (the cursor). Takes one filter: `eq` on the key column
        (a single record); every read is a full one (there is no watermark)."""
        equal_to = None
        for item in filters:
            if item.get("key") == key_column and item.get("op") == "eq":
                equal_to = item.get("match")
            else:
                raise ConnectorError(
                    "A calculated-property source takes no filters.", permanent=True
                )
        pairs = self._reader().keys(after=after, limit=limit, equal_to=equal_to)
        return Batch(
            rows=[{key_column: key} for _, key in pairs], cursor=pairs[-1][0] if pairs else None
        )

    def max_watermark(self, *, watermark_column: str, filters: list[dict[str, Any]]) -> Any | None:
        return None

    def count(
        self, *, watermark_column: str | None, since: Any | None, filters: list[dict[str, Any]]
    ) -> int:
        if filters:
            raise ConnectorError("A calculated-property source takes no filters.", permanent=True)
        return self._reader().count()

    def aggregate(
        self, *, properties: list[PropertySpec], key_column: str, key_property: str, keys: list[Any]
    ) -> dict[Any, dict[str, Any]]:
        """Each property's function for each key's record, in one Node.js process."""
        names: set[str] = set()
        for spec in properties:
            template = str(spec.options.get(FUNCTION_OPTION) or "")
            used = illegal_use(template)
            if used:
                raise ConnectorError(
                    f"Calculated property {spec.key!r}: cannot use {used} in a calculated property.",
                    permanent=True,
                )
            names.update(n.partition(".")[0] for n in template_names(template))
        records = self._reader().values(list(keys), names - BUILTINS)
        now = datetime.now(UTC)
        jobs = [(key, spec) for spec in properties for key in keys if key in records]
        calls = [
            render(str(spec.options.get(FUNCTION_OPTION) or ""), records[key], now)
            for key, spec in jobs
        ]
        results = run_functions(calls)
        out: dict[Any, dict[str, Any]] = {}
        failures: dict[str, list[tuple[Any, str]]] = {}
        for (key, spec), (ok, value) in zip(jobs, results, strict=True):
            if ok:
                out.setdefault(key, {})[spec.key] = _value(value, spec.is_array)
            else:
                failures.setdefault(spec.key, []).append((key, str(value)))
        self._report(failures, jobs)
        return out

    @staticmethod
    def _report(
        failures: dict[str, list[tuple[Any, str]]], jobs: list[tuple[Any, PropertySpec]]
    ) -> None:
        for prop_key, failed in failures.items():
            tried = sum(1 for _, spec in jobs if spec.key == prop_key)
            key, message = failed[0]
            if len(failed) == tried:
                raise ConnectorError(
                    f"Calculated property {prop_key!r} failed for every record of the batch "
                    f"({tried}); for {key_text(key)}: {message}",
                    permanent=True,
                )
            logger.warning(
                "calculated property %r: no value for %d of %d records (first, %s: %s)",
                prop_key,
                len(failed),
                tried,
                key_text(key),
                message,
            )


def key_text(key: Any) -> str:
    return f"the record {str(key)[:100]!r}"
