"""Record services: merging two records that turn out to be one customer.

Merge policy (deterministic, documented in the admin help and DESIGN.md):
  - the older record (earlier created_at, then lower id) survives;
  - per property, the newest non-null value wins (by changed_at); the loser's values for
    properties the survivor lacks move over;
  - the loser's group memberships and exports are removed with it; the survivor's groups and
    exports are recomputed by the batch that triggered the merge (its properties changed);
  - every merge is logged (logger "core.merge") with both ids and the reason.
"""

from __future__ import annotations

import logging

from django.db import transaction

from core.engine import db
from core.models import Record

logger = logging.getLogger("core.merge")


def records_merge(*, record_ids: tuple[int, int], reason: str) -> int:
    """Merge two records into the older one and return the survivor's id.

    Runs inside the caller's transaction (a batch); a few statements per merge. Idempotent in
    effect: merging a record with itself, or with a record already merged away, is a no-op that
    returns the remaining one.
    """
    a, b = record_ids
    if a == b:
        return a
    with transaction.atomic():
        rows = list(
            Record.objects.filter(pk__in=[a, b])
            .order_by("created_at", "pk")
            .values_list("pk", flat=True)
        )
        if len(rows) < 2:
            return rows[0] if rows else a
        survivor, loser = rows
        # Properties the loser holds with a newer non-null value than the survivor's: take them.
        db.execute(
            "DELETE FROM core_recordproperty WHERE record_id = %s AND property_id IN ("
            "SELECT l.property_id FROM core_recordproperty l WHERE l.record_id = %s AND l.raw_value IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM core_recordproperty s2 WHERE s2.record_id = %s "
            "AND s2.property_id = l.property_id AND s2.raw_value IS NOT NULL AND s2.changed_at >= l.changed_at))",
            [survivor, loser, survivor],
        )
        db.execute(
            "UPDATE core_recordproperty SET record_id = %s WHERE record_id = %s AND property_id NOT IN ("
            "SELECT property_id FROM core_recordproperty WHERE record_id = %s)",
            [survivor, loser, survivor],
        )
        Record.objects.filter(pk=loser).delete()
        logger.info("merged record %s into record %s (%s)", loser, survivor, reason)
        return survivor
