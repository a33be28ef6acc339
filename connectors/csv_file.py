"""CSV files: the app ("csv"), a file source ("csv-file"), a source reading a file at a URL
("csv-url", Grouparoo's "csv-import-table") and a file destination ("csv-export").

Source: a CSV file on the server (a path, or a file uploaded in the admin and stored under the
media folder by `store_upload()`). The header row names the columns. The file is read by DuckDB
(an in-memory database that may read this one file and nothing else), so a CSV source does
everything a table source does — keyset pages, filters pushed down, a watermark column, all eight
aggregation methods — with the shared code of `connectors.sql`. Column types are detected from
the whole file (never from a sample, so a late row cannot break a type; values with leading zeros
stay text); the engine then types each value by its property, as for every source.

Destination: the tracked records as rows of a CSV file keyed by a primary-key column, with an
optional column holding each record's mapped groups. Every batch rewrites the file atomically:
the new content goes to a temporary file in the same directory, is flushed to disk, and replaces
the old file with one rename, so a reader sees the old file or the new one, never half of one.
Batches of one destination are serialised by a lock file beside the CSV.

Paths: absolute, or relative to the app's base directory; when the app has a base directory,
every path must resolve inside it (symbolic links included). (Config files may give paths
relative to the project directory: core.config.validate makes them absolute.)

URL source: an http(s) URL is downloaded into MEDIA_ROOT/csv-cache through the address guard
of webhooks and downloaded again once the copy is older than `fileAgeHours`, as Grouparoo's csv
plugin did (it kept its copies in the system's temporary directory); a `url` that is not
http(s) is a path, as a csv-file source's.
"""
from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import math
import os
import re
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx

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
from connectors.duckdb import DuckdbDialect, first_line
from connectors.registry import register
from connectors.sql import SqlTableSource, key_norm, timeout_option
from connectors.sql import option_value as _get

UPLOAD_SUBDIR = "csv"
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024


def resolve_path(app_options: dict[str, Any], path: Any, *, what: str = "CSV file") -> str:
    """The absolute path of `path`: absolute as given, or relative to the app's baseDirectory;
    with a baseDirectory, the real path must stay inside it. Raises a permanent ConnectorError."""
    if not path:
        raise ConnectorError(f"The {what} path is missing.", permanent=True)
    base = _get(app_options, "baseDirectory")
    text = os.path.expanduser(str(path))
    if base:
        base_real = os.path.realpath(os.path.expanduser(str(base)))
        full = os.path.realpath(os.path.join(base_real, text))
        if os.path.commonpath([base_real, full]) != base_real:
            raise ConnectorError(f'{what} "{path}" is outside the base directory "{base}".', permanent=True)
        return full
    if not os.path.isabs(text):
        raise ConnectorError(f'{what} "{path}" is relative: give an absolute path (or set the app\'s base directory).', permanent=True)
    return os.path.abspath(text)


def _sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def store_upload(upload: Any, *, media_root: str | os.PathLike[str] | None = None) -> str:
    """Store an uploaded CSV file under MEDIA_ROOT/csv/ and return its absolute path, for a
    csv-file source's `path` option.

    upload: a Django `UploadedFile` (or anything with `.name` and `.chunks()` or `.read()`).
    media_root: defaults to django.conf.settings.MEDIA_ROOT (read lazily; no models involved).
    The stored name is `<random>-<cleaned original name>.csv`, written to a temporary file and
    renamed into place, so a half-stored upload is never visible. Rejects files with NUL bytes
    (not text) and files larger than MAX_UPLOAD_BYTES. Each call stores a new file."""
    if media_root is None:
        from django.conf import settings

        media_root = settings.MEDIA_ROOT
    directory = os.path.join(os.fspath(media_root), UPLOAD_SUBDIR)
    os.makedirs(directory, exist_ok=True)
    stem = os.path.splitext(os.path.basename(str(getattr(upload, "name", "") or "upload")))[0]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80] or "upload"
    final = os.path.join(directory, f"{uuid.uuid4().hex[:12]}-{stem}.csv")
    chunks = upload.chunks() if hasattr(upload, "chunks") else iter([upload.read()])
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=".tmp")
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
                if b"\x00" in data:
                    raise ConnectorError("The uploaded file is not a text (CSV) file.", permanent=True)
                size += len(data)
                if size > MAX_UPLOAD_BYTES:
                    raise ConnectorError("The uploaded file is too large.", permanent=True)
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o640)
        os.replace(temp, final)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return final


