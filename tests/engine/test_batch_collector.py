"""During a run the garbage collector runs young collections less often and full ones rarely
(core.engine.runs.batch_collector); afterwards the process has its own thresholds back, even
when the run fails."""
from __future__ import annotations

import gc

import pytest

from core.engine import runs as engine_runs
from tests.engine.conftest import make_shop
from tests.engine.helpers import sync


def test_thresholds_are_set_for_the_block_and_restored_after_an_error():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError):
        with engine_runs.batch_collector():
            assert gc.get_threshold() == engine_runs.BATCH_GC_THRESHOLD
            raise RuntimeError("a failing batch")
    assert gc.get_threshold() == before


@pytest.mark.django_db
def test_a_run_works_with_the_batch_thresholds(tmp_path, monkeypatch):
    from tests.engine.conftest import PURCHASES, USERS

    seen = []
    original = engine_runs._run_work

    def work(*args, **kwargs):
        seen.append(gc.get_threshold())
        return original(*args, **kwargs)

    monkeypatch.setattr(engine_runs, "_run_work", work)
    before = gc.get_threshold()
    shop = make_shop(tmp_path, users=USERS, purchases=PURCHASES)
    sync(shop.users_schedule)
    assert seen and set(seen) == {engine_runs.BATCH_GC_THRESHOLD}
    assert gc.get_threshold() == before
