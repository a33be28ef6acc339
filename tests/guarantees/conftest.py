"""The engine tests' shop world, for the guarantees' tests."""
from tests.engine.conftest import shop  # noqa: F401 - a fixture re-export
