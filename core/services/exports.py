"""Export services."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from core.engine.exports import exports_requeue_failed, exports_supersede_failed
from core.models import Destination


def exports_retry_failed(
    *, destination: Destination, since: datetime | None = None, until: datetime | None = None
) -> int:
    """Put failed exports of the destination (optionally created in [since, until]) back in the
    queue with fresh attempts. Returns how many. A failed export that a newer export of the same
    record replaced is not retried (that would send stale content): it is marked superseded
    (exports_supersede_failed), so it no longer counts as failed. A retried export leaves its
    run's failure count; the retry's outcome counts instead. Idempotent: a second call
    finds nothing failed left to retry."""
    from core.tasks import enqueue_send

    with transaction.atomic():
        exports_supersede_failed(destination_id=destination.pk)
        count = exports_requeue_failed(destination_id=destination.pk, since=since, until=until)
    if count:
        enqueue_send(destination.pk)
    return count
