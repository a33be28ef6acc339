"""Test settings: the real settings with fixed test keys. DATABASE_URL still picks the database."""
import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault(
    "FIELD_ENCRYPTION_KEYS",
    "Nf1Fv0k2k3-mXtQ5y0sNn2R3A1u8jJ6cYVbq0dE7pWg=,oLq9Tn0aQ2wK6hX3cV8bN1mZ4yR7uE5iO0pA9sD2fG8=",
)
os.environ.setdefault("Q_SYNC", "true")

from grouparoo_site.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
GROUPAROO_BATCH_SIZE = 50
GROUPAROO_EXPORT_BATCH_SIZE = 50
# Fault and retry tests use leases of seconds and retry delays of hundredths of a second; the
# bounds deployments get are in core/settings_registry.py (tests of the bounds reset this).
GROUPAROO_SETTING_MINIMUMS = {"runs-lease-seconds": 1, "exports-retry-base-seconds": 0.01}
