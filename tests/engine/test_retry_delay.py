"""The export retry policy as a pure function: doubling from the base, capped."""

from __future__ import annotations

from core.engine.exports import MAX_RETRY_DELAY_SECONDS, retry_delay


def test_the_delay_doubles_from_the_base_per_failed_attempt():
    assert [retry_delay(30, n) for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert retry_delay(0.5, 1) == 0.5


def test_the_delay_never_exceeds_a_week_nor_overflows():
    assert retry_delay(86400, 20) == MAX_RETRY_DELAY_SECONDS == 7 * 24 * 3600
    assert retry_delay(1e300, 1) == MAX_RETRY_DELAY_SECONDS
    assert retry_delay(30, 10_000) == MAX_RETRY_DELAY_SECONDS
    assert retry_delay(30, 0) == 30  # "no failed attempt yet" waits the base, not half of it