# --- app ----------------------------------------------------------------------------------


@register
class CsvApp(AppConnector):
    """Where CSV files live. Without a base directory, sources and destinations take absolute
    paths; with one, paths are relative to it and cannot leave it."""

    key = "csv"
    label = "CSV files"
    aliases = ("csv-app",)
    max_concurrency = 1
    options = (
        Option(
            "baseDirectory",
            "Base directory",
            help_text="Optional: file paths are relative to this directory and must stay inside it.",
            file_path=True,
        ),
        timeout_option(),
    )

    def test_connection(self) -> str:
        """Check the base directory (exists, readable, writable) and count its CSV files."""
        base = _get(self.app_options, "baseDirectory")
        if not base:
            return "CSV files are read and written at absolute paths on this server (no base directory)."
        path = os.path.realpath(os.path.expanduser(str(base)))
        if not os.path.isdir(path):
            raise ConnectorError(f'Base directory "{base}" does not exist.', permanent=True)
        if not os.access(path, os.R_OK | os.X_OK):
            raise ConnectorError(f'Base directory "{base}" cannot be read (permissions).', permanent=True)
        files = sum(1 for name in os.listdir(path) if name.lower().endswith(".csv"))
        writable = "writable" if os.access(path, os.W_OK) else "read only"
        return f"Base directory {path}: {files} CSV files, {writable}"


# --- source -------------------------------------------------------------------------------


class CsvDialect(DuckdbDialect):
    """DuckDB reading one CSV file in an in-memory database."""

    name = "CSV"

    def connect(self, options: dict[str, Any], *, read_only: bool) -> Any:  # pragma: no cover
        raise NotImplementedError("CSV sources open their file themselves")

    def open_file(self, path: str) -> Any:
        conn = self.open(":memory:", path)
        try:
            conn.execute(f"SET allowed_paths = [{_sql_text(path)}]")
            conn.execute("SET enable_external_access = false")
            conn.execute("SET lock_configuration = true")
        except BaseException:
            conn.close()
            raise
        return conn

    def translate_error(self, exc: BaseException, *, timeout: float | None) -> ConnectorError:
        import duckdb

        text = str(exc)
        if "CSV Error" in text or isinstance(exc, duckdb.ConversionException | duckdb.InvalidInputException):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            head = re.sub(r"^[A-Za-z ]+Error: ", "", lines[0]) if lines else type(exc).__name__
            detail = next((line for line in lines[1:] if not line.startswith(("Original Line", "Possible Solution"))), "")
            reason = f"{head}: {detail}" if detail else head
            # A file rewritten with other values may fit after its types are detected again.
            return ConnectorError(f"Cannot read the CSV file: {reason}", permanent=not isinstance(exc, duckdb.ConversionException))
        if isinstance(exc, duckdb.IOException):
            return ConnectorError(f"Cannot read the CSV file: {first_line(exc).removeprefix('IO Error: ')}")
        return super().translate_error(exc, timeout=timeout)


CSV = CsvDialect()


