"""Abstract bases shared by the domain models."""
from __future__ import annotations

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ConnectorOptionsMixin(models.Model):
    """Connector type plus its options: plain `options` and encrypted `secret_options`.

    Which options are secret is declared by the connector (connectors.base.Option type "secret").
    `connector_options()` merges both, resolving `env:NAME` secrets, for handing to a connector.
    """

    type = models.CharField(max_length=100, help_text="Connector type key")
    options = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True

    def connector_options(self) -> dict:
        from core import crypto

        merged = dict(self.options or {})
        merged.update(crypto.resolve_secrets(dict(getattr(self, "secret_options", {}) or {})))
        return merged
