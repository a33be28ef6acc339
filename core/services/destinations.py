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
