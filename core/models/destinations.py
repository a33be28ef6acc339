"""Destinations: where records and their group memberships are kept in sync."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from core.choices import DestinationCollection, ObjectState, SyncMode
from core.fields import EncryptedJSONField
from core.models.apps import App
from core.models.base import ConnectorOptionsMixin, TimeStampedModel
from core.models.groups import Group
from core.models.models import RecordModel
from core.models.properties import Property


class Destination(ConnectorOptionsMixin, TimeStampedModel):
    name = models.CharField(max_length=191, unique=True)
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="destinations")
    model = models.ForeignKey(RecordModel, on_delete=models.PROTECT, related_name="destinations")
    secret_options = EncryptedJSONField()
    sync_mode = models.CharField(max_length=10, choices=SyncMode.choices, default=SyncMode.SYNC)
    collection = models.CharField(
        max_length=10, choices=DestinationCollection.choices, default=DestinationCollection.NONE,
        help_text="Which records this destination tracks",
    )
    group = models.ForeignKey(
        Group, on_delete=models.PROTECT, null=True, blank=True, related_name="tracking_destinations",
        help_text="The tracked group, when the collection is one group",
    )
    state = models.CharField(max_length=20, choices=ObjectState.choices, default=ObjectState.READY)
    config_id = models.CharField(max_length=191, blank=True, default="")
    locked_by = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(collection="group") & models.Q(group__isnull=False))
                | (~models.Q(collection="group") & models.Q(group__isnull=True)),
                name="core_destination_group_iff_group_collection",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from connectors import registry

        try:
            connector = registry.get_destination(self.type)
        except registry.UnknownConnector as exc:
            raise ValidationError({"type": str(exc)}) from exc
        if self.app_id and connector.app_key != self.app.type:
            raise ValidationError(
                {"type": f"Destination type {self.type!r} does not belong to a {self.app.type!r} app."}
            )
        if self.collection == DestinationCollection.GROUP and not self.group_id:
            raise ValidationError({"group": "Choose the group this destination tracks."})
        if self.collection != DestinationCollection.GROUP and self.group_id:
            raise ValidationError({"group": "A group is only tracked when the collection is 'One group'."})
        if self.group_id and self.model_id and self.group.model_id != self.model_id:
            raise ValidationError({"group": "The tracked group belongs to another model."})


class DestinationMapping(models.Model):
    """Destination field <- property."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="mappings")
    remote_key = models.CharField(max_length=191, help_text="Destination field")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="destination_mappings")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["destination", "remote_key"], name="core_destmapping_unique_field"),
        ]

    def __str__(self) -> str:
        return f"{self.property.key} → {self.remote_key}"

    def clean(self) -> None:
        if self.destination_id and self.property_id and self.property.model_id != self.destination.model_id:
            raise ValidationError({"property": "The property belongs to another model than the destination."})


class DestinationGroupMembership(models.Model):
    """Group -> the name of the list/tag/segment at the destination."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="group_memberships")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="destination_memberships")
    remote_key = models.CharField(max_length=191, help_text="Name of the list or tag at the destination")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["destination", "group"], name="core_destgroup_unique_group"),
            models.UniqueConstraint(fields=["destination", "remote_key"], name="core_destgroup_unique_remote"),
        ]

    def __str__(self) -> str:
        return f"{self.group} → {self.remote_key}"

    def clean(self) -> None:
        if self.destination_id and self.group_id and self.group.model_id != self.destination.model_id:
            raise ValidationError({"group": "The group belongs to another model than the destination."})
