"""A groups table shared by two destinations and written by hand too, end to end through the
engine on each SQL destination (SQLite, PostgreSQL, MariaDB): an export removes only the group
rows its own destination wrote before (its old groups minus its new ones), never a row another
destination, a person or another tool wrote."""

from __future__ import annotations

import pytest

from connectors import registry
from core import models as m
from core.choices import DestinationCollection, RuleOp, SyncMode
from tests.connectors.conftest import DESTINATION_KINDS, make_world
from tests.connectors.servers import scratch_mysql  # noqa: F401 - a fixture
from tests.engine.conftest import make_shop
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db


@pytest.fixture(params=DESTINATION_KINDS)
def world(request, tmp_path):
    w = make_world(request.param, request, tmp_path)
    yield w
    if w.kind != "mysql":
        w.close()


def add_destination(shop, world, name: str, group: m.Group, remote_name: str) -> m.Destination:
    secret_keys = set(registry.get_app(world.kind).secret_option_keys())
    app = m.App.objects.create(
        name=f"{name} app",
        type=world.kind,
        options={k: v for k, v in world.app_options.items() if k not in secret_keys},
        secret_options={k: v for k, v in world.app_options.items() if k in secret_keys},
    )
    dest = m.Destination.objects.create(
        name=name,
        app=app,
        model=shop.model,
        type=f"{world.kind}-export",
        sync_mode=SyncMode.SYNC,
        collection=DestinationCollection.MODEL,
        options={
            "table": "people",
            "primaryKey": "id",
            "groupsTable": "people_groups",
            "groupForeignKey": "person_id",
            "groupColumnName": "group_name",
        },
    )
    for remote, key in [("id", "user_id"), ("email", "email"), ("name", "first_name")]:
        m.DestinationMapping.objects.create(
            destination=dest, remote_key=remote, property=shop.props[key]
        )
    m.DestinationGroupMembership.objects.create(
        destination=dest, group=group, remote_key=remote_name
    )
    return dest


def test_each_destination_removes_only_the_group_rows_it_wrote(world, tmp_path):
    (tmp_path / "shop").mkdir()
    shop = make_shop(tmp_path / "shop")
    shop.destination.delete()  # the shop's own CRM is not part of this
    low = m.Group.objects.create(model=shop.model, name="Low value")
    m.GroupRule.objects.create(group=low, property=shop.props["ltv"], op=RuleOp.LT, match="500")
    first = add_destination(shop, world, "marketing", shop.high_value, "vip")
    second = add_destination(shop, world, "support", low, "low")
    world.run(
        "INSERT INTO people_groups (person_id, group_name) VALUES (1, 'manual'), (4, 'manual')"
    )

    def groups() -> set[tuple[int, str]]:
        return {
            (int(k), g) for k, g in world.run("SELECT person_id, group_name FROM people_groups")
        }

    run = sync(shop.users_schedule)
    assert run.exports_failed == 0 and first.exports.count() == second.exports.count() == 4
    hand = {(1, "manual"), (4, "manual")}
    assert groups() == hand | {(1, "vip"), (3, "vip"), (2, "low"), (4, "low")}

    # Ada leaves "High value" for "Low value": the first destination removes its own row only,
    # the second adds its own.
    shop.src_sql("UPDATE users SET ltv = 10, updated_at = '2026-02-01' WHERE id = 1")
    sync(shop.users_schedule)
    ada = first.exports.filter(
        record__properties__unique_value="1", record__properties__property=shop.props["user_id"]
    )
    assert (ada.first().old_groups, ada.first().new_groups) == (["vip"], [])
    assert groups() == hand | {(1, "low"), (3, "vip"), (2, "low"), (4, "low")}

    # Dee is deleted from the source: both destinations delete her row (sync mode) and their
    # own group rows for her; the row written by hand stays.
    m.Schedule.objects.filter(pk=shop.users_schedule.pk).update(confirm_records=True)
    shop.src_sql("DELETE FROM users WHERE id = 4")
    run = sync(m.Schedule.objects.get(pk=shop.users_schedule.pk), full=True)
    assert run.records_deleted == 1 and run.exports_failed == 0
    assert sorted(r[0] for r in world.run("SELECT id FROM people")) == [1, 2, 3]
    assert groups() == hand | {(1, "low"), (3, "vip"), (2, "low")}
