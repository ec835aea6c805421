"""Sandbox knobs: what the fake LaunchDarkly serves and how badly it behaves.

Usage:
    SandboxConfig()                                   # small dataset, no limits, no faults
    SandboxConfig(scale="tiny", rate=5, rate_window_s=1)  # 5 requests/s in 1 s windows
    SandboxConfig(fault_rate=0.1, fault_kinds=("503", "drop"))
    SandboxConfig(next_href="after-only")             # cursor links carry only ?after=
    SandboxConfig(listing_total_count=0)              # offset listings misreport their size
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

ScaleName = Literal["tiny", "small", "medium", "large"]
NextHref = Literal["full", "after-only"]

FAULT_KINDS: tuple[str, ...] = ("500", "502", "503", "drop", "truncate", "garble")
"""Every fault the middleware knows: three 5xx statuses and three broken-transport shapes."""


@dataclass(frozen=True, slots=True)
class Scale:
    """How much data one scale name stands for.

    Attributes:
        projects: Number of projects.
        environments: Environments per project (a promotion chain ending in production).
        deployments: Target total of deployments across all (project, environment) pairs.
        apps: Inclusive range of applications per project.
        pipelines: Release pipelines per project.
        progressions: Target release progressions per pipeline.
        policies: Non-default release policies per project.
        new_deployments: Deployments that one `advance()` adds.
    """

    projects: int
    environments: int
    deployments: int
    apps: tuple[int, int]
    pipelines: int
    progressions: int
    policies: int
    new_deployments: int


SCALES: dict[str, Scale] = {
    "tiny": Scale(2, 2, 80, (2, 3), 2, 10, 2, 6),
    "small": Scale(3, 3, 1_000, (3, 4), 2, 30, 3, 12),
    "medium": Scale(5, 4, 10_000, (3, 5), 3, 150, 3, 40),
    "large": Scale(8, 5, 100_000, (4, 6), 4, 300, 4, 120),
}


SANDBOX_TOKEN = "api-5a4db0c5-0e7f-4c1d-9a2b-3c4d5e6f7a8b"
"""The sandbox's default token, shaped like a LaunchDarkly access token (`api-` + UUID)."""


@dataclass(frozen=True)
class SandboxConfig:
    """Everything `make_app` and the CLI need to stand up one sandbox.

    Frozen so one value can be shared by the app, its middlewares and the tests without any
    of them changing what the others see.

    Attributes:
        seed: Seeds the dataset and the fault RNG; same seed, same bytes.
        scale: Dataset size, see `SCALES`.
        token: The only accepted `Authorization` header value (raw, no `Bearer`).
        rate: Allowed requests per second across all API routes; None means unlimited
            (the headers are still sent, with a large limit).
        rate_window_s: Length of the fixed rate-limit window. LaunchDarkly uses 10 s; tests use
            about 1 s so a test can wait a window out.
        route_rate: Allowed requests per second per route (method + URL pattern); None means
            the same as `rate`.
        latency_ms: Added before every API response, to make concurrency matter.
        fault_rate: Fraction of API requests (after auth and rate limiting) that fail.
        fault_kinds: Which faults to draw from; see `FAULT_KINDS`.
        next_href: "full" repeats every original query parameter in `_links.next.href` of the
            deployments cursor; "after-only" carries only `?after=` like LaunchDarkly's example.
        listing_total_count: Served as `totalCount` by every offset listing (projects,
            environments, release pipelines, releases, policies) whatever its items: a server
            whose count disagrees with its own items, consistently. None: the true count.
        now_ms: The dataset's anchor ("now") in Unix ms; None means the current time floored to
            the minute, so two runs in the same minute serve the same data.
    """

    seed: int = 42
    scale: ScaleName = "small"
    token: str = SANDBOX_TOKEN
    rate: float | None = None
    rate_window_s: float = 10.0
    route_rate: float | None = None
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    next_href: NextHref = "full"
    listing_total_count: int | None = None
    now_ms: int | None = None

    def __post_init__(self) -> None:
        """Reject knob values that would make the sandbox misbehave in confusing ways."""
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {sorted(SCALES)}, not {self.scale!r}")
        unknown = [kind for kind in self.fault_kinds if kind not in FAULT_KINDS]
        if unknown or not self.fault_kinds:
            raise ValueError(f"fault_kinds must be a non-empty subset of {FAULT_KINDS}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be within [0, 1]")
        for name in ("rate", "route_rate"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None")
        if self.rate_window_s <= 0:
            raise ValueError("rate_window_s must be positive")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        if self.listing_total_count is not None and self.listing_total_count < 0:
            raise ValueError("listing_total_count must not be negative")
        if self.next_href not in ("full", "after-only"):
            raise ValueError("next_href must be 'full' or 'after-only'")

    def anchor_ms(self) -> int:
        """The dataset anchor: `now_ms`, or the current time floored to the minute."""
        if self.now_ms is not None:
            return self.now_ms
        return int(time.time() // 60 * 60_000)
