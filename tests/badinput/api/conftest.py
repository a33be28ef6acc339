"""The API tests' fixtures (the shop world, keys, recording clients and the autouse secret scan)."""

from tests.api.conftest import (  # noqa: F401 - fixtures
    anon,
    api_connectors,
    client_for,
    full,
    keys,
    no_secret_in_any_response,
    response_log,
    world,
)
