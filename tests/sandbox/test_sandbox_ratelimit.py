"""LaunchDarkly-style fixed-window rate limiting: 429 bodies, Retry-After, X-Ratelimit-*."""

from __future__ import annotations

import asyncio
import time

from etl.sandbox import SandboxConfig
from etl.sandbox.faults import UNLIMITED

NOW_MS = 1_767_225_600_000
PROJECTS = "/api/v2/projects"
ENVIRONMENTS = "/api/v2/projects/payments/environments"


async def limited(start_sandbox, api_for, **knobs):
    """A sandbox with 0.5 s windows (budget = rate / 2), called at the start of a window."""
    config = SandboxConfig(scale="tiny", now_ms=NOW_MS, rate_window_s=0.5, **knobs)
    api = api_for(await start_sandbox(config))
    reset_ms = int((await api.get(PROJECTS, beta=False)).headers["X-Ratelimit-Reset"])
    await asyncio.sleep(max(0.0, reset_ms / 1000 - time.time()) + 0.02)  # start a fresh window
    return api


async def test_headers_are_sent_with_a_large_limit_when_unlimited(api):
    first = (await api.get(PROJECTS, beta=False)).headers
    second = (await api.get(PROJECTS, beta=False)).headers
    assert first["X-Ratelimit-Global-Limit"] == str(UNLIMITED)
    assert first["X-Ratelimit-Route-Limit"] == str(UNLIMITED)
    assert (
        int(second["X-Ratelimit-Global-Remaining"])
        == int(first["X-Ratelimit-Global-Remaining"]) - 1
    )
    assert int(first["X-Ratelimit-Reset"]) > time.time() * 1000


async def test_remaining_counts_down_to_zero_then_429(start_sandbox, api_for):
    api = await limited(start_sandbox, api_for, rate=6)
    replies = [await api.get(PROJECTS, beta=False) for _ in range(4)]
    assert [r.status for r in replies] == [200, 200, 200, 429]
    assert [r.headers["X-Ratelimit-Global-Remaining"] for r in replies] == ["2", "1", "0", "0"]
    assert replies[0].headers["X-Ratelimit-Global-Limit"] == "3"


async def test_429_carries_the_rate_limited_body_and_retry_after(start_sandbox, api_for):
    api = await limited(start_sandbox, api_for, rate=2)
    await api.get(PROJECTS, beta=False)
    reply = await api.get(PROJECTS, beta=False)
    assert reply.status == 429
    assert reply.json() == {
        "code": "rate_limited",
        "message": "You've exceeded the API rate limit. Try again later.",
    }
    assert reply.headers["Retry-After"] == "1"
    reset_s = int(reply.headers["X-Ratelimit-Reset"]) / 1000
    assert 0 < reset_s - time.time() <= 0.5


async def test_route_limit_applies_per_url_pattern(start_sandbox, api_for):
    api = await limited(start_sandbox, api_for, rate=100, route_rate=4)
    statuses = [(await api.get(PROJECTS, beta=False)).status for _ in range(3)]
    other = await api.get(ENVIRONMENTS, beta=False)
    assert statuses == [200, 200, 429]
    assert other.status == 200
    assert other.headers["X-Ratelimit-Route-Remaining"] == "1"
    assert other.headers["X-Ratelimit-Global-Remaining"] == "47"


async def test_refused_requests_do_not_count_against_the_next_window(start_sandbox, api_for):
    api = await limited(start_sandbox, api_for, rate=4)
    burst = [(await api.get(PROJECTS, beta=False)) for _ in range(6)]
    assert [r.status for r in burst] == [200, 200, 429, 429, 429, 429]
    await asyncio.sleep(int(burst[-1].headers["X-Ratelimit-Reset"]) / 1000 - time.time() + 0.02)
    after = [(await api.get(PROJECTS, beta=False)).status for _ in range(3)]
    assert after == [200, 200, 429]


async def test_admin_routes_are_not_rate_limited(start_sandbox, api_for):
    api = await limited(start_sandbox, api_for, rate=2)
    statuses = [(await api.get("/_sandbox/truth/counts")).status for _ in range(3)]
    assert statuses == [200, 200, 200]
