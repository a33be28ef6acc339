"""What a run writes for, held for the length of each of its batches.

A run loads its plan once (the source, the properties it writes, the model's groups, the
destinations it exports to) and writes rows that point at those objects in every batch. The hot
tables have no foreign key constraints (for write speed: migrations 0005 and 0009), so nothing
in the database stops a configuration change (`apply`, the admin, the API) from deleting a
property between two
batches, after which the run would go on writing values for a property that no longer exists.

So each batch first takes a share lock on those rows (PostgreSQL; on SQLite writers are one at a
time anyway) and checks they are all still there: a deletion waits for the batch in hand to
commit, and the batch after it sees the object gone and the run stops cleanly, its committed
batches kept, its watermark not moved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Model

from core.engine import db


class ConfigChanged(Exception):
    """An object the run writes for was removed while the run was going."""


# (table, what the message calls it) for each kind of object a run writes for.
_KINDS = (
    ("core_source", "source"),
    ("core_property", "property"),
    ("core_group", "group"),
    ("core_destination", "destination"),
)


@dataclass(frozen=True)
class RunScope:
    source_ids: tuple[int, ...] = ()
    property_ids: tuple[int, ...] = ()
    group_ids: tuple[int, ...] = ()
    destination_ids: tuple[int, ...] = ()
    names: tuple[tuple[int, str], ...] = ()  # (id, name) of every object, for the message

    @classmethod
    def of(
        cls,
        *,
        sources: Iterable[Model] = (),
        properties: Iterable[Model] = (),
        groups: Iterable[Model] = (),
        destinations: Iterable[Model] = (),
    ) -> RunScope:
        kinds = [list(sources), list(properties), list(groups), list(destinations)]

        def ids(objects: list[Model]) -> tuple[int, ...]:
            return tuple(sorted({int(o.pk) for o in objects}))  # one order: no lock-order deadlocks

        names = tuple((int(o.pk), str(o)) for objects in kinds for o in objects)
        return cls(*(ids(objects) for objects in kinds), names=names)

    def hold(self) -> None:
        """Inside a batch's transaction: share-lock every object of the scope until the batch
        commits; raise ConfigChanged naming the first kind of object already gone."""
        lock = " FOR SHARE" if db.is_postgres() else ""
        for (table, what), wanted in zip(_KINDS, self._ids(), strict=True):
            if not wanted:
                continue
            cond, params = db.in_list("id", list(wanted))
            found = {row[0] for row in db.fetchall(f"SELECT id FROM {table} WHERE {cond}{lock}", params)}
            gone = sorted(set(wanted) - found)
            if gone:
                named = dict(self.names)
                shown = ", ".join(f'"{named[g]}"' if g in named else str(g) for g in gone)
                raise ConfigChanged(
                    f"the configuration changed during the run: {what} {shown} was removed; "
                    "the committed batches stay and the next run reads with the new configuration"
                )

    def _ids(self) -> tuple[tuple[int, ...], ...]:
        return (self.source_ids, self.property_ids, self.group_ids, self.destination_ids)
