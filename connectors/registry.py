"""The connector registry: type key -> class, for apps, sources and destinations.

Built-ins are imported explicitly in `load_builtins()`; third-party packages add connectors
through the `grouparoo.connectors` entry-point group (each entry point is a module that
registers its classes with `@register` on import; see docs/connectors.md). A plugin cannot
replace a type key (or alias) that is already registered: its class is refused with a logged
error, so installing a package never silently changes what an existing configuration runs.
Grouparoo's old type names are aliases.
"""
from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from connectors.base import AppConnector, DestinationConnector, SourceConnector

logger = logging.getLogger(__name__)

BUILTIN_MODULES = (
    "connectors.sqlite",
    "connectors.postgres",
    "connectors.mysql",
    "connectors.duckdb",
    "connectors.csv_file",
    "connectors.webhook",
    "connectors.logger",
    "connectors.calculated",
)
ENTRY_POINT_GROUP = "grouparoo.connectors"

_apps: dict[str, type[AppConnector]] = {}
_sources: dict[str, type[SourceConnector]] = {}
_destinations: dict[str, type[DestinationConnector]] = {}
_aliases: dict[str, str] = {}
# The entry point being loaded (None: built-ins and direct imports).
_loading_plugin: str | None = None
# Entry points that failed to load: name -> the reason (for status pages).
plugin_errors: dict[str, str] = {}


class UnknownConnector(LookupError):
    pass


def _table(cls) -> dict:
    if issubclass(cls, AppConnector):
        return _apps
    if issubclass(cls, SourceConnector):
        return _sources
    if issubclass(cls, DestinationConnector):
        return _destinations
    raise TypeError(f"{cls!r} is not a connector class")  # pragma: no cover - programming error


def register(cls):
    """Class decorator filing a connector under its `key` (and its `aliases`)."""
    table = _table(cls)
    if _loading_plugin is not None:
        taken = [
            k for k in (cls.key, *cls.aliases)
            if (k in table and table[k] is not cls) or (k in _aliases and table.get(_aliases[k]) is not cls)
        ]
        if taken:
            logger.error(
                "connector plugin %s: %s.%s not registered, type %s already taken",
                _loading_plugin, cls.__module__, cls.__qualname__, ", ".join(repr(k) for k in taken),
            )
            reason = f"{cls.__qualname__}: type {', '.join(repr(k) for k in taken)} already taken"
            earlier = plugin_errors.get(_loading_plugin)
            plugin_errors[_loading_plugin] = f"{earlier}; {reason}" if earlier else reason
            return cls
    table[cls.key] = cls
    for alias in cls.aliases:
        _aliases[alias] = cls.key
    return cls


def unregister(cls) -> None:
    """Remove a connector class and its aliases (tests, and plugins being unloaded)."""
    table = _table(cls)
    if table.get(cls.key) is cls:
        del table[cls.key]
        for alias in cls.aliases:
            if _aliases.get(alias) == cls.key:
                del _aliases[alias]


def canonical(key: str) -> str:
    return _aliases.get(key, key)


def _get(table: dict, kind: str, key: str):
    try:
        return table[canonical(key)]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise UnknownConnector(f"Unknown {kind} type {key!r} (known: {known}).") from None


def get_app(key: str) -> type[AppConnector]:
    return _get(_apps, "app", key)


def get_source(key: str) -> type[SourceConnector]:
    return _get(_sources, "source", key)


def get_destination(key: str) -> type[DestinationConnector]:
    return _get(_destinations, "destination", key)


def app_choices() -> list[tuple[str, str]]:
    return sorted((k, c.label) for k, c in _apps.items())


def source_choices(app_key: str | None = None) -> list[tuple[str, str]]:
    return sorted((k, c.label) for k, c in _sources.items() if app_key is None or c.app_key == app_key)


def destination_choices(app_key: str | None = None) -> list[tuple[str, str]]:
    return sorted((k, c.label) for k, c in _destinations.items() if app_key is None or c.app_key == app_key)


def load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def load_entry_points() -> None:
    """Import every module of the `grouparoo.connectors` entry-point group once (Python caches
    the import, so calling this again registers nothing twice). A plugin that fails to import is
    logged and recorded in `plugin_errors`; the others load."""
    global _loading_plugin
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _loading_plugin = ep.name
        try:
            ep.load()
        except Exception as exc:  # a broken plugin must not take the server down
            logger.exception("could not load connector plugin %s", ep.name)
            plugin_errors[ep.name] = f"{type(exc).__name__}: {exc}"
        finally:
            _loading_plugin = None
