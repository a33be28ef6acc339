"""Reading rows again that did not change writes nothing to them (PostgreSQL).

ON CONFLICT ... DO UPDATE ... WHERE locks every conflicting row before its WHERE decides, and a
lock writes the row's page and a WAL record: an incremental sync of 10,000 records out of
1,000,000 spent 1.7 s locking 70,000 unchanged value rows. Unchanged staged rows now leave the
staging table first, by reading alone, so their stored rows keep no lock (xmax 0)."""
from __future__ import annotations

import pytest
from django.db import connection

from core import models as m
from tests.engine.helpers import sync

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")


def _locked_or_rewritten() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM core_recordproperty WHERE xmax <> 0")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_full_reread_of_unchanged_rows_neither_locks_nor_rewrites_them(shop):
    sync(shop.users_schedule)
    values = m.RecordProperty.objects.count()
    assert values and _locked_or_rewritten() == 0
    changed_at = dict(m.RecordProperty.objects.values_list("pk", "changed_at"))

    run = sync(shop.users_schedule, full=True)  # every row read again, none changed

    assert run.records_updated == 0
    assert _locked_or_rewritten() == 0
    assert m.RecordProperty.objects.count() == values
    assert dict(m.RecordProperty.objects.values_list("pk", "changed_at")) == changed_at
