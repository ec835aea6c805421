"""One pacer shared by every request of a run.

LaunchDarkly limits in fixed 10-second windows and says so in response headers
(`ld-api.md` §7): `X-Ratelimit-{Global,Route,Auth-Token}-Remaining`, the matching `-Limit`,
and `X-Ratelimit-Reset` / `X-Ratelimit-Auth-Token-Reset` (epoch ms). Rather than wait for a
429, the limiter keeps an estimate of what is left in each window, spends it as requests go
out, corrects it from every response, and holds new requests until the window resets when
the estimate reaches zero. A 429 still pauses everyone until `Retry-After`.

Three independent brakes, all applied in `slot()`:
1. `max_in_flight`: a semaphore on concurrent requests (politeness and memory).
2. `requests_per_second`: our own even pacing cap from the config (None = off).
3. the server's budgets (global, per route, per token), learnt from headers. The global and
   route budgets are the account's, shared with the customer's other tools: of those we
   spend `budget_share` of each window's limit and leave the rest (the server's remaining
   count includes the other tools' requests, so we stop when it falls to the reserve). The
   token budget is spent whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from etl.apistats import StreamRequests

# Requests wait this long past the server's reset instant so they land in the new window.
RESET_MARGIN_S = 0.02
# LaunchDarkly's documented rate-limit window.
WINDOW_S = 10.0
# A reset instant further than this from our clock is not believed (a skewed clock, a wrong
# header): such a window is taken to end one `WINDOW_S` from now instead, so the limiter
# neither sleeps for an hour nor treats every window as long gone. A 429's own Retry-After
# still rules, bounded by `api.max_wait_s`.
RESET_BELIEVED_S = (-2.0, 60.0)


def believed_reset(reset_s: float, now: float) -> float:
    """`reset_s` (epoch seconds) if plausible for a 10-second window, else now + WINDOW_S."""
    low, high = RESET_BELIEVED_S
    return reset_s if now + low <= reset_s <= now + high else now + WINDOW_S


@dataclass(slots=True)
class _Budget:
    """What the server said is left in one window (global, one route, or the token)."""

    remaining: int | None = None
    limit: int | None = None
    reset_at: float = 0.0  # epoch seconds
    granted_after: float = -1.0  # the reset after which we granted a fresh window
    lowest_reported: int | None = None  # the least the server has said is left in this window
    share: float = 1.0  # of each window's limit we may spend; the rest is left to others

    @property
    def reserve(self) -> int:
        """Requests of each window left to others: spending stops when `remaining` is this."""
        if self.limit is None or self.share >= 1.0:
            return 0
        return self.limit - max(1, int(self.limit * self.share))


_BUDGET_HEADERS = {
    # budget name → (remaining header, limit header, reset header)
    "global": ("X-Ratelimit-Global-Remaining", "X-Ratelimit-Global-Limit", "X-Ratelimit-Reset"),
    "route": ("X-Ratelimit-Route-Remaining", "X-Ratelimit-Route-Limit", "X-Ratelimit-Reset"),
    "token": (
        "X-Ratelimit-Auth-Token-Remaining",
        "X-Ratelimit-Auth-Token-Limit",
        "X-Ratelimit-Auth-Token-Reset",
    ),
}


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """How long a 429 asks us to wait: `Retry-After` seconds, else until the window resets."""
    value = headers.get("Retry-After")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    reset_ms = _int_header(headers, "X-Ratelimit-Reset")
    if reset_ms is not None and reset_ms / 1000 > now:
        return reset_ms / 1000 - now  # a far-off one is refused by the caller's max_wait_s
    return None  # a reset already past says nothing: the caller backs off with jitter


class RateLimiter:
    """Paces requests to the server's budget so that (almost) none is answered 429.

    Usage::

        limiter = RateLimiter(requests_per_second=None, max_in_flight=8, budget_share=0.8)
        async with limiter.slot("/api/v2/engineering-insights/deployments"):
            response = await session.get(...)
        limiter.observe(route, response.headers)
    """

    def __init__(
        self,
        requests_per_second: float | None,
        max_in_flight: int,
        *,
        budget_share: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if not 0.0 < budget_share <= 1.0:
            raise ValueError("budget_share must be within (0, 1]")
        self._share = budget_share
        self._interval = 1.0 / requests_per_second if requests_per_second else 0.0
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._turn = asyncio.Lock()
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._budgets: dict[str, _Budget] = {}
        self._on_the_wire = 0
        self.waited_s = 0.0

    def _budgets_for(self, route: str) -> list[_Budget]:
        return [
            self._budgets.setdefault("global", _Budget(share=self._share)),
            self._budgets.setdefault(f"route:{route}", _Budget(share=self._share)),
            self._budgets.setdefault("token", _Budget()),
        ]

    def _wait_needed(self, route: str, now: float) -> float:
        wait = max(self._paused_until - now, self._next_slot - now)
        for budget in self._budgets_for(route):
            if budget.remaining is None or budget.remaining > budget.reserve:
                continue
            if now >= budget.reset_at:
                if budget.limit is None:
                    budget.remaining = None  # size unknown: probe, the response will tell
                    continue
                if budget.granted_after != budget.reset_at or not self._on_the_wire:
                    # The window has rolled over: grant one fresh window, less the requests
                    # still on the wire (sent in the old one, they may count in the new one).
                    budget.granted_after = budget.reset_at
                    budget.remaining = budget.limit - self._on_the_wire
                    if budget.remaining > budget.reserve:
                        continue
                # The granted window is spent before any of its responses said more: wait
                # for one to come back (observe() then brings the new window's count).
                wait = max(wait, RESET_MARGIN_S)
                continue
            wait = max(wait, budget.reset_at + RESET_MARGIN_S - now)
        return wait

    @asynccontextmanager
    async def slot(self, route: str, counters: StreamRequests | None = None) -> AsyncIterator[None]:
        """Hold one request slot for `route` until the block exits.

        The time spent waiting for the budget is added to `counters.wait_s` (the ledger
        says which stream was held).
        """
        async with self._in_flight:
            async with self._turn:  # FIFO: one task at a time decides whether it may go
                while (wait := self._wait_needed(route, self._clock())) > 0:
                    self.waited_s += wait
                    if counters is not None:
                        counters.wait_s += wait
                    await self._sleep(wait)
                now = self._clock()
                self._next_slot = max(now, self._next_slot) + self._interval
                for budget in self._budgets_for(route):
                    if budget.remaining is not None:
                        budget.remaining -= 1
            self._on_the_wire += 1
            try:
                yield
            finally:
                self._on_the_wire -= 1

    def observe(self, route: str, headers: Mapping[str, str]) -> None:
        """Correct the budget estimates from one response's `X-Ratelimit-*` headers."""
        budgets = dict(zip(("global", "route", "token"), self._budgets_for(route), strict=True))
        for name, (remaining_h, limit_h, reset_h) in _BUDGET_HEADERS.items():
            remaining = _int_header(headers, remaining_h)
            if remaining is None:
                continue
            budget = budgets[name]
            limit = _int_header(headers, limit_h)
            if limit is not None:
                budget.limit = limit
            reset_ms = _int_header(headers, reset_h)
            # Without a reset header, assume LaunchDarkly's documented 10-second window.
            now = self._clock()
            reset_at = (
                believed_reset(reset_ms / 1000, now) if reset_ms is not None else now + WINDOW_S
            )
            # The server's count may not include our requests still on the wire: `remaining`
            # less those is the most that is surely left.
            surely_left = remaining - self._on_the_wire
            if reset_at > budget.reset_at + 0.001:
                # A newer window than we knew.
                budget.reset_at = reset_at
                budget.remaining = surely_left
                budget.lowest_reported = remaining
            elif budget.lowest_reported is not None and remaining > budget.lowest_reported:
                # An answer overtaken by a later one: the server has counted requests since
                # that are neither in its count nor on the wire any more, so it cannot say
                # that more is left than we reckon (trusting it cost 429s on a cold start).
                continue
            else:
                # Our own count (every request sent, decremented) is exact for ours; the
                # server's also sees other clients of the token.
                budget.lowest_reported = remaining
                ours = budget.remaining if budget.remaining is not None else remaining
                budget.remaining = min(remaining, max(ours, surely_left))

    def pause(self, seconds: float) -> None:
        """After a 429: hold every new request for `seconds` (the server's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
