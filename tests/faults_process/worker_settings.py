"""Settings of the worker processes these tests start: the test settings with production-like
batch sizes (tests.settings uses 50, which would make a 20,000-record run 400 batches)."""
import os

from tests.settings import *  # noqa: F403

GROUPAROO_BATCH_SIZE = int(os.environ.get("FAULT_BATCH_SIZE", "500"))
GROUPAROO_EXPORT_BATCH_SIZE = int(os.environ.get("FAULT_EXPORT_BATCH_SIZE", "500"))
