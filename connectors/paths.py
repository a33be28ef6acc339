"""Which files connectors may use.

Connectors with a file path option (`Option.file_path`: a SQLite or DuckDB app's `path`, a CSV
app's `baseDirectory`, a CSV source's `path` or non-http `url`, a CSV destination's `path`, a
logger's `filename`) read or write that file with the server's own permissions. So:

- A path given through the admin or the API must resolve (its real path, symbolic links
  followed) inside one of the directories of the setting GROUPAROO_FILE_DIRECTORIES (default:
  the project's `var/` directory and MEDIA_ROOT): `file_option_errors()`, called by the admin
  forms and the API serializers. Config files (`manage.py apply`) are the server's own code and
  are trusted: their paths are not limited to these directories.
- Whatever gave the path, a connector never opens the project's `.env` file, the application's
  SQLite database (with its -wal, -shm and -journal files) or a file under STATIC_ROOT:
  `refuse_protected()`, called where each connector turns its option into a path.

Settings are read lazily from django.conf (no models involved).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from connectors.base import ConnectorError, Option

SETTING = "GROUPAROO_FILE_DIRECTORIES"
_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def _inside(path: str, directory: str) -> bool:
    return os.path.commonpath([directory, path]) == directory


def allowed_directories() -> list[str]:
    """The real paths of GROUPAROO_FILE_DIRECTORIES (relative entries: from the project)."""
    from django.conf import settings

    base = os.fspath(settings.BASE_DIR)
    return [_real(os.path.join(base, os.fspath(d))) for d in getattr(settings, SETTING, ()) if d]


def _protected() -> tuple[list[str], list[str]]:
    """(files, directories) no connector may open."""
    from django.conf import settings

    files = [_real(os.path.join(os.fspath(settings.BASE_DIR), ".env"))]
    for database in settings.DATABASES.values():
        name = str(database.get("NAME") or "")
        if (
            "sqlite" in str(database.get("ENGINE", ""))
            and name
            and name != ":memory:"
            and not name.startswith("file:")
        ):
            files += [_real(name + suffix) for suffix in _SQLITE_SIDE_FILES]
    directories = [_real(settings.STATIC_ROOT)] if getattr(settings, "STATIC_ROOT", None) else []
    return files, directories


def is_protected(path: str) -> bool:
    """True for the project's .env, the application's SQLite database files and anything under
    STATIC_ROOT (compared by real path, and by inode for a hard link)."""
    real = _real(path)
    files, directories = _protected()
    if any(_inside(real, d) for d in directories):
        return True
    for protected in files:
        if real == protected:
            return True
        try:
            if os.path.samefile(real, protected):
                return True
        except OSError:
            continue
    return False


def refuse_protected(path: str, *, what: str) -> str:
    """Return `path`, or raise a permanent ConnectorError when it is a protected file."""
    if is_protected(path):
        raise ConnectorError(
            f'{what} "{path}" is one of the server\'s own files (its settings, database or static '
            "files): connectors never open it.",
            permanent=True,
        )
    return path


def option_path(value: str, app_options: dict[str, Any] | None) -> str:
    """The real path an option's value names: relative to the app's baseDirectory when the app
    has one, else to the server's working directory."""
    text = os.path.expanduser(value)
    base = (app_options or {}).get("baseDirectory")
    if base and not os.path.isabs(text):
        text = os.path.join(_real(str(base)), text)
    return _real(os.path.abspath(text))


def file_option_errors(
    declared: Iterable[Option],
    options: dict[str, Any],
    *,
    app_options: dict[str, Any] | None = None,
    unchanged: dict[str, Any] | None = None,
) -> dict[str, str]:
    """{option key: message} for each file path option (other than an http(s) URL) whose real
    path is outside GROUPAROO_FILE_DIRECTORIES or is a protected file. Values equal to those in
    `unchanged` (what is stored, when the app is the same) are not checked again."""
    errors: dict[str, str] = {}
    allowed = None
    for option in declared:
        value = options.get(option.key)
        if not option.file_path or not isinstance(value, str) or not value.strip():
            continue
        if value.strip().lower().startswith(("http://", "https://")):
            continue
        if unchanged is not None and unchanged.get(option.key) == value:
            continue
        real = option_path(value, app_options)
        if allowed is None:
            allowed = allowed_directories()
        if is_protected(real):
            errors[option.key] = (
                f"{option.label} ({option.key}) {value!r} is one of the server's own files "
                "(its settings, database or static files): connectors never open it."
            )
        elif not any(_inside(real, d) for d in allowed):
            shown = ", ".join(allowed) or "none"
            errors[option.key] = (
                f"{option.label} ({option.key}) {value!r} is outside the directories the server "
                f"may use for files: set {SETTING} (now: {shown}) to allow its directory."
            )
    return errors
