"""The SQLite shop fixture (Grouparoo-format files) applied and synced end to end: records,
aggregates from a secondary source, a query property with a `{{{ property_id }}}` variable,
groups with relative dates, and a destination with group memberships."""

from __future__ import annotations

import pytest

from core import models as m
from core.config.apply import config_apply
from tests.engine.helpers import sync

pytestmark = pytest.mark.django_db


def _schedule(config_id: str) -> m.Schedule:
    return m.Schedule.objects.get(config_id=config_id)


def test_applied_shop_syncs_to_the_crm(shop_files, fixture_dir):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)

    for schedule in ("users_schedule", "purchases_schedule", "companies_schedule"):
        run = sync(_schedule(schedule))
        assert run.state == "complete", run.error

    rows = {r["id"]: r for r in shop_files.crm_rows()}
    # Dee's country is XX: the users schedule's filter ("does not equal", an old word) skips her.
    assert sorted(rows) == ["1", "2", "3"]
    assert rows["1"]["email"] == "ada@example.com"
    assert rows["1"]["purchase_count"] == 2
    assert rows["1"]["total_spend"] == 40.0
    assert rows["1"]["last_purchase_at"].startswith("2026-01-07")
    assert rows["3"]["purchase_count"] == 0
    assert shop_files.crm_groups() == {
        ("1", "high-value"),
        ("3", "high-value"),
        ("1", "recent"),
        ("2", "recent"),
    }

    # The query property ({{{ user_id }}} in the file, the key userId stored) got its value.
    ada = m.RecordProperty.objects.get(
        property__key="firstPurchaseAt",
        record__properties__property__key="userId",
        record__properties__raw_value="1",
    )
    assert ada.value_datetime.isoformat().startswith("2026-01-05")
    # The filtered count: purchases over 20.
    large = m.RecordProperty.objects.filter(property__key="largePurchases").order_by("record_id")
    assert [r.value_number for r in large][:2] == [1.0, 1.0]
    # The second model has its own records.
    assert m.Record.objects.filter(model__config_id="accounts").count() == 2


def test_reapplying_after_a_sync_changes_nothing(shop_files, fixture_dir):
    directory = fixture_dir("sqlite_shop")
    config_apply(directory=directory)
    sync(_schedule("users_schedule"))
    again = config_apply(directory=directory)
    assert again.plan.empty
    assert not again.applied
