"""Fixtures for the security tests. The admin tests reuse the admin suite's world (one object of
every domain model, on fake connectors) rather than building a second one."""
from __future__ import annotations

from tests.admin.conftest import fake_connectors, world  # noqa: F401 - fixtures
from tests.connectors.servers import scratch_mysql  # noqa: F401 - a fixture
