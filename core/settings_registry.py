"""Runtime settings editable in the admin (Setting rows), with their defaults and bounds.

`setting_value(key)` reads the row if there is one, else the default here. The data migration
creates a row per default so the admin lists them all.

Every number setting has bounds (a minimum, a maximum, whole or not). They are checked where a
value comes in — the admin's Setting form, the API, `manage.py validate`/`apply` — with
`setting_problem`, and again where the engine reads one: `setting_number` clamps a value outside
the bounds to the nearest bound and falls back to the default for anything that is not a finite
number (a row written straight to the database), so no value can make the engine break its
promises (a zero lease letting two workers hold one run, a retry delay that overflows).

Tests shorten leases and retry delays to keep fault tests fast: the Django setting
`GROUPAROO_SETTING_MINIMUMS` ({key: minimum}) lowers a minimum. tests/settings.py sets it;
deployments do not.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from core.choices import SettingType
from core.values import DEFAULT_COUNTRY, country_problem

logger = logging.getLogger(__name__)

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class SettingDefault:
    key: str
    default: str
    type: str
    title: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    unit: str = ""
    # A text setting's own check: value -> why it is not acceptable, or None.
    check: Callable[[str], str | None] | None = None


# Bounds, and why: a lease must outlast a batch and a destination's send of one batch (a shorter
# one lets a second worker take a run or exports still being worked; a webhook batch takes at
# most 180 s: requests start within 120 s and each lasts at most 60 s); a retry delay under a second retries in a hot loop; 20 attempts
# of doubling delays already span far more than any outage (30 s × 2^18 is about 90 days),
# and with at most 20 attempts and a base of at most one day the largest delay the engine
# computes (base × 2^19) stays a valid date.
DEFAULTS: tuple[SettingDefault, ...] = (
    SettingDefault(
        "exports-max-attempts", "5", SettingType.NUMBER, "Export attempts",
        "How many times a failing export is tried before it is marked failed.",
        minimum=1, maximum=20, integer=True,
    ),
    SettingDefault(
        "exports-retry-base-seconds", "30", SettingType.NUMBER, "Export retry delay",
        "Delay before the first retry of a failed export; each further retry doubles it.",
        minimum=1, maximum=DAY_SECONDS, unit="seconds",
    ),
    SettingDefault(
        "runs-lease-seconds", "300", SettingType.NUMBER, "Run lease",
        "A running run whose worker has not reported for this long is taken over by another worker.",
        minimum=180, maximum=DAY_SECONDS, unit="seconds",
    ),
    SettingDefault(
        "groups-relative-recompute-minutes", "60", SettingType.NUMBER, "Relative-date group recompute",
        "How often groups with 'in the last / in the next' rules are recomputed.",
        minimum=1, maximum=7 * 24 * 60, integer=True, unit="minutes",
    ),
    SettingDefault(
        "records-default-country-code", DEFAULT_COUNTRY, SettingType.STRING, "Default country code",
        "The country (two letters: US, GB, FR...) in which phone numbers written without an "
        "international prefix (+) are read. Every phone number is stored and exported in "
        "international format (+1 412 888 9999); one that is not valid is flagged invalid.",
        check=country_problem,
    ),
)

_BY_KEY = {d.key: d for d in DEFAULTS}


def setting_default(key: str, plugin: str = "core") -> SettingDefault | None:
    """The registered setting `plugin.key`, or None when nothing here reads it."""
    return _BY_KEY.get(key) if plugin == "core" else None


def setting_bounds(key: str) -> tuple[float, float]:
    """(minimum, maximum) of a number setting, with the test override of the minimum applied."""
    from django.conf import settings

    d = _BY_KEY[key]
    overrides = getattr(settings, "GROUPAROO_SETTING_MINIMUMS", None) or {}
    return float(overrides.get(key, d.minimum)), float(d.maximum)


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def setting_requirement(key: str) -> str:
    """What a value of the number setting must be, in words: "a whole number from 1 to 20"."""
    d = _BY_KEY[key]
    low, high = setting_bounds(key)
    unit = f" ({d.unit})" if d.unit else ""
    return f"a {'whole ' if d.integer else ''}number from {_fmt(low)} to {_fmt(high)}{unit}"


# What a person types as a number: an optional sign, ASCII digits, an optional fraction and an
# optional exponent. Python's float() also takes `1_000`, full-width digits (`１８０`),
# surrounding blanks, `nan` and `inf`; none of those is stored.
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z", re.ASCII)

EMPTY = "must not be empty"


def plain_number(value: str) -> float | None:
    """`value` as a finite number when it is written as a plain ASCII decimal number, else None."""
    if not isinstance(value, str) or not PLAIN_NUMBER.match(value):
        return None
    return _finite(value)


def _finite(value: str) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def setting_problem(key: str, value: str, plugin: str = "core") -> str | None:
    """Why `value` is not acceptable for the setting `plugin.key` ("must be a whole number from
    1 to 20, not '0'"), or None when it is. Empty is refused for every setting (as config files
    do); a number must be written plainly (ASCII digits, an optional sign, fraction and
    exponent), so what is stored is what the engine reads. Settings nothing here reads are not
    checked further. Pure."""
    if value == "":
        return EMPTY
    d = setting_default(key, plugin)
    if d is None:
        return None
    if d.type == SettingType.BOOLEAN and value not in ("true", "false"):
        return f"must be true or false, not {value!r}"
    if d.check is not None:
        return d.check(value)
    if d.type != SettingType.NUMBER:
        return None
    number = plain_number(value)
    low, high = setting_bounds(key)
    if number is None or not low <= number <= high or (d.integer and not number.is_integer()):
        return f"must be {setting_requirement(key)}, not {value!r}"
    return None


def setting_value(key: str, plugin: str = "core") -> str:
    from core.models import Setting

    row = Setting.objects.filter(plugin=plugin, key=key).values_list("value", flat=True).first()
    if row is not None and row != "":
        return row
    return _BY_KEY[key].default


@functools.lru_cache(maxsize=64)
def _warn_once(key: str, raw: str, used: float) -> None:
    logger.warning("setting core.%s: %r is outside its bounds or not a number; using %s", key, raw, used)


def setting_number(key: str) -> float:
    """The number setting `key` as the engine must use it: within its bounds (a value outside is
    clamped to the nearest bound), whole when the setting is, and the default when the stored
    value is not a finite number. A replaced value is logged once per distinct value."""
    d = _BY_KEY[key]
    raw = setting_value(key)
    number = _finite(raw)
    if number is None:
        number = float(d.default)
    low, high = setting_bounds(key)
    used = min(max(number, low), high)
    if d.integer:
        used = float(math.floor(used))
    if used != _finite(raw):
        _warn_once(key, raw, used)
    return used
