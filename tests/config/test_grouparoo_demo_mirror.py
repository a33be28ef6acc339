"""Grouparoo's own demo and example configs, read straight from a local Grouparoo mirror.

When this machine has the Grouparoo repositories as bare git mirrors (the monorepo at v0.9.0,
whose plugin @grouparoo/demo holds the demo's config files, and grouparoo/app-example-config),
their config files are read with `git show` (never copied into this project), assembled as the
demo assembles them, validated, applied unchanged and synced over generated data; the records,
groups and destination rows must be what Grouparoo's semantics give. SaaS destinations
(Mailchimp, HubSpot, Salesforce, Pipedrive) are left aside. Without the mirrors the tests skip:
tests/config/test_grouparoo_demo.py is the main test, on this project's own fixture.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from core import models as m
from core.config.apply import config_apply
from core.config.validate import config_validate
from tests.config.test_grouparoo_demo import (
    app_dir,  # noqa: F401 - a fixture
    assert_groups,
    assert_logger,
    assert_records,
    demo_db,  # noqa: F401 - a fixture
    find_log,
    run_pending,
    scratch_mysql,  # noqa: F401 - a fixture
)
from tests.engine.helpers import sync
from tests.grouparoo_demo import data, expected
from tests.grouparoo_demo.assemble import app_options, assemble, read_git
from tests.grouparoo_demo.databases import DemoDatabase

pytestmark = pytest.mark.django_db

MIRRORS = Path("/work/.mirror")
MONOREPO = MIRRORS / "grouparoo+grouparoo" / "repo"
APP_EXAMPLE = MIRRORS / "grouparoo+app-example-config" / "repo"
DEMO_CONFIG = "plugins/@grouparoo/demo/config/"
SAAS = ("mailchimp", "hubspot", "salesforce", "pipedrive")


def _mirror(path: Path) -> Path:
    if not (path / "HEAD").exists():
        pytest.skip(f"no Grouparoo mirror at {path}")
    return path


def _validated(config_dir: Path) -> None:
    checked = config_validate(directory=config_dir)
    assert checked.ok, [str(p) for p in checked.problems.errors]


def test_grouparoo_demo_config_from_the_mirror_applies_and_syncs(demo_db, app_dir):  # noqa: F811
    files = read_git(_mirror(MONOREPO), "v0.9.0", DEMO_CONFIG)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    demo_db.write(data.generate(now=now))
    # The demo writes its config into the application's config directory; the logger's file
    # ("log.log") is relative to the application.
    config_dir = assemble(
        files,
        app_dir / "config",
        db=demo_db.kind,
        options=app_options(demo_db.kind, demo_db.connection),
    )
    _validated(config_dir)
    assert config_apply(directory=config_dir).applied
    assert config_apply(directory=config_dir).plan.empty

    for schedule in m.Schedule.objects.all():
        run = sync(schedule)
        assert run.state == "complete", (schedule.config_id, run.error)
        run_pending()
    exp = expected.compute(config_dir, demo_db.read(), query=demo_db.query, now=now)
    assert_records(exp)
    assert_groups(exp)
    assert_logger(exp, find_log(config_dir, "log.log"))


def test_grouparoo_app_example_config_from_the_mirror_applies_and_syncs(app_dir):  # noqa: F811
    files = read_git(_mirror(APP_EXAMPLE), "HEAD", "config/")
    app = app_dir  # the application: config/ and data/source.sqlite beside it
    config_dir = app / "config"
    for rel, text in files.items():
        if rel.endswith(".json") and not _is_saas(text):
            (config_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (config_dir / rel).write_text(text)
    (app / "data").mkdir()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    data.write_app_example_sqlite(str(app / "data" / "source.sqlite"), data.generate(now=now))

    _validated(config_dir)
    assert config_apply(directory=config_dir).applied
    assert config_apply(directory=config_dir).plan.empty
    for schedule in m.Schedule.objects.order_by("config_id").reverse():  # users, then purchases
        run = sync(schedule)
        assert run.state == "complete", (schedule.config_id, run.error)
        run_pending()

    db = DemoDatabase("sqlite", {"file": str(app / "data" / "source.sqlite")})
    exp = expected.compute(config_dir, db.read(("users", "purchases")), query=db.query, now=now)
    assert_records(exp)
    assert_groups(exp)
    assert exp.groups["high_value_spanish_speakers"]  # the data reaches the group


def _is_saas(text: str) -> bool:
    content = json.loads(text)
    objects = content if isinstance(content, list) else [content]
    return any(str(o.get("type", "")).split("-")[0] in SAAS for o in objects)
