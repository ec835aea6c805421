from __future__ import annotations

import asyncio

import pytest

from etl.ratelimit import RateLimiter, retry_after_seconds


class FakeClock:
    """An injected clock: sleeping advances time instantly (no real waiting in tests)."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is


def limiter(clock: FakeClock, rps: float | None = None, in_flight: int = 4) -> RateLimiter:
    return RateLimiter(rps, in_flight, clock=clock, sleep=clock.sleep)


async def test_paces_requests_evenly_at_the_configured_rate():
    clock = FakeClock()
    pacer = limiter(clock, rps=10)
    for _ in range(5):
        async with pacer.slot("r"):
            pass
    assert clock.now == pytest.approx(1_000.4)


async def test_waits_for_window_reset_when_the_server_budget_is_spent():
    clock = FakeClock()
    pacer = limiter(clock)
    reset_ms = int((clock.now + 3) * 1000)
    pacer.observe("r", {"X-Ratelimit-Global-Remaining": "0", "X-Ratelimit-Reset": str(reset_ms)})
    async with pacer.slot("r"):
        pass
    assert clock.now >= 1_003.0


async def test_spends_the_remaining_budget_before_waiting():
    clock = FakeClock()
    pacer = limiter(clock)
    reset_ms = int((clock.now + 10) * 1000)
    headers = {"X-Ratelimit-Route-Remaining": "3", "X-Ratelimit-Reset": str(reset_ms)}
    pacer.observe("r", headers)
    for _ in range(3):
        async with pacer.slot("r"):
            pass
    assert clock.sleeps == []
    async with pacer.slot("r"):
        pass
    assert clock.now >= 1_010.0


async def test_route_budget_does_not_hold_other_routes():
    clock = FakeClock()
    pacer = limiter(clock)
    reset_ms = int((clock.now + 10) * 1000)
    pacer.observe("a", {"X-Ratelimit-Route-Remaining": "0", "X-Ratelimit-Reset": str(reset_ms)})
    async with pacer.slot("b"):
        pass
    assert clock.sleeps == []


async def test_pause_holds_every_new_request():
    clock = FakeClock()
    pacer = limiter(clock)
    pacer.pause(2.5)
    async with pacer.slot("any"):
        pass
    assert clock.now == pytest.approx(1_002.5)


async def test_full_window_is_restored_after_reset_when_limit_is_known():
    clock = FakeClock()
    pacer = limiter(clock)
    reset_ms = int((clock.now + 1) * 1000)
    pacer.observe(
        "r",
        {
            "X-Ratelimit-Global-Remaining": "0",
            "X-Ratelimit-Global-Limit": "5",
            "X-Ratelimit-Reset": str(reset_ms),
        },
    )
    for _ in range(6):
        async with pacer.slot("r"):
            pass
    assert len(clock.sleeps) == 1  # one wait for the reset, then 5 fresh + the probe


def test_retry_after_prefers_the_header_then_the_reset():
    assert retry_after_seconds({"Retry-After": "7"}, now=0) == 7
    assert retry_after_seconds({"X-Ratelimit-Reset": "5000"}, now=2.0) == pytest.approx(3.0)
    assert retry_after_seconds({}, now=0) is None


async def test_a_new_window_is_not_spent_by_requests_still_on_the_wire():
    # Requests sent at the end of a window may arrive in the next one and count there.
    clock = FakeClock()
    pacer = limiter(clock, in_flight=8)
    reset_ms = int((clock.now + 1) * 1000)
    headers = {
        "X-Ratelimit-Global-Remaining": "2",
        "X-Ratelimit-Global-Limit": "5",
        "X-Ratelimit-Reset": str(reset_ms),
    }
    pacer.observe("r", headers)
    on_the_wire = [pacer.slot("r") for _ in range(2)]
    for request in on_the_wire:
        await request.__aenter__()
    clock.now += 1.5  # the window rolls over while both are still out
    sent_in_new_window = 0
    for _ in range(3):
        async with pacer.slot("r"):
            sent_in_new_window += 1
    assert clock.sleeps == []  # 5 - 2 on the wire = 3 may go at once
    waiting = pacer.slot("r")
    task = asyncio.ensure_future(waiting.__aenter__())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()  # the 4th waits for one on the wire to come back
    await on_the_wire[0].__aexit__(None, None, None)
    new_window = {**headers, "X-Ratelimit-Global-Remaining": "1"}
    new_window["X-Ratelimit-Reset"] = str(reset_ms + 1000)
    pacer.observe("r", new_window)  # its response tells what is left of the new window
    await task
    await waiting.__aexit__(None, None, None)
    await on_the_wire[1].__aexit__(None, None, None)


async def test_a_newer_windows_count_is_trusted_less_the_requests_still_on_the_wire():
    # The server answered before it saw our other requests: they may not be in its count.
    clock = FakeClock()
    pacer = limiter(clock, in_flight=8)
    on_the_wire = [pacer.slot("r") for _ in range(3)]
    for request in on_the_wire:
        await request.__aenter__()
    reset_ms = int((clock.now + 1) * 1000)
    pacer.observe("r", {"X-Ratelimit-Global-Remaining": "4", "X-Ratelimit-Reset": str(reset_ms)})
    async with pacer.slot("r"):  # 4 - 3 on the wire = 1 surely left
        pass
    assert clock.sleeps == []
    async with pacer.slot("r"):
        pass
    assert clock.now >= reset_ms / 1000
    for request in on_the_wire:
        await request.__aexit__(None, None, None)


async def test_an_answer_overtaken_by_a_later_one_does_not_raise_the_count():
    # Answers can come back out of order: the server counted `first` (3 left), then `second`
    # (2 left), and second's answer arrives first. Only 2 requests are left in the window.
    clock = FakeClock()
    pacer = limiter(clock, in_flight=8)
    reset_ms = int((clock.now + 1) * 1000)
    first, second = pacer.slot("r"), pacer.slot("r")
    await first.__aenter__()
    await second.__aenter__()
    await second.__aexit__(None, None, None)
    pacer.observe("r", {"X-Ratelimit-Global-Remaining": "2", "X-Ratelimit-Reset": str(reset_ms)})
    await first.__aexit__(None, None, None)
    pacer.observe("r", {"X-Ratelimit-Global-Remaining": "3", "X-Ratelimit-Reset": str(reset_ms)})
    sent_before_the_reset = 0
    while True:
        async with pacer.slot("r"):
            if clock.sleeps:  # this one waited for the window to reset
                break
            sent_before_the_reset += 1
    assert sent_before_the_reset <= 2
    assert clock.now >= reset_ms / 1000