@register
class CsvFileSource(SqlTableSource):
    """Rows of a CSV file with a header row; properties aggregate its rows per key like a
    table source's (column, aggregationMethod, sortColumn)."""

    key = "csv-file"
    app_key = "csv"
    # The admin offers a file upload that fills in this option (see store_upload()).
    upload_option = "path"
    label = "CSV file"
    aliases = ("csv-import", "csv-import-file", "csv-file-import")
    dialect = CSV
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "path", "File", required=True, file_path=True,
            help_text="Path of the CSV file on the server (or of an uploaded file).",
        ),
        Option("delimiter", "Delimiter", help_text="One character; blank: detected from the file."),
    )

    def __init__(self, app_options: dict[str, Any], source_options: dict[str, Any]):
        super().__init__(app_options, source_options)
        self._layout: dict[str, Any] | None = None

    def located(self) -> tuple[str, str]:
        """(the file's path on the server, how messages name it)."""
        raw = self.source_options.get("path")
        return resolve_path(self.app_options, raw), str(raw)

    def path(self) -> str:
        """The checked path of the file: it exists, is a regular file, can be read, has bytes."""
        path, raw = self.located()
        if not os.path.exists(path):
            raise ConnectorError(f'CSV file "{raw}" does not exist', permanent=True)
        if not os.path.isfile(path):
            raise ConnectorError(f'CSV file "{raw}" is not a file', permanent=True)
        if not os.access(path, os.R_OK):
            raise ConnectorError(f'CSV file "{raw}" cannot be read (permissions)', permanent=True)
        if os.path.getsize(path) == 0:
            raise ConnectorError(f'CSV file "{raw}" is empty (it needs a header row)', permanent=True)
        return path

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.dialect.open_file(self.path())
        return self._conn

    def _delimiter(self) -> str | None:
        delimiter = _get(self.source_options, "delimiter")
        if delimiter is None:
            return None
        text = str(delimiter).replace("\\t", "\t")
        if len(text) != 1:
            raise ConnectorError(f"The delimiter must be one character, not {delimiter!r}.", permanent=True)
        return text

    def _read_options(self, path: str) -> str:
        parts = [_sql_text(path), "header = true"]
        delimiter = self._delimiter()
        if delimiter is not None:
            parts.append(f"delim = {_sql_text(delimiter)}")
        return ", ".join(parts)

    def describe(self, cur: Any) -> list[tuple[str, str | None]]:
        """Detect the columns and their types from the whole file (once per connector)."""
        path = self.path()
        if self._layout is None or self._layout["path"] != path:
            cur.execute(f"SELECT Columns, DateFormat, TimestampFormat FROM sniff_csv({self._read_options(path)}, sample_size = -1)")
            columns, date_format, timestamp_format = cur.fetchone()
            self._layout = {
                "path": path,
                "columns": [(c["name"], c["type"]) for c in columns],
                "dateformat": date_format,
                "timestampformat": timestamp_format,
            }
        return list(self._layout["columns"])

    def relation(self) -> str:
        path = self.path()
        options = self._read_options(path)
        layout = self._layout
        if layout is None or layout["path"] != path:
            return f"read_csv({options}, sample_size = -1)"
        columns = ", ".join(f"{_sql_text(n)}: {_sql_text(t)}" for n, t in layout["columns"])
        options += f", columns = {{{columns}}}"
        for key in ("dateformat", "timestampformat"):
            if layout[key]:
                options += f", {key} = {_sql_text(layout[key])}"
        return f"read_csv({options})"

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        try:
            with super().transaction() as cur:
                yield cur
        except ConnectorError as exc:
            if not exc.permanent:
                # Types detected earlier may no longer fit a rewritten file: detect them again.
                self._layout = None
                self._column_cache = None
            raise


# --- a CSV file at a URL (Grouparoo's csv-import-table) -------------------------------------

CACHE_SUBDIR = "csv-cache"
DOWNLOAD_TIMEOUT = 60.0  # seconds each socket operation of a download may wait
MAX_REDIRECTS = 5


