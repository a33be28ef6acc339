"""The connector registry: type key -> class, for apps, sources and destinations.

Built-ins are imported explicitly in `load_builtins()`; third-party packages add connectors
through the `grouparoo.connectors` entry-point group (each entry point is a module that
registers its classes with `@register` on import). Grouparoo's old type names are aliases.
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
)
ENTRY_POINT_GROUP = "grouparoo.connectors"

_apps: dict[str, type[AppConnector]] = {}
_sources: dict[str, type[SourceConnector]] = {}
_destinations: dict[str, type[DestinationConnector]] = {}
_aliases: dict[str, str] = {}


class UnknownConnector(LookupError):
    pass


def register(cls):
    """Class decorator filing a connector under its `key` (and its `aliases`)."""
    if issubclass(cls, AppConnector):
        table = _apps
    elif issubclass(cls, SourceConnector):
        table = _sources
    elif issubclass(cls, DestinationConnector):
        table = _destinations
    else:  # pragma: no cover - programming error
        raise TypeError(f"{cls!r} is not a connector class")
    table[cls.key] = cls
    for alias in cls.aliases:
        _aliases[alias] = cls.key
    return cls


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
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception:  # a broken plugin must not take the server down
            logger.exception("could not load connector plugin %s", ep.name)
