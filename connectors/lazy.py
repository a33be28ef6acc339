"""Driver packages imported when a connector first uses them, not when the registry loads.

Every process start loads every built-in connector (`manage.py` commands, queue workers, a run's
sender process); the DuckDB and MySQL drivers were a tenth of a second of that start, for
installations that mostly use neither."""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for a module: the first attribute read imports it (then Python's cache serves)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
