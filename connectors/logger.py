"""The logger: an app ("logger": a log file, and whether to echo to standard output) and a
destination ("logger-export-records") that appends every export to the file as one line of JSON,
as Grouparoo's @grouparoo/logger plugin did: a destination for trying a setup out, or for
keeping a record of what would be sent.

A line holds what Grouparoo's held, under the same names:

    {"time": "2026-01-05T10:00:00.123456+00:00", "id": 42,
     "oldRecordProperties": {...}, "newRecordProperties": {"primary id": "ada@example.com"},
     "oldGroups": [...], "newGroups": ["High Value"], "toDelete": false}

`id` is the record's id; properties are keyed by the destination's mapping (Grouparoo required
a "primary id" and knew a "secondary id"; any other name may be mapped) and groups by their
remote names. Grouparoo began each batch with a line break; here each line ends with one, so the
file is JSON Lines. A batch is appended with one write under an exclusive lock on the file, so
lines of concurrent batches never mix. Delivery is at least once: a batch sent again after a
crash is appended again.

`filename` must be absolute (a config file may give it relative to the project directory, as
Grouparoo read it: core.config.validate makes it absolute). `stdout` also writes each batch to
the process's standard output, as Grouparoo logged it.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import sys
from datetime import UTC, datetime
from typing import Any, ClassVar

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
from connectors.registry import register

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})


def _flag(value: Any) -> bool:
    """A boolean option as Grouparoo stored it (the text "true") or as JSON has it."""
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in TRUE_WORDS


def log_path(app_options: dict[str, Any]) -> str:
    """The log file's path: absolute, in a directory that exists. Raises a permanent
    ConnectorError otherwise."""
    raw = app_options.get("filename")
    if not raw:
        raise ConnectorError("The logger app needs a file name.", permanent=True)
    path = os.path.expanduser(str(raw))
    if not os.path.isabs(path):
        raise ConnectorError(
            f'Log file "{raw}" is relative: give an absolute path.', permanent=True
        )
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise ConnectorError(f'Directory "{directory}" does not exist.', permanent=True)
    return path


def _append(path: str, text: str) -> None:
    # O_NONBLOCK: opening a FIFO for writing would wait for a reader for ever.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o640)
    except OSError as exc:
        raise ConnectorError(
            f'Cannot write log file "{path}": {exc.strerror}', permanent=True
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConnectorError(f'Log file "{path}" is not a regular file.', permanent=True)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = text.encode("utf-8")
        while data:
            written = os.write(fd, data)
            data = data[written:]
    except OSError as exc:
        raise ConnectorError(f'Cannot write log file "{path}": {exc.strerror}') from None
    finally:
        os.close(fd)


def export_line(payload: ExportPayload, now: datetime) -> str:
    """One export as the line Grouparoo's logger wrote for it."""
    return json.dumps(
        {
            "time": now.isoformat(),
            "id": payload.record_id,
            "oldRecordProperties": payload.old_properties,
            "newRecordProperties": payload.new_properties,
            "oldGroups": payload.old_groups,
            "newGroups": payload.new_groups,
            "toDelete": payload.to_delete,
        },
        default=str,
        ensure_ascii=False,
    )


@register
class LoggerApp(AppConnector):
    """A log file on the server that exports are appended to."""

    key = "logger"
    label = "Logger"
    max_concurrency = 1
    options = (
        Option(
            "filename",
            "File name",
            required=True,
            file_path=True,
            help_text="The log file exports are appended to (an absolute path).",
        ),
        Option(
            "stdout",
            "Write to standard output",
            type="boolean",
            default=False,
            help_text="Also write each batch to the server's standard output.",
        ),
    )

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, str]:
        errors = super().validate_options(options)
        raw = options.get("filename")
        if raw and not os.path.isabs(os.path.expanduser(str(raw))):
            errors.setdefault("filename", f"{raw!r} is relative: give an absolute path.")
        return errors

    def test_connection(self) -> str:
        """Create the file when it does not exist (as Grouparoo did) and check it can be
        appended to."""
        path = log_path(self.app_options)
        _append(path, "")
        return f"Access to {path} confirmed"


@register
class LoggerDestination(DestinationConnector):
    """Appends each export to the app's log file as a line of JSON."""

    key = "logger-export-records"
    app_key = "logger"
    label = "Logger export records"
    aliases = ("logger-export",)
    options: ClassVar[tuple[Option, ...]] = ()

    def mapping_options(self) -> MappingOptions:
        """Grouparoo's: "primary id" required, "secondary id" known, any other name allowed."""
        return MappingOptions(
            required=(("primary id", "string"),),
            known=(("secondary id", "string"),),
            allow_any=True,
        )

    def export_batch(
        self, exports: list[ExportPayload], *, operations: SyncOperations
    ) -> list[ExportResult]:
        """Append one line per export (in one write) and report each as delivered. A log has no
        records to create, update or delete, so the sync mode changes nothing: deletions are
        logged with `toDelete` true. Not idempotent: a batch sent twice is logged twice."""
        if not exports:
            return []
        path = log_path(self.app_options)
        now = datetime.now(UTC)
        lines = [export_line(payload, now) for payload in exports]
        _append(path, "".join(f"{line}\n" for line in lines))
        if _flag(self.app_options.get("stdout")):
            sys.stdout.write(
                f"exporting {len(lines)} records:\n" + "".join(f" ----> {line}\n" for line in lines)
            )
            sys.stdout.flush()
        return [ExportResult(payload.export_id, success=True) for payload in exports]
