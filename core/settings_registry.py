"""Runtime settings editable in the admin (Setting rows), with their defaults.

`setting_value(key)` reads the row if there is one, else the default here. The data migration
creates a row per default so the admin lists them all.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.choices import SettingType


@dataclass(frozen=True)
class SettingDefault:
    key: str
    default: str
    type: str
    title: str
    description: str


DEFAULTS: tuple[SettingDefault, ...] = (
    SettingDefault(
        "exports-max-attempts", "5", SettingType.NUMBER, "Export attempts",
        "How many times a failing export is tried before it is marked failed.",
    ),
    SettingDefault(
        "exports-retry-base-seconds", "30", SettingType.NUMBER, "Export retry delay",
        "Delay before the first retry of a failed export; each further retry doubles it.",
    ),
    SettingDefault(
        "runs-lease-seconds", "300", SettingType.NUMBER, "Run lease",
        "A running run whose worker has not reported for this long is taken over by another worker.",
    ),
    SettingDefault(
        "groups-relative-recompute-minutes", "60", SettingType.NUMBER, "Relative-date group recompute",
        "How often groups with 'in the last / in the next' rules are recomputed.",
    ),
)

_BY_KEY = {d.key: d for d in DEFAULTS}


def setting_value(key: str, plugin: str = "core") -> str:
    from core.models import Setting

    row = Setting.objects.filter(plugin=plugin, key=key).values_list("value", flat=True).first()
    if row is not None and row != "":
        return row
    return _BY_KEY[key].default


def setting_number(key: str) -> float:
    return float(setting_value(key))
