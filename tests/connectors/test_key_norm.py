"""key_norm's fast paths (ints and their text) give exactly what its general form gives."""

from __future__ import annotations

from decimal import Decimal

from connectors.sql import key_norm


def general(value):
    """key_norm without its fast paths (the definition they must agree with)."""
    from connectors.sql import _CANONICAL_NUMBER

    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        return format(Decimal(str(value)).normalize(), "f")
    if isinstance(value, str) and _CANONICAL_NUMBER.match(value):
        return format(Decimal(value).normalize(), "f")
    return value


def test_fast_paths_agree_with_the_general_form():
    ints = [0, 1, -1, 5, 10, 100, 1200, -3000, 10**18, -(10**30), 2**63 - 1, *range(0, 5000, 7)]
    texts = [str(i) for i in ints] + ["00", "05", "0", "007", "5.0", "-0", "١٢", "²", "12a", " 12", "1e3"]
    for value in [*ints, *texts, True, False, 5.0, Decimal("5.00")]:
        assert key_norm(value) == general(value), value
    # The point of it: a database's int, the engine's text and a Decimal meet.
    assert key_norm(100) == key_norm("100") == key_norm(Decimal("100.0")) == key_norm(100.0) == "100"
    assert key_norm("05") != key_norm(5)
