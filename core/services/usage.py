"""What uses a Property, a Group or a Source, and refusing to delete one that is in use.

Deleting a property a group rule or a mapping uses would, through the database's cascades,
silently drop that rule or mapping and change what the group holds or what a destination
receives. Grouparoo refused such deletes (its models' `beforeDestroy` hooks); so do we, in one
place that the admin, the API and `apply` all call:

- `users_of(obj)` lists what uses `obj`, each `Usage` naming the object to change or delete to
  end the use (a group, destination, source or property) and how it uses `obj`;
- `refuse_if_used(obj)` raises `InUse` with that list;
- `delete_unless_used(obj=...)` deletes `obj` when nothing uses it, atomically.

Users, by kind of object:

- Property: group rules, destination mappings (the destination's key among them), source
  mappings (a source identifying its rows by the property). Its own filters and values are not
  users: they go with it. (Filters name source columns, never properties.)
- Group: destinations tracking it, destinations sending it as a list or tag.
- Source: its properties other than its own key (delete them first, as in Grouparoo), and
  whatever uses its own key property outside the source. The key property itself goes with the
  source (a `Usage` with `along=True`), as do its mappings and schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from django.db import models, transaction

from core.models import (
    Destination,
    DestinationGroupMembership,
    DestinationMapping,
    Group,
    GroupRule,
    Property,
    Source,
    SourceMapping,
)

# The classes whose deletion is checked; others have no users that a delete would drop.
CHECKED = (Property, Group, Source)


@dataclass(frozen=True)
class Usage:
    """One use of an object.

    kind: what the use is ("group rule", "destination mapping", "destination key", ...).
    owner: the object to change or delete to end the use; its admin page is where to go.
    detail: how exactly, in words ("rule “vip equals true”", "field “email”").
    blocks: the database itself refuses the delete while the use lasts (a protected reference),
      rather than silently deleting the using row with it.
    along: not a refusal: the owner is deleted together with the object (a source's own key).
    """

    kind: str
    owner: models.Model
    detail: str
    blocks: bool = False
    along: bool = False

    def __str__(self) -> str:
        return f"{self.owner._meta.verbose_name} “{self.owner}” ({self.detail})"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form the API answers with (the owner's resource URL under /api/v1/)."""
        from django.urls import NoReverseMatch, reverse

        name = self.owner._meta.model_name
        try:
            url = reverse(f"api:{name}-detail", args=[self.owner.pk])
        except NoReverseMatch:
            url = None
        return {
            "kind": self.kind,
            "object": name,
            "id": self.owner.pk,
            "name": str(self.owner),
            "detail": self.detail,
            "url": url,
        }


class InUse(Exception):
    """Deleting `obj` was refused: `users` still use it."""

    def __init__(self, obj: models.Model, users: list[Usage]) -> None:
        self.obj = obj
        self.users = users
        super().__init__(in_use_message(obj, users))


def in_use_message(obj: models.Model, users: list[Usage], limit: int = 10) -> str:
    listed = "; ".join(str(u) for u in users[:limit])
    more = f"; and {len(users) - limit} more" if len(users) > limit else ""
    return (
        f"Cannot delete {obj._meta.verbose_name} “{obj}”: it is used by {listed}{more}. "
        f"Change or delete those first."
    )


def users_of(obj: models.Model) -> list[Usage]:
    """What uses `obj` (a Property, Group or Source; nothing for other objects), including the
    `along` entries of a source's own key. Reads only."""
    if isinstance(obj, Property):
        return _property_users(obj)
    if isinstance(obj, Group):
        return _group_users(obj)
    if isinstance(obj, Source):
        return _source_users(obj)
    return []


def refusals(obj: models.Model, *, ignore: Callable[[Usage], bool] | None = None) -> list[Usage]:
    """The uses that forbid deleting `obj` (those not `along`, nor ignored)."""
    return [u for u in users_of(obj) if not u.along and not (ignore and ignore(u))]


def refuse_if_used(obj: models.Model, *, ignore: Callable[[Usage], bool] | None = None) -> None:
    """Raise InUse when something uses `obj`. `ignore(usage)` may excuse a use (apply excuses
    those its own changes end). Reads only."""
    users = refusals(obj, ignore=ignore)
    if users:
        raise InUse(obj, users)


def delete_unless_used(*, obj: models.Model, ignore: Callable[[Usage], bool] | None = None) -> None:
    """Delete `obj` unless something uses it (InUse, nothing deleted). A source takes its own
    key property with it. Any other object is simply deleted.

    Atomic. The row is locked first (SELECT ... FOR UPDATE), so a rule or mapping being added to
    it concurrently waits for this delete and then fails on its missing reference instead of
    being cascaded away unseen. Idempotent: an object already deleted is a no-op.
    """
    model = type(obj)
    with transaction.atomic():
        locked = model._default_manager.select_for_update().filter(pk=obj.pk).first()
        if locked is None:
            return
        refuse_if_used(locked, ignore=ignore)
        if isinstance(locked, Source):
            for prop in source_key_properties(locked):
                prop.delete()
        locked.delete()


def source_key_properties(source: Source) -> list[Property]:
    """The source's own key: its properties that its own mappings name (the model's primary key
    for a primary source). They identify the source's rows and go when it goes."""
    return list(
        Property.objects.filter(source=source, source_mappings__source=source)
        .distinct()
        .order_by("key")
    )


# --- users, by kind of object ------------------------------------------------------------


def _property_users(prop: Property, *, within: Source | None = None) -> list[Usage]:
    """Uses of `prop`; those by `within` (a source being deleted with its key) left out."""
    users: list[Usage] = []
    rules = GroupRule.objects.filter(property=prop).select_related("group", "property")
    for rule in rules.order_by("group__name", "position", "pk"):
        users.append(Usage("group rule", rule.group, f"rule “{rule}”"))
    mappings = DestinationMapping.objects.filter(property=prop).select_related("destination")
    for row in mappings.order_by("destination__name", "remote_key"):
        destination = row.destination
        key = (destination.options or {}).get("primaryKey")
        if key and row.remote_key == key:
            detail = f"its key field “{row.remote_key}” ← {prop.key}"
            users.append(Usage("destination key", destination, detail))
        else:
            users.append(
                Usage("destination mapping", destination, f"field “{row.remote_key}” ← {prop.key}")
            )
    source_rows = SourceMapping.objects.filter(property=prop).select_related("source")
    if within is not None:
        source_rows = source_rows.exclude(source=within)
    for row in source_rows.order_by("source__name", "remote_key"):
        detail = f"identifies its rows: column “{row.remote_key}” → {prop.key}"
        users.append(Usage("source mapping", row.source, detail))
    return users


def _group_users(group: Group) -> list[Usage]:
    users: list[Usage] = [
        Usage("tracking destination", destination, "tracks this group", blocks=True)
        for destination in Destination.objects.filter(group=group).order_by("name")
    ]
    rows = DestinationGroupMembership.objects.filter(group=group).select_related("destination")
    for row in rows.order_by("destination__name", "remote_key"):
        detail = f"sends it as the list or tag “{row.remote_key}”"
        users.append(Usage("destination group membership", row.destination, detail))
    return users


def _source_users(source: Source) -> list[Usage]:
    keys = {p.pk: p for p in source_key_properties(source)}
    users: list[Usage] = []
    for prop in Property.objects.filter(source=source).order_by("key"):
        if prop.pk not in keys:
            users.append(
                Usage("property", prop, "computed by this source; delete it first", blocks=True)
            )
            continue
        users.append(
            Usage(
                "key property", prop, "the source's key; deleted with it", blocks=True, along=True
            )
        )
        for usage in _property_users(prop, within=source):
            users.append(replace(usage, detail=f"{usage.detail}, through this source's key"))
    return users
