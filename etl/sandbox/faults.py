"""Misbehaviour on demand: LaunchDarkly-style rate limiting, latency and injected faults.

Rate limiting mimics LaunchDarkly's documented scheme: fixed windows (10 s upstream), a global
budget and a per-route budget (route = method + URL pattern), `X-Ratelimit-*` headers on every
API response, and 429 `RateLimitedErrorRep` with `Retry-After` when a budget is spent.
Decisions made here:

* A 429'd request does **not** count against the window, so a client that backs off until
  `X-Ratelimit-Reset` gets the full budget of the next window.
* `Retry-After` is whole seconds (the HTTP form), rounded up and at least 1; use
  `X-Ratelimit-Reset` (epoch ms of the window's end) for sub-second precision.
* Windows are aligned to the epoch (`floor(now / window)`), like a fixed-window counter.
* With `rate=None` the headers still appear, with a limit of `UNLIMITED`, so clients always
  see the shape; no request is refused.

Faults apply only to `/api/` routes, after authentication and rate limiting, chosen by an RNG
seeded from the config seed (so a run's fault sequence repeats for the same request order):
500/502/503 with a JSON error body; "drop" closes the connection with no response; "truncate"
sends the headers with the full Content-Length, then half the body, then closes; "garble"
sends a complete 200 whose body is the first half of the JSON. Latency is added to requests
that pass rate limiting and auth (a 429 or 401 answers at once, as a gateway would).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from etl.sandbox.config import SandboxConfig
from etl.sandbox.errors import RATE_LIMITED, SERVER_ERRORS, error_response
from etl.sandbox.requestlog import FAULT

UNLIMITED = 1_000_000
"""The advertised per-window limit when a budget is not enforced."""

RATE_HEADERS: web.RequestKey[dict[str, str]] = web.RequestKey("rate_headers")


def is_api(request: web.Request) -> bool:
    """Whether the request is for the LaunchDarkly API (not the sandbox's admin routes)."""
    return request.path.startswith("/api/")


def route_of(request: web.Request) -> str:
    """Method plus URL pattern, the unit of LaunchDarkly's route-level limit."""
    resource = request.match_info.route.resource
    pattern = resource.canonical if resource is not None else request.path
    return f"{request.method} {pattern}"


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one request against the limiter, and the headers that report it."""

    allowed: bool
    global_limit: int
    global_remaining: int
    route_limit: int
    route_remaining: int
    reset_ms: int
    retry_after_s: int

    def headers(self) -> dict[str, str]:
        """`X-Ratelimit-*` headers as LaunchDarkly names them."""
        return {
            "X-Ratelimit-Global-Limit": str(self.global_limit),
            "X-Ratelimit-Global-Remaining": str(self.global_remaining),
            "X-Ratelimit-Route-Limit": str(self.route_limit),
            "X-Ratelimit-Route-Remaining": str(self.route_remaining),
            "X-Ratelimit-Reset": str(self.reset_ms),
        }


@dataclass
class FixedWindowLimiter:
    """Counts requests per fixed window, globally and per route.

    A limit of None is not enforced (and advertised as `UNLIMITED`).
    """

    global_limit: int | None
    route_limit: int | None
    window_s: float
    _window: int = -1
    _global_used: int = 0
    _route_used: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: SandboxConfig) -> FixedWindowLimiter:
        """Budgets are requests/s × window length, at least 1."""
        window = config.rate_window_s
        route_rate = config.route_rate if config.route_rate is not None else config.rate
        return cls(
            global_limit=None if config.rate is None else max(1, int(config.rate * window)),
            route_limit=None if route_rate is None else max(1, int(route_rate * window)),
            window_s=window,
        )

    def take(self, route: str, now: float) -> RateDecision:
        """Spend one request of the current window if both budgets allow it."""
        window = math.floor(now / self.window_s)
        if window != self._window:
            self._window, self._global_used = window, 0
            self._route_used.clear()
        route_used = self._route_used.get(route, 0)
        allowed = (self.global_limit is None or self._global_used < self.global_limit) and (
            self.route_limit is None or route_used < self.route_limit
        )
        if allowed:
            self._global_used += 1
            route_used += 1
            self._route_used[route] = route_used
        reset_s = (window + 1) * self.window_s
        global_limit = UNLIMITED if self.global_limit is None else self.global_limit
        route_limit = UNLIMITED if self.route_limit is None else self.route_limit
        return RateDecision(
            allowed=allowed,
            global_limit=global_limit,
            global_remaining=max(0, global_limit - self._global_used),
            route_limit=route_limit,
            route_remaining=max(0, route_limit - route_used),
            reset_ms=int(reset_s * 1000),
            retry_after_s=max(1, math.ceil(reset_s - now)),
        )


def rate_limit_middleware(config: SandboxConfig) -> Middleware:
    """Refuse API requests over budget with 429; put `X-Ratelimit-*` on every API response."""
    limiter = FixedWindowLimiter.from_config(config)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_api(request):
            return await handler(request)
        decision = limiter.take(route_of(request), time.time())
        headers = decision.headers()
        if not decision.allowed:
            headers["Retry-After"] = str(decision.retry_after_s)
            return error_response(429, RATE_LIMITED, headers)
        request[RATE_HEADERS] = headers
        response = await handler(request)
        if not response.prepared:
            response.headers.update(headers)
        return response

    return middleware


def fault_middleware(config: SandboxConfig) -> Middleware:
    """Delay API responses by `latency_ms` and break a `fault_rate` fraction of them."""
    rng = random.Random(f"{config.seed}/faults")
    delay = config.latency_ms / 1000

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_api(request):
            return await handler(request)
        if delay:
            await asyncio.sleep(delay)
        if not config.fault_rate or rng.random() >= config.fault_rate:
            return await handler(request)
        fault = rng.choice(config.fault_kinds)
        request[FAULT] = fault
        if fault in ("500", "502", "503"):
            return error_response(int(fault), SERVER_ERRORS[int(fault)])
        if fault == "drop":
            _close(request)
            return web.Response()
        response = await handler(request)
        body = response.body if isinstance(response, web.Response) else None
        payload = body if isinstance(body, bytes) else b""
        if fault == "garble":
            garbled = web.Response(
                body=payload[: len(payload) // 2] or b"{", status=response.status
            )
            garbled.content_type = "application/json"
            return garbled
        return await _truncate(request, response.status, payload)

    return middleware


async def _truncate(request: web.Request, status: int, payload: bytes) -> web.StreamResponse:
    """Promise the whole body in Content-Length, send half, and hang up."""
    stream = web.StreamResponse(status=status, headers=request.get(RATE_HEADERS, {}))
    stream.content_type = "application/json"
    stream.content_length = len(payload)
    await stream.prepare(request)
    await stream.write(payload[: len(payload) // 2])
    _close(request)
    return stream


def _close(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()