def is_http_url(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(("http://", "https://"))


def cache_directory() -> str:
    """Where downloaded CSV files are kept: MEDIA_ROOT/csv-cache (read lazily from Django's
    settings; no models involved)."""
    from django.conf import settings

    return os.path.join(os.fspath(settings.MEDIA_ROOT), CACHE_SUBDIR)


SNAPSHOT_SUFFIX = ".reading"
STALE_SNAPSHOT_SECONDS = 2 * 24 * 3600


def download_cached(url: str, *, max_age_seconds: float, directory: str | None = None) -> str:
    """The path of a private snapshot of the local copy of the file at `url` (http or https),
    which is downloaded again when older than `max_age_seconds`. The download goes through the
    webhooks' address guard (public addresses only unless GROUPAROO_ALLOW_PRIVATE_WEBHOOKS is on,
    every redirect hop checked), is at most MAX_UPLOAD_BYTES, and replaces the copy atomically
    once complete; concurrent callers download once (a lock file). The snapshot is a hard link
    to the copy of the moment: a newer download never changes what its holder reads. Its holder
    deletes it (release_snapshot); snapshots a crash left are deleted after two days. A copy
    is named by a hash of the URL. Messages name the URL as scheme://host:port only, as it may
    carry a token. Raises ConnectorError (permanent for 4xx answers and refused addresses)."""
    directory = directory or cache_directory()
    os.makedirs(directory, exist_ok=True)
    name = hashlib.sha256(url.encode()).hexdigest()[:32]
    target = os.path.join(directory, f"{name}.csv")
    with open(os.path.join(directory, f".{name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            fresh = time.time() - os.stat(target).st_mtime < max_age_seconds
        except FileNotFoundError:
            fresh = False
        if not fresh:
            _sweep_snapshots(directory)
            _download_to(url, directory, name, target)
        snapshot = os.path.join(directory, f".{name}.{uuid.uuid4().hex}{SNAPSHOT_SUFFIX}")
        os.link(target, snapshot)
    return snapshot


def release_snapshot(path: str) -> None:
    """Delete a snapshot download_cached handed out (safe to call twice)."""
    if path.endswith(SNAPSHOT_SUFFIX):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _sweep_snapshots(directory: str) -> None:
    cutoff = time.time() - STALE_SNAPSHOT_SECONDS
    for entry in os.scandir(directory):
        if entry.name.endswith(SNAPSHOT_SUFFIX) and entry.stat().st_mtime < cutoff:
            release_snapshot(entry.path)


def _download_to(url: str, directory: str, name: str, target: str) -> None:
    from connectors.webhook import display_url, guarded_client

    shown = display_url(url)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, guarded_client(
            timeout=DOWNLOAD_TIMEOUT, shown=shown, what="CSV URL"
        ) as client:
            client.max_redirects = MAX_REDIRECTS
            _download(client, url, shown, out)
        os.chmod(temp, 0o640)
        os.replace(temp, target)
    except httpx.HTTPError as exc:
        raise ConnectorError(f"Cannot download the CSV file from {shown}: {type(exc).__name__}") from None
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _file_name(url: str) -> str:
    """The URL's last path segment when it looks like a file name ("users.csv"), for messages;
    else "" (a path may hold a token)."""
    from urllib.parse import unquote, urlsplit

    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name if "." in name and len(name) <= 64 and name.isprintable() else ""


def _download(client: Any, url: str, shown: str, out: Any) -> None:
    with client.stream("GET", url, follow_redirects=True) as response:
        if response.status_code in (404, 410):
            name = _file_name(url)
            raise ConnectorError(
                f'CSV file {f"{name!r} " if name else ""}at {shown} does not exist (HTTP {response.status_code})',
                permanent=True,
            )
        if response.status_code != 200:
            raise ConnectorError(
                f"Cannot download the CSV file from {shown}: HTTP {response.status_code}",
                permanent=400 <= response.status_code < 500 and response.status_code not in (408, 429),
            )
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise ConnectorError(f"The CSV file at {shown} is larger than {MAX_UPLOAD_BYTES:,} bytes.",
                                     permanent=True)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


@register
class CsvUrlSource(CsvFileSource):
    """Grouparoo's `csv-import-table`: the CSV file at `url`, read as a csv-file source reads its
    file. An http(s) URL is downloaded (see download_cached) and downloaded again once the copy
    is older than `fileAgeHours`; anything else is a path on the server, as a csv-file source's.
    One connector reads one snapshot of the copy as long as it lives: a run is not switched to a
    newer download halfway."""

    key = "csv-url"
    label = "CSV file at a URL"
    aliases = ("csv-import-table", "csv-remote-import")
    upload_option = None
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "url", "File URL", required=True, file_path=True,
            help_text="The http(s) URL of the CSV file (or its path on the server).",
        ),
        Option(
            "fileAgeHours", "File age (hours)", type="number", default=1,
            help_text="A downloaded copy is used for this long before the file is downloaded again.",
        ),
        Option("delimiter", "Delimiter", help_text="One character; blank: detected from the file."),
    )

    def __init__(self, app_options: dict[str, Any], source_options: dict[str, Any]):
        super().__init__(app_options, source_options)
        self._copy: tuple[str, str] | None = None

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, str]:
        errors = super().validate_options(options)
        try:
            cls._max_age(options)
        except ConnectorError as exc:
            errors.setdefault("fileAgeHours", exc.message)
        return errors

    @staticmethod
    def _max_age(options: dict[str, Any]) -> float:
        raw = options.get("fileAgeHours")
        if raw is None or raw == "":
            return 3600.0
        try:
            hours = float(raw)
        except (TypeError, ValueError):
            hours = math.nan
        if not math.isfinite(hours) or hours < 0:
            raise ConnectorError(f"fileAgeHours must be a number of hours (0 or more), not {raw!r}.", permanent=True)
        return hours * 3600

    def located(self) -> tuple[str, str]:
        if self._copy is None:
            url = self.source_options.get("url")
            if is_http_url(url):
                from connectors.webhook import display_url

                path = download_cached(str(url).strip(), max_age_seconds=self._max_age(self.source_options))
                # The file is reopened for every query (close() runs after each): the snapshot
                # lives as long as this connector does.
                weakref.finalize(self, release_snapshot, path)
                self._copy = (path, f"downloaded from {display_url(str(url))}")
            else:
                self._copy = (resolve_path(self.app_options, url), str(url))
        return self._copy


