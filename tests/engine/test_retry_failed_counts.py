"""A retried failed export leaves its run's failure count: the retry's outcome counts instead,
so a delivered retry clears "complete, N exports failed" and a failing one counts once."""

from __future__ import annotations

import sqlite3

import pytest

from core import models as m
from core.engine.delivery import exports_drain
from core.services.exports import exports_retry_failed
from tests.engine.helpers import SEND_WAIT_SECONDS, sync

pytestmark = pytest.mark.django_db(transaction=True)

CRM = (
    "CREATE TABLE crm (id TEXT PRIMARY KEY, email TEXT, first_name TEXT {check}, ltv REAL, "
    "purchase_count INTEGER, total_spend REAL, last_purchase_at TEXT)"
)


def _crm_table(path, *, check: bool) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE crm")
        conn.execute(CRM.format(check="CHECK (first_name <> 'Bob')" if check else ""))


def _drain(destination) -> None:
    exports_drain(destination_ids=[destination.pk], wait_seconds=SEND_WAIT_SECONDS)


@pytest.fixture
def failed_run(shop):
    m.Setting.objects.update_or_create(
        plugin="core", key="exports-max-attempts", defaults={"value": "1"}
    )
    _crm_table(shop.dst, check=True)
    run = sync(shop.users_schedule)
    assert (run.exports_failed, run.outcome) == (1, "complete, 1 export failed")
    return run


def test_a_delivered_retry_clears_the_runs_failure(shop, failed_run):
    _crm_table(shop.dst, check=False)
    assert exports_retry_failed(destination=shop.destination) == 1
    _drain(shop.destination)
    failed_run.refresh_from_db()
    assert failed_run.exports_failed == 0
    assert failed_run.outcome == "complete"
    assert not m.Export.objects.filter(state="failed").exists()


def test_a_retry_that_fails_again_counts_once(shop, failed_run):
    assert exports_retry_failed(destination=shop.destination) == 1
    _drain(shop.destination)
    failed_run.refresh_from_db()
    assert failed_run.exports_failed == 1
    assert failed_run.outcome == "complete, 1 export failed"
