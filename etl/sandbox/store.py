"""Mutable state of a dataset, shared by generation and `advance()`.

The served representations are rendered from these stores on demand (see `records`), so a
change made here is visible on the next request without any cache bookkeeping beyond the one
`Dataset` clears after each `advance()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from etl.sandbox.records import JSON, Deployment, FlagReference, Progression, PullRequest


@dataclass(frozen=True, slots=True)
class Version:
    """An application version: what every deployment of it ships."""

    project_key: str
    app: str
    version: str
    born_at: int
    pr_ids: tuple[str, ...]
    flags: tuple[FlagReference, ...]
    metadata: Mapping[str, str] | None
    preview: bool = False


@dataclass(frozen=True, slots=True)
class Frontier:
    """The newest version of one application and the furthest environment it reached."""

    version: Version
    env_index: int
    deployment_id: str


@dataclass
class Store:
    """Mutable deployment state shared by generation and `advance()`.

    Attributes:
        now_ms: The anchor; nothing starts after it.
        environments: Project key → environment keys in promotion order (production last).
        applications: Project key → application keys.
        pull_requests: Every PR by id; deployments refer to PRs by id.
        deployments: Every deployment by id.
        frontier: (project, app) → newest version and how far it got, for promotions.
        released: (project, app) → last version that reached production, for rollbacks.
        pr_numbers: (project, app) → last PR number used.
        build_number: Last CI build number used.
    """

    now_ms: int
    environments: dict[str, tuple[str, ...]]
    applications: dict[str, tuple[str, ...]]
    pull_requests: dict[str, PullRequest] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)
    frontier: dict[tuple[str, str], Frontier] = field(default_factory=dict)
    released: dict[tuple[str, str], Version] = field(default_factory=dict)
    pr_numbers: dict[tuple[str, str], int] = field(default_factory=dict)
    build_number: int = 1000


@dataclass
class Releases:
    """Release pipelines, their progressions and release policies.

    Pipelines and policies are stored as the JSON reps they are served as and replaced whole
    when they change; progressions are records because they move between phases.

    Attributes:
        pipelines: Project key → pipelines in served order.
        progressions: (project key, pipeline key) → progressions in served order.
        policies: Project key → policies by rank (the default policy last).
        serial: Counter that keeps names of later pipelines and flags unique.
    """

    pipelines: dict[str, list[JSON]] = field(default_factory=dict)
    progressions: dict[tuple[str, str], list[Progression]] = field(default_factory=dict)
    policies: dict[str, list[JSON]] = field(default_factory=dict)
    serial: int = 0
