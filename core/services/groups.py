"""Group services."""

from __future__ import annotations

from core.choices import RunCreator
from core.models import Group, Run
from core.services.runs import run_create


def group_recompute_enqueue(*, group: Group) -> Run:
    """Recompute the group's members over the whole model and export what changed. Idempotent:
    while a recompute of this group is active, returns it instead of starting another."""
    run, _ = run_create(group=group, creator_type=RunCreator.GROUP)
    return run
