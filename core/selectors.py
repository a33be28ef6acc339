"""Reads that need thought: annotated querysets and summaries (no writes here)."""
from __future__ import annotations

from django.db.models import Count, Q

from core.choices import ACTIVE_RUN_STATES, ExportState, RecordState
from core.models import Destination, Group, RecordModel, Run


def status_summary() -> dict:
    """What `manage.py status` and GET /api/v1/status show: a handful of grouped COUNTs."""
    models = RecordModel.objects.annotate(
        n=Count("records", filter=~Q(records__state=RecordState.DELETED)),
        invalid=Count("records", filter=Q(records__invalid=True) & ~Q(records__state=RecordState.DELETED)),
        deleted=Count("records", filter=Q(records__state=RecordState.DELETED)),
    ).order_by("name")
    groups = Group.objects.select_related("model").annotate(
        current=Count("members", filter=Q(members__left_at__isnull=True))
    ).order_by("model__name", "name")
    destinations = Destination.objects.annotate(
        pending=Count("exports", filter=Q(exports__state__in=[ExportState.PENDING, ExportState.PROCESSING])),
        failed=Count("exports", filter=Q(exports__state=ExportState.FAILED)),
        complete=Count("exports", filter=Q(exports__state=ExportState.COMPLETE)),
    ).order_by("name")
    runs = Run.objects.filter(state__in=ACTIVE_RUN_STATES).select_related("source", "group", "destination")
    return {
        "models": [{"name": m.name, "records": m.n, "invalid": m.invalid, "deleted": m.deleted} for m in models],
        "groups": [{"model": g.model.name, "name": g.name, "members": g.current} for g in groups],
        "destinations": [
            {"name": d.name, "sync_mode": d.sync_mode, "pending": d.pending, "failed": d.failed, "complete": d.complete}
            for d in destinations
        ],
        "active_runs": [
            {
                "id": r.pk, "creator": r.creator_type, "state": r.state, "phase": r.phase, "percent": r.percent_complete,
                "target": str(r.source or r.group or r.destination or ""),
            }
            for r in runs
        ],
    }
