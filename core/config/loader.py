"""Reading a config directory: every `.json` file (plain JSON, or JSON5: comments, trailing
commas, unquoted keys) and, when allowed, every `.js` file (evaluated with Node.js), recursively,
in path order.

A `.json` file is parsed with the standard library's JSON parser first and with the (much slower)
JSON5 parser only when that fails, so a large generated file reads in a moment. No file may be
larger than `GROUPAROO_CONFIG_MAX_FILE_BYTES` (5 MB by default, a setting or an environment
variable), a file that is not plain JSON no larger than `MAX_JSON5_BYTES`, and all the files of
a directory together no larger than `GROUPAROO_CONFIG_MAX_TOTAL_BYTES` (50 MB): each is an error
naming the file and the limit, read no further. A file is read at most one byte past its limit,
whatever its size claims to be.

Only regular files are read: a FIFO, a device or a socket (also behind a symbolic link) is an
error naming it, and so is a symbolic link whose target lies outside the config directory (links
within it are followed). Data nested more than `MAX_DEPTH` levels deep is an error too, so no
later stage can run out of stack on it.

A file holds one object or an array of objects. A `.js` file is a CommonJS module exporting an
object, an array, or a (possibly async) function returning one of them — also under
`exports.default`, as Grouparoo 0.9 allowed. Running one runs arbitrary code, so it is run only
when asked: `allow_js=True` (`--allow-js` on `manage.py validate` and `apply`) or
`GROUPAROO_CONFIG_ALLOW_JS=true`; otherwise each `.js` file is an error naming it and saying how
to allow it. Node.js is looked up on PATH; when `.js` files are allowed but Node.js is missing,
each is reported as skipped (with the reason) and the objects it would define are unknown: apply
then leaves the objects those files own untouched instead of deleting them.

Nothing here touches the database. Grouparoo 0.9 did the same (core/src/modules/configLoaders/
index.ts `loadConfigFile`): a `.json` file whose text holds no `{` is empty; null entries in an
array are errors; empty objects are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import json5

from core.config.problems import ERROR, WARNING, Problem, Problems

NODE_TIMEOUT_SECONDS = 60
SKIPPED_DIRS = frozenset({"node_modules"})
DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 50 * 1024 * 1024
# The json5 package (pure Python) is slow and its speed depends on the text: measured on these
# machines, 64 KB of short array items (`[1,1,1,...]`, the worst shape found) take about 2.4 s,
# 256 KB about 11 s, while 64 KB of keys or comments take 1 s or less. So a file that needs it
# is kept small enough to read within a few seconds whatever it holds.
MAX_JSON5_BYTES = 64 * 1024
# Real config objects nest a handful of levels (an object, its options, a rule's list); anything
# deeper than this is refused rather than walked recursively by later stages.
MAX_DEPTH = 64
READ_CHUNK_BYTES = 1024 * 1024
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

# Evaluates one CommonJS config file and writes its objects as JSON to the file named by the
# second argument (stdout is left to the module: config files may log). `require` resolves
# relative requires from the file's own directory; a function export is called with an empty
# object where Grouparoo passed its actionhero `config`.
NODE_SCRIPT = r"""
const fs = require("fs");
const path = require("path");
(async () => {
  const file = path.resolve(process.argv[1]);
  let payload = require(file);
  if (payload && typeof payload === "object" && !Array.isArray(payload)) {
    const keys = Object.keys(payload);
    if (keys.length === 1 && keys[0] === "default") payload = payload.default;
  }
  if (typeof payload === "function") payload = await payload({});
  if (payload === undefined) payload = null;
  const json = JSON.stringify(payload, (k, v) => (v === undefined ? null : v));
  fs.writeFileSync(process.argv[2], json === undefined ? "null" : json);
})().catch((error) => {
  process.stderr.write(String((error && error.message) || error));
  process.exit(1);
});
"""


@dataclass
class RawObject:
    """One object as written in a file. `file` is relative to the config directory (POSIX
    separators); `index` is its position in the file's array (None for a single object)."""

    file: str
    index: int | None
    data: dict[str, Any]

    @property
    def id(self) -> str | None:
        value = self.data.get("id")
        if value is None or value == "":
            return None
        return str(value)

    @property
    def class_name(self) -> str:
        value = self.data.get("class")
        return str(value).strip() if value is not None else ""


@dataclass
class LoadResult:
    directory: Path
    objects: list[RawObject] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)
    files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)


def _configured(name: str) -> Any:
    """A knob from Django's settings, else from the environment (None when unset)."""
    from django.conf import settings

    value = getattr(settings, name, None) if settings.configured else None
    return os.environ.get(name) if value is None else value