# --- destination --------------------------------------------------------------------------


def csv_value(value: Any) -> str:
    """A payload value as CSV text: "" for None, true/false, JSON for lists and objects."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def merge_groups(cell: str | None, separator: str, old: Any, new: Any) -> str:
    """A groups cell after an export: the names this destination wrote before (`old`) and no
    longer sends go, the `new` ones are there; names someone else wrote stay. A name holding
    the separator ("x;y") is read back as one name where its parts stand together."""
    wanted = {str(g) for g in new}
    known = wanted | {str(g) for g in old}
    have = {g for g in _split_groups(cell or "", separator, known) if g}
    return separator.join(sorted((have - ({str(g) for g in old} - wanted)) | wanted))


def _split_groups(cell: str, separator: str, known: set[str]) -> list[str]:
    """The names of a groups cell: split at the separator, except that the parts of a known
    name containing it (longest first) stay one name."""
    if not separator:
        return [cell]
    parts = cell.split(separator)
    joined = sorted((n.split(separator) for n in known if separator in n), key=len, reverse=True)
    names: list[str] = []
    i = 0
    while i < len(parts):
        match = next((n for n in joined if parts[i : i + len(n)] == n), None)
        step = len(match) if match else 1
        names.append(separator.join(parts[i : i + step]))
        i += step
    return names


@register
class CsvDestination(DestinationConnector):
    """Keeps a CSV file holding one row per tracked record (keyed by primaryKey) and, in an
    optional column, the record's mapped groups joined by the separator."""

    key = "csv-export"
    app_key = "csv"
    label = "CSV file export"
    aliases = ("csv-export-records",)
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "path", "File", required=True, file_path=True,
            help_text="Path of the CSV file to write (replaced atomically).",
        ),
        Option("primaryKey", "Primary key column", required=True, help_text="Column matching the mapped key."),
        Option("groupsColumn", "Groups column", default="groups", help_text="Column listing the record's groups (blank: none)."),
        Option("groupSeparator", "Group separator", default=";", help_text="Joins group names in the groups column."),
    )

    def _settings(self) -> tuple[str, str, str | None, str]:
        path = resolve_path(self.app_options, self.destination_options.get("path"))
        pk = _get(self.destination_options, "primaryKey")
        if not pk:
            raise ConnectorError("The destination needs a primaryKey column.", permanent=True)
        groups = self.destination_options.get("groupsColumn", "groups")
        separator = str(_get(self.destination_options, "groupSeparator", ";"))
        return path, str(pk), (str(groups) if groups else None), separator

    def mapping_options(self) -> MappingOptions:
        """primaryKey is required; the file's current columns are known; any field may be
        added (a new column)."""
        path, pk, groups, _ = self._settings()
        header = self._read(path)[0] if os.path.isfile(path) else []
        known = tuple((c, "any") for c in header if c != groups)
        return MappingOptions(required=((pk, "any"),), known=known, allow_any=True)

    def _read(self, path: str) -> tuple[list[str], list[dict[str, str]]]:
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                rows = [dict(r) for r in reader]
                return list(reader.fieldnames or []), rows
        except FileNotFoundError:
            return [], []
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ConnectorError(f'Cannot read CSV file "{path}": {exc.__class__.__name__}: {exc}', permanent=True) from None

    @contextmanager
    def _locked(self, path: str) -> Iterator[None]:
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            raise ConnectorError(f'Directory "{directory}" does not exist', permanent=True)
        lock_path = os.path.join(directory, f".{os.path.basename(path)}.lock")
        try:
            handle = open(lock_path, "a")
        except OSError as exc:
            raise ConnectorError(f'Cannot write in directory "{directory}": {exc.strerror}', permanent=True) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            handle.close()

    def _write(self, path: str, header: list[str], rows: list[dict[str, str]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        directory = os.path.dirname(path)
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        try:
            fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        except OSError as exc:
            raise ConnectorError(f'Cannot write CSV file "{path}": {exc.strerror}', permanent=True) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                out.write(buffer.getvalue())
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, mode)
            os.replace(temp, path)
        except OSError as exc:
            if os.path.exists(temp):
                os.unlink(temp)
            raise ConnectorError(f'Cannot write CSV file "{path}": {exc.strerror}') from None

    def export_batch(self, exports: list[ExportPayload], *, operations: SyncOperations) -> list[ExportResult]:
        """Apply a batch to the file and replace it atomically; one result per payload.

        Rows are keyed by primaryKey (compared as text): created or updated (only updated when
        operations.create is False; a missing row is then skipped), removed on to_delete when
        operations.delete (else updated with the record's current values and no groups). A
        changed key moves the row. Properties no longer mapped or set are cleared; a new property
        adds a column. The groups cell loses only the names this destination wrote (old_groups)
        that the record no longer has: names written by others stay. Applying the same batch
        twice leaves the same file as once: idempotent."""
        if not exports:
            return []
        path, pk, groups_column, separator = self._settings()
        results: list[ExportResult] = []
        with self._locked(path):
            header, rows = self._read(path)
            if rows and pk not in header:
                raise ConnectorError(f'CSV file "{path}" has no column "{pk}"', permanent=True)
            header = header or [pk]
            by_key: dict[Any, dict[str, str]] = {key_norm(r.get(pk, "")): r for r in rows}
            order: list[Any] = list(by_key)

            def place(k: Any, row: dict[str, str]) -> None:
                if k not in by_key:
                    order.append(k)
                by_key[k] = row

            def drop(k: Any) -> None:
                if by_key.pop(k, None) is not None:
                    order.remove(k)

            for payload in exports:
                key = payload.new_properties.get(pk)
                old_key = payload.old_properties.get(pk)
                k = None if key is None else key_norm(csv_value(key))
                old_k = None if old_key is None else key_norm(csv_value(old_key))
                # A leaving record is deleted (sync mode), or else written like any other with
                # its current values and no groups; without a key it only loses its groups.
                if payload.to_delete and (operations.delete or k is None):
                    targets = [t for t in (k, old_k) if t is not None]
                    for target in targets:
                        if operations.delete:
                            drop(target)
                        elif groups_column and target in by_key:
                            row = by_key[target]
                            row[groups_column] = merge_groups(row.get(groups_column), separator, payload.old_groups, ())
                    results.append(ExportResult(payload.export_id, success=True, skipped=not targets))
                    continue
                if k is None:
                    results.append(ExportResult(
                        payload.export_id, success=False, level="info",
                        error=f'The record has no value for the primary key column "{pk}".',
                    ))
                    continue
                row = by_key.get(k)
                if old_k is not None and old_k != k and old_k in by_key:
                    moved = by_key[old_k]
                    drop(old_k)
                    if row is None:
                        row = moved
                if row is None and not operations.create:
                    results.append(ExportResult(payload.export_id, success=True, skipped=True))
                    continue
                row = dict(row or {})
                for column, value in payload.new_properties.items():
                    if column == groups_column:
                        continue
                    if column not in header:
                        header.append(column)
                    row[column] = csv_value(value)
                for column in payload.old_properties:
                    if column not in payload.new_properties and column in header and column != groups_column:
                        row[column] = ""
                row[pk] = csv_value(key)
                if groups_column:
                    if groups_column not in header:
                        header.append(groups_column)
                    new_groups = () if payload.to_delete else payload.new_groups
                    row[groups_column] = merge_groups(row.get(groups_column), separator, payload.old_groups, new_groups)
                place(k, row)
                results.append(ExportResult(payload.export_id, success=True))
            if groups_column and groups_column not in header:
                header.append(groups_column)
            self._write(path, header, [by_key[k] for k in order])
        return results
