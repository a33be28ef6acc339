"""Export services."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.choices import ExportState
from core.engine.exports import exports_supersede_failed
from core.models import Destination, Export


def exports_retry_failed(
    *, destination: Destination, since: datetime | None = None, until: datetime | None = None
) -> int:
    """Put failed exports of the destination (optionally created in [since, until]) back in the
    queue with fresh attempts. Returns how many. A failed export that a newer export of the same
    record replaced is not retried (that would send stale content): it is marked superseded
    (exports_supersede_failed), so it no longer counts as failed. Idempotent: a second call
    finds nothing failed left to retry."""
    from core.tasks import enqueue_send

    with transaction.atomic():
        exports_supersede_failed(destination_id=destination.pk)
    qs = Export.objects.filter(destination=destination, state=ExportState.FAILED)
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lte=until)
    newer = Export.objects.filter(
        destination=OuterRef("destination"), record=OuterRef("record"), pk__gt=OuterRef("pk")
    ).exclude(state=ExportState.CANCELED)
    count = qs.exclude(Exists(newer)).update(
        state=ExportState.PENDING,
        attempts=0,
        send_after=None,
        error_message="",
        error_level="",
        updated_at=timezone.now(),
    )
    if count:
        enqueue_send(destination.pk)
    return count