def project_directory(config_dir: Path) -> Path:
    """The directory relative file paths in options are read from: GROUPAROO_PARENT_PATH (a
    setting or an environment variable; relative to the working directory), else the config
    directory's parent. Grouparoo's plugins (sqlite `file`, logger `filename`) read a relative
    path from its project directory, the one holding `config/`, which GROUPAROO_PARENT_PATH
    overrode."""
    configured = _configured("GROUPAROO_PARENT_PATH")
    if configured:
        return Path(os.path.abspath(os.path.expanduser(str(configured))))
    return Path(config_dir).resolve().parent


def _byte_limit(name: str, default: int) -> int:
    value = _configured(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of bytes, not {value!r}") from None


def max_file_bytes() -> int:
    """The largest config file read: GROUPAROO_CONFIG_MAX_FILE_BYTES, else 5 MB."""
    return _byte_limit("GROUPAROO_CONFIG_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES)


def max_total_bytes() -> int:
    """The most read from all the files of a directory: GROUPAROO_CONFIG_MAX_TOTAL_BYTES, else
    50 MB."""
    return _byte_limit("GROUPAROO_CONFIG_MAX_TOTAL_BYTES", DEFAULT_MAX_TOTAL_BYTES)


def js_allowed() -> bool:
    """Whether GROUPAROO_CONFIG_ALLOW_JS allows running `.js` config files."""
    value = _configured("GROUPAROO_CONFIG_ALLOW_JS")
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in TRUE_WORDS


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB ({n:,} bytes)" if n >= 1024 * 1024 else f"{n:,} bytes"


def node_executable() -> str | None:
    """The `node` program on PATH, or None when Node.js is not installed."""
    return shutil.which("node")


def config_files(directory: Path) -> list[Path]:
    """Every `.json` and `.js` file under `directory`, in path order (hidden directories and
    node_modules are left out)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        for name in files:
            if name.endswith((".json", ".js")) and not name.startswith("."):
                found.append(Path(root) / name)
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


class FileRefused(ValueError):
    """A config file that is not read (not a regular file, outside the directory, too big);
    `over_cap` when it was refused for its size."""

    over_cap = False


class FileTooBig(FileRefused):
    over_cap = True


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _open_regular(path: Path, base: Path) -> int:
    """A file descriptor of `path` when it is a regular file within `base` (after resolving
    symbolic links). Opened without blocking, so a FIFO cannot stall the reader, and checked on
    the descriptor itself, so a file swapped after the check is still caught."""
    real = Path(os.path.realpath(path))
    link = f"is a symbolic link to {real}, " if path.is_symlink() else ""
    if not real.is_relative_to(base):
        raise FileRefused(
            f"{link or f'resolves to {real}, '}outside the config directory: links are followed "
            f"only within it (copy the file into the directory instead)"
        )
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise FileRefused(f"{link}cannot be read ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FileRefused(f"{link}is {_kind(mode)}, not a regular file: only files are read")
    return fd


def _read_file(path: Path, base: Path, cap: int, too_big: Callable[[str], str]) -> bytes:
    """The bytes of a regular config file of at most `cap` bytes; at most `cap` + 1 bytes are
    read whatever the file's size claims (a device or a growing file may say 0). Over the cap,
    FileRefused with `too_big(size)` as its message."""
    fd = _open_regular(path, base)
    try:
        claimed = os.fstat(fd).st_size
        if claimed > cap:
            raise FileTooBig(too_big(_size(claimed)))
        chunks: list[bytes] = []
        read = 0
        while read <= cap:
            chunk = os.read(fd, min(READ_CHUNK_BYTES, cap + 1 - read))
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
        if read > cap:
            raise FileTooBig(too_big("larger than that"))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _check_depth(payload: Any) -> None:
    """Raise when `payload` nests deeper than MAX_DEPTH (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in children)


def _too_deep() -> ValueError:
    return ValueError(
        f"is nested too deeply (more than {MAX_DEPTH} levels of objects and arrays)"
    )


def _parse_json(data: bytes) -> Any:
    """Plain JSON with the standard parser; JSON5 only when that fails (and the file is small
    enough for it). Nesting past what a parser can recurse through, or past MAX_DEPTH, is an
    error, never a RecursionError."""
    text = data.decode("utf-8")
    if "{" not in text:
        return {}
    try:
        payload = _parse_text(text)
    except RecursionError:
        raise _too_deep() from None
    _check_depth(payload)
    return payload


def _parse_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        size = len(text.encode("utf-8"))
        if size > MAX_JSON5_BYTES:
            raise ValueError(
                f"is not plain JSON ({exc}), and at {_size(size)} it is over the "
                f"{_size(MAX_JSON5_BYTES)} limit for JSON5 (comments, trailing commas, unquoted "
                f"keys), which is slow to parse: write it as plain JSON or split it"
            ) from None
    try:
        return json5.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not valid JSON5: {exc}") from None


def _evaluate_js(path: Path, node: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="grouparoo-config-") as scratch:
        output = Path(scratch) / "objects.json"
        try:
            completed = subprocess.run(
                [node, "-e", NODE_SCRIPT, str(path), str(output)],
                capture_output=True,
                text=True,
                timeout=NODE_TIMEOUT_SECONDS,
                cwd=str(path.parent),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ValueError(f"Node.js did not finish within {NODE_TIMEOUT_SECONDS} s") from None
        except OSError as exc:
            raise ValueError(f"Node.js could not be started ({exc.strerror or exc})") from None
        if completed.returncode != 0:
            message = (completed.stderr or "").strip().splitlines()
            raise ValueError(
                "Node.js could not evaluate it: " + (message[0] if message else "unknown error")
            )
        try:
            return json.loads(output.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            raise ValueError(
                "Node.js evaluated it but returned no JSON-serialisable objects"
            ) from None


def load_directory(directory: str | Path, *, allow_js: bool | None = None) -> LoadResult:
    """Read every config file under `directory`. Parse failures, files over the size limits,
    files that are not regular files or lie outside the directory, data nested too deeply,
    `.js` files not allowed, and malformed payloads become problems naming the file; reading
    never raises for a bad file. `allow_js` None: GROUPAROO_CONFIG_ALLOW_JS decides."""
    base = Path(directory).resolve()
    result = LoadResult(directory=base)
    if not base.is_dir():
        result.problems.add(Problem(ERROR, str(directory), "is not a directory"))
        return result
    allow_js = js_allowed() if allow_js is None else allow_js
    limit, total_limit = max_file_bytes(), max_total_bytes()
    node = node_executable() if allow_js else None
    total = 0
    for path in config_files(base):
        rel = path.relative_to(base).as_posix()
        result.files.append(rel)
        left = total_limit - total
        if left < limit:
            cap, too_big = left, partial(_over_total, total_limit)
        else:
            cap, too_big = limit, partial(_over_file, limit)
        try:
            data = _read_file(path, base, cap, too_big)
        except FileRefused as exc:
            result.problems.add(Problem(ERROR, rel, str(exc)))
            if exc.over_cap and cap == left:
                break  # the files after it are not read at all
            continue
        total += len(data)
        if path.suffix == ".js":
            payload = _load_js(result, path, rel, allow_js, node)
        else:
            payload = _load_json(result, data, rel)
        if payload is not _NOTHING:
            _collect(result, rel, payload)
    return result


def _over_file(limit: int, size: str) -> str:
    return (
        f"is {size}, over the {_size(limit)} limit for a config file: split it, "
        f"or raise GROUPAROO_CONFIG_MAX_FILE_BYTES"
    )


def _over_total(total_limit: int, size: str) -> str:
    return (
        f"takes the directory's config files over the {_size(total_limit)} limit for all of "
        f"them together, so it and the files after it are not read: split the directory, or "
        f"raise GROUPAROO_CONFIG_MAX_TOTAL_BYTES"
    )


_NOTHING = object()


def _load_json(result: LoadResult, data: bytes, rel: str) -> Any:
    try:
        return _parse_json(data)
    except UnicodeDecodeError:
        result.problems.add(Problem(ERROR, rel, "is not UTF-8 text"))
    except ValueError as exc:
        result.problems.add(Problem(ERROR, rel, str(exc)))
    return _NOTHING


def _load_js(result: LoadResult, path: Path, rel: str, allow_js: bool, node: str | None) -> Any:
    if not allow_js:
        result.skipped_files.append(rel)
        result.problems.add(Problem(ERROR, rel, (
            "is a .js config file, which runs as a program (with Node.js) and is run only when "
            "allowed: pass --allow-js to manage.py validate or apply, or set "
            "GROUPAROO_CONFIG_ALLOW_JS=true (or convert the file to .json)"
        )))
        return _NOTHING
    if node is None:
        result.skipped_files.append(rel)
        result.problems.add(Problem(WARNING, rel, (
            "skipped: .js config files are evaluated with Node.js, and no `node` program was "
            "found on PATH (install Node.js or convert the file to .json)"
        )))
        return _NOTHING
    try:
        payload = _evaluate_js(path, node)
        _check_depth(payload)
        return payload
    except ValueError as exc:
        result.problems.add(Problem(ERROR, rel, str(exc)))
        return _NOTHING


def _collect(result: LoadResult, rel: str, payload: Any) -> None:
    if isinstance(payload, list):
        entries = list(enumerate(payload))
    else:
        entries = [(None, payload)]
    nulls = 0
    for index, entry in entries:
        if entry is None:
            nulls += 1
            continue
        if not isinstance(entry, dict):
            where = f"entry {index}" if index is not None else "the file"
            result.problems.add(
                Problem(ERROR, rel, f"{where} is a {type(entry).__name__}, not an object")
            )
            continue
        if not entry:
            continue  # Grouparoo skipped empty objects
        result.objects.append(RawObject(file=rel, index=index, data=entry))
    if nulls:
        result.problems.add(
            Problem(ERROR, rel, f"has {nulls} null or undefined top-level config object(s)")
        )
