"""Rate-limit headers that cannot be right: a reset long past or far ahead of our clock."""

from __future__ import annotations

import pytest

from etl.ratelimit import WINDOW_S, retry_after_seconds
from tests.unit.test_ratelimit import FakeClock, limiter

HOUR_S = 3_600


@pytest.mark.parametrize("offset_s", [-HOUR_S, HOUR_S, 10 * 365 * 24 * HOUR_S])
async def test_a_spent_window_whose_reset_is_implausible_waits_one_window(offset_s):
    clock = FakeClock()
    pacer = limiter(clock)
    reset_ms = int((clock.now + offset_s) * 1000)
    pacer.observe("r", {"X-Ratelimit-Global-Remaining": "0", "X-Ratelimit-Reset": str(reset_ms)})
    async with pacer.slot("r"):
        pass
    assert sum(clock.sleeps) == pytest.approx(WINDOW_S, abs=0.1)


def test_a_429_whose_reset_is_past_asks_for_a_backoff_not_for_no_wait():
    assert retry_after_seconds({"X-Ratelimit-Reset": str((1_000 - 5) * 1000)}, 1_000.0) is None


def test_a_429_whose_reset_is_an_hour_ahead_asks_for_the_hour():
    # The client compares it with api.max_wait_s and gives up instead of sleeping.
    wait = retry_after_seconds({"X-Ratelimit-Reset": str((1_000 + HOUR_S) * 1000)}, 1_000.0)
    assert wait == pytest.approx(HOUR_S)
