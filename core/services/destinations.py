"""Destination services."""

from __future__ import annotations

from core.choices import RunCreator
from core.models import Destination, Run
from core.services.runs import run_create


def destination_resync_enqueue(*, destination: Destination) -> Run:
    """The destination's mapping, group memberships or tracked collection changed: re-evaluate
    every record of its model and export the differences. Idempotent while the run is active."""
    run, _ = run_create(destination=destination, creator_type=RunCreator.DESTINATION)
    return run


def destination_mapping_options(*, destination: Destination):
    """The fields the destination requires and knows (connectors.base.MappingOptions), asked
    from the live connector. Raises ConnectorError. Changes nothing."""
    from connectors import registry

    cls = registry.get_destination(destination.type)
    with cls(destination.app.connector_options(), destination.connector_options()) as connector:
        return connector.mapping_options()
