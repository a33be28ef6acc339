"""Registers the built-in connectors (an explicit list) and third-party ones (entry points)."""
from __future__ import annotations

from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"
    verbose_name = "Connectors"

    def ready(self) -> None:
        from connectors import registry

        registry.load_builtins()
        registry.load_entry_points()
