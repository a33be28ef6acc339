"""The import stage's fast per-type value paths give exactly what the general path gives."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from core.choices import PropertyType
from core.engine.imports import stage_value, stager
from core.models import Property

SAMPLES = [
    None, "", " ", "abc", "a\x00b", "x" * 20, "ada@example.com", " ada@example.com ", "not-an-email",
    0, 1, -5, 2**53, 2**53 + 1, 10**30, True, False, 1.5, float("nan"), Decimal("12.50"), Decimal("1E+400"),
    Decimal("NaN"), Decimal("3"), "42", "4.2", "1,234.5",
    dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, 3, 4, 5),
    dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))), dt.date(2026, 1, 2),
    "2026-01-02T03:04:05Z", 1700000000, "yes",
    dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC),
    dt.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
]


@pytest.mark.django_db
@pytest.mark.parametrize("ptype", [t for t, _ in PropertyType.choices])
@pytest.mark.parametrize("unique", [False, True])
def test_fast_paths_equal_the_general_path(ptype, unique):
    prop = Property(pk=1, key="p", type=ptype, unique=unique)
    fast = stager(prop)
    for raw in SAMPLES:
        expected = stage_value(prop, raw)
        got = fast(raw)
        if ptype == PropertyType.FLOAT and isinstance(raw, float) and raw != raw:
            continue  # NaN != NaN
        assert got == expected, (ptype, unique, raw, got, expected)


@pytest.mark.django_db
@pytest.mark.parametrize("ptype", [t for t, _ in PropertyType.choices])
@pytest.mark.parametrize("unique", [False, True])
def test_copy_fragments_equal_the_general_copy_text(ptype, unique):
    """PostgreSQL's staged rows carry their value columns as COPY text; the fast paths write it
    directly and must give what the general COPY writer gives for the same values."""
    from core.engine import db
    from core.engine.imports import copy_fragment

    prop = Property(pk=1, key="p", type=ptype, unique=unique)
    fast = stager(prop, fragments=True)
    plain = stager(prop)
    for raw in SAMPLES + ["tab\there", "back\\slash", "line\nbreak", " tab\t@example.com"]:
        got = fast(raw)
        assert len(got) == 8, (ptype, raw)
        assert got[7] == "\t".join(db.copy_value(v) for v in got[:7]), (ptype, unique, raw, got)
        assert got[7] == copy_fragment(got[:7])
        if ptype == PropertyType.FLOAT and isinstance(raw, float) and raw != raw:
            continue
        # The same values as without fragments (datetimes are objects here, as on PostgreSQL).
        expected = plain(raw)
        assert [db.ts(v) if isinstance(v, dt.datetime) else v for v in got[:7]] == [
            db.ts(v) if isinstance(v, dt.datetime) else v for v in expected
        ], (ptype, unique, raw)
