"""App services."""

from __future__ import annotations

from connectors import registry
from core.models import App


def app_test_connection(*, app: App) -> str:
    """Connect with the app's options and run a trivial request. Returns the connector's message;
    raises connectors.base.ConnectorError with a user-safe message. Changes nothing."""
    cls = registry.get_app(app.type)
    return cls(app.connector_options()).test_connection()
