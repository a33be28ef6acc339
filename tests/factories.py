"""Plain factory functions that build tiny worlds in code (healthchecks style, no fixtures files).

Every factory takes keyword overrides and saves through the ORM without full_clean, so tests can
also build invalid rows on purpose.
"""
from __future__ import annotations

import itertools
from typing import Any

from core import models as m
from core.choices import PropertyType

_seq = itertools.count(1)


def _n() -> int:
    return next(_seq)


def make_model(**kw: Any) -> m.RecordModel:
    kw.setdefault("name", f"model{_n()}")
    return m.RecordModel.objects.create(**kw)


def make_app(**kw: Any) -> m.App:
    kw.setdefault("name", f"app{_n()}")
    kw.setdefault("type", "sqlite")
    kw.setdefault("options", {"path": ":memory:"})
    return m.App.objects.create(**kw)


def make_source(**kw: Any) -> m.Source:
    kw.setdefault("name", f"source{_n()}")
    if "app" not in kw:
        kw["app"] = make_app()
    if "model" not in kw:
        kw["model"] = make_model()
    kw.setdefault("type", f"{kw['app'].type}-table")
    kw.setdefault("options", {"table": "users"})
    return m.Source.objects.create(**kw)


def make_property(**kw: Any) -> m.Property:
    if "source" not in kw:
        kw["source"] = make_source(model=kw["model"]) if "model" in kw else make_source()
    kw.setdefault("model", kw["source"].model)
    kw.setdefault("key", f"prop{_n()}")
    kw.setdefault("type", PropertyType.STRING)
    kw.setdefault("options", {"column": kw["key"], "aggregationMethod": "exact"})
    return m.Property.objects.create(**kw)


def make_group(**kw: Any) -> m.Group:
    if "model" not in kw:
        kw["model"] = make_model()
    kw.setdefault("name", f"group{_n()}")
    return m.Group.objects.create(**kw)


def make_destination(**kw: Any) -> m.Destination:
    kw.setdefault("name", f"destination{_n()}")
    if "app" not in kw:
        kw["app"] = make_app()
    if "model" not in kw:
        kw["model"] = make_model()
    kw.setdefault("type", f"{kw['app'].type}-export")
    kw.setdefault("options", {"table": "out", "primaryKey": "id"})
    return m.Destination.objects.create(**kw)


def make_record(*, model: m.RecordModel | None = None, **kw: Any) -> m.Record:
    return m.Record.objects.create(model=model or make_model(), **kw)
