"""Source services: preview and column listing (read-only, for the admin and API)."""

from __future__ import annotations

from typing import Any

from connectors import registry
from connectors.base import Column
from core.models import Property, Source


def _connector(source: Source):
    cls = registry.get_source(source.type)
    return cls(source.app.connector_options(), source.connector_options())


def source_preview(*, source: Source, limit: int = 10) -> list[dict[str, Any]]:
    """A few rows of the source. Raises ConnectorError. Changes nothing."""
    with _connector(source) as connector:
        return connector.preview(limit)


def source_list_columns(*, source: Source) -> list[Column]:
    """The source's columns and the filter operations each allows. Raises ConnectorError."""
    with _connector(source) as connector:
        return connector.list_columns()


def property_changed(*, prop: Property) -> None:
    """A property was created or changed: re-read its source in full so every record gets it."""
    from core.choices import RunCreator
    from core.services.runs import run_create

    run_create(source=prop.source, property=prop, creator_type=RunCreator.PROPERTY, full=True, follow_up=True)
