"""The sandbox dataset: generation, queries the app serves, ground truth, and change over time.

`Dataset` is the one object the app, the tests and the demo share. It answers the app's
queries (pages of deployments in LaunchDarkly's order, pipelines, progressions, policies),
renders what the API serves, tells tests what a correct sync must contain (`truth()`), and
moves the world forward (`advance()`) so incremental syncs have something to pick up.
"""

from __future__ import annotations

import copy
import random
import time
from bisect import bisect_left, bisect_right
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from etl.sandbox import edge_cases, evolve, generate, pipelines, vocab
from etl.sandbox.config import SCALES
from etl.sandbox.records import JSON, Deployment, Progression
from etl.sandbox.store import Releases, Store

_RENDER_CACHE_SIZE = 120_000
"""Rendered deployments kept as bytes: every deployment of the large scale for one `expand`
(~170 MB). At 25,000 a large sync re-rendered every page, and the sandbox took 1.4 s of CPU per
run (against 0.5 s warm) from the two cores it shares with the client it serves."""


@dataclass(frozen=True)
class Truth:
    """What the sandbox serves, as plain JSON values (deep copies, safe to mutate).

    Attributes:
        projects: Project reps in served order.
        environments: Project key → Environment reps.
        deployments: (project, environment) → DeploymentRep as served with
            `expand=pullRequests,flagReferences` (and `leadTimeStages` where present), newest first.
        release_pipelines: Project key → ReleasePipeline reps.
        release_progressions: (project, pipeline) → ReleaseProgression reps, newest first.
        release_policies: Project key → ReleasePolicy reps, the default policy included.
        extras: each route family's truth (`families.py`), by its `NAME`.
        extra_counts: the route families' counts, part of `counts()`.
    """

    projects: list[JSON]
    environments: dict[str, list[JSON]]
    deployments: dict[tuple[str, str], list[JSON]]
    release_pipelines: dict[str, list[JSON]]
    release_progressions: dict[tuple[str, str], list[JSON]]
    release_policies: dict[str, list[JSON]]
    extras: dict[str, Any] = field(default_factory=dict)
    extra_counts: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Per-stream totals and per-scope counts (a benchmark's floor is computed from them).

        `deployments/<project>/<environment>` for every pair, and
        `release_progressions/<project>/<pipeline>` for every pipeline.
        """
        pull_requests = {
            pr["id"]
            for reps in self.deployments.values()
            for rep in reps
            for pr in rep["pullRequests"]["items"]
        }
        counts = {
            "projects": len(self.projects),
            "environments": sum(map(len, self.environments.values())),
            "deployments": sum(map(len, self.deployments.values())),
            "pull_requests": len(pull_requests),
            "release_pipelines": sum(map(len, self.release_pipelines.values())),
            "release_progressions": sum(map(len, self.release_progressions.values())),
            "release_policies": sum(map(len, self.release_policies.values())),
        }
        for (project, env), reps in self.deployments.items():
            counts[f"deployments/{project}/{env}"] = len(reps)
        for (project, pipeline), reps in self.release_progressions.items():
            counts[f"release_progressions/{project}/{pipeline}"] = len(reps)
        return counts | self.extra_counts


@dataclass(frozen=True, slots=True)
class DeploymentQuery:
    """One request to the deployments endpoint, already validated.

    `after`/`before` are the cursor deployments (keyset paging: the page starts strictly
    after / ends strictly before the cursor's sort position). Empty filter sets match all.
    `count_total=False` skips counting the window (the page's `total` is then -1), for
    probes that only need `has_more`.
    """

    project_key: str
    environment_key: str
    from_ms: int
    to_ms: int
    limit: int
    applications: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    after: Deployment | None = None
    before: Deployment | None = None
    count_total: bool = True


@dataclass(frozen=True, slots=True)
class DeploymentPage:
    """A page of deployments, the total matching across pages, and whether more follow."""

    items: list[Deployment]
    total: int
    has_more: bool


@dataclass(frozen=True, slots=True)
class _PairIndex:
    keys: list[tuple[int, str]]
    records: list[Deployment]


class Dataset:
    """A deterministic LaunchDarkly account: projects, deployments, pipelines, policies.

    Build one with `Dataset.generate`. The same (seed, scale, now_ms) gives byte-identical
    responses; `advance()` changes the data deterministically from the seed and the number
    of earlier advances.
    """

    def __init__(
        self,
        *,
        seed: int,
        scale: str,
        projects: list[JSON],
        environments: dict[str, list[JSON]],
        store: Store,
        releases: Releases,
    ) -> None:
        self.seed = seed
        self.scale = scale
        self.projects = projects
        self.environments = environments
        self.store = store
        self.releases = releases
        self.origin_ms = store.now_ms
        """The first anchor (`now_ms` moves with `advance`): route families date from it."""
        self.advances = 0
        self._index: dict[tuple[str, str], _PairIndex] = {}
        self._rendered: OrderedDict[tuple[str, bool, bool], bytes] = OrderedDict()
        self._reindex()

    @property
    def now_ms(self) -> int:
        """The anchor: no deployment starts after it."""
        return self.store.now_ms

    @classmethod
    def generate(
        cls,
        seed: int,
        scale: str,
        now_ms: int,
        *,
        release_methods: Sequence[str] = pipelines.GO_RELEASE_METHODS,
    ) -> Dataset:
        """Generate the dataset for (seed, scale, now_ms).

        Args:
            seed: RNG seed; equal seeds give equal data.
            scale: "tiny", "small", "medium" or "large" (see `config.SCALES`).
            now_ms: The anchor in Unix ms; deployments span the 120 days before it.
            release_methods: Release methods the policies cycle through. The default is the
                enum of ld-openapi.json; pass `pipelines.PY_RELEASE_METHODS` to also serve
                "immediate-release" as the newer Python client allows.
        """
        plan = SCALES[scale]
        rng = random.Random(seed)
        chain = vocab.ENVIRONMENT_CHAINS[plan.environments]
        projects, environments, applications = [], {}, {}
        for key, name, tags in vocab.PROJECTS[: plan.projects]:
            projects.append(generate.project_rep(rng, key, name, tags, vocab.PIPELINES[0][0]))
            environments[key] = [generate.environment_rep(rng, key, env) for env in chain]
            low, high = plan.apps
            applications[key] = tuple(rng.sample(vocab.APPLICATIONS, rng.randint(low, high)))
        store = Store(
            now_ms=now_ms,
            environments=dict.fromkeys(environments, chain),
            applications=applications,
        )
        per_project = plan.deployments // plan.projects
        for index, project in enumerate(projects):
            generate.generate_deployments(rng, store, project["key"], per_project, index)
        if scale in edge_cases.SCALES:
            edge_cases.add_edge_cases(seed, store, projects[0]["key"])
        releases = pipelines.generate_releases(rng, environments, plan, release_methods, now_ms)
        return cls(
            seed=seed,
            scale=scale,
            projects=projects,
            environments=environments,
            store=store,
            releases=releases,
        )

    # ----------------------------------------------------------------- deployments

    def find_deployment(self, deployment_id: str) -> Deployment | None:
        """The deployment with this id, in any project, or None."""
        return self.store.deployments.get(deployment_id)

    def query_deployments(self, query: DeploymentQuery) -> DeploymentPage:
        """One page in LaunchDarkly's order (startedAt desc, id desc), with keyset cursors.

        The window [from, to] is located by binary search; filters are applied by scanning
        only that window. Because cursors are positions in the sort order rather than offsets,
        deployments added while a client pages (always newer) never shift later pages.
        """
        index = self._index.get((query.project_key, query.environment_key))
        if index is None:
            return DeploymentPage([], 0, False)
        keys, records = index.keys, index.records
        low = bisect_left(keys, (-query.to_ms, ""))
        high = bisect_right(keys, (-query.from_ms, "~"))
        filtered = bool(query.applications or query.kinds or query.statuses)
        if not query.count_total:
            total = -1
        elif filtered:
            total = sum(1 for record in records[low:high] if _matches(query, record))
        else:
            total = max(0, high - low)
        if query.before is not None:
            end = min(high, bisect_left(keys, query.before.sort_key))
            picked = []
            for position in range(end - 1, low - 1, -1):
                if not filtered or _matches(query, records[position]):
                    picked.append(records[position])
                    if len(picked) > query.limit:
                        break
            has_more = len(picked) > query.limit
            return DeploymentPage(picked[: query.limit][::-1], total, has_more)
        start = low
        if query.after is not None:
            start = max(low, bisect_right(keys, query.after.sort_key))
        items = []
        for position in range(start, high):
            if not filtered or _matches(query, records[position]):
                items.append(records[position])
                if len(items) > query.limit:
                    break
        return DeploymentPage(items[: query.limit], total, len(items) > query.limit)

    def deployment_rep(self, deployment: Deployment, *, prs: bool, flags: bool) -> JSON:
        """A `DeploymentRep` with the requested expansions; `leadTimeStages` when known."""
        body = deployment.head()
        if prs:
            pull_requests = self.store.pull_requests
            body["pullRequests"] = {
                "totalCount": len(deployment.pr_ids),
                "items": [pull_requests[pr_id].rep() for pr_id in deployment.pr_ids],
            }
        if flags:
            body["flagReferences"] = {
                "totalCount": len(deployment.flags),
                "items": [flag.rep() for flag in deployment.flags],
            }
        if deployment.stages is not None:
            body["leadTimeStages"] = dict(deployment.stages)
        return body

    def deployment_bytes(self, deployment: Deployment, *, prs: bool, flags: bool) -> bytes:
        """`deployment_rep` serialized, from a bounded LRU cache (cleared by `advance`).

        Pages of 100 expanded deployments are the hot path of every sync and benchmark;
        serving cached bytes spliced with `orjson.Fragment` avoids re-rendering them.
        """
        key = (deployment.id, prs, flags)
        cached = self._rendered.get(key)
        if cached is not None:
            self._rendered.move_to_end(key)
            return cached
        rendered = orjson.dumps(self.deployment_rep(deployment, prs=prs, flags=flags))
        self._rendered[key] = rendered
        if len(self._rendered) > _RENDER_CACHE_SIZE:
            self._rendered.popitem(last=False)
        return rendered

    # ----------------------------------------------------------------- releases

    def project(self, key: str) -> JSON | None:
        """The Project rep with this key, or None."""
        return next((project for project in self.projects if project["key"] == key), None)

    def has_environment(self, project_key: str, environment_key: str) -> bool:
        """Whether the project exists and has this environment."""
        environments = self.environments.get(project_key, [])
        return any(env["key"] == environment_key for env in environments)

    def pipeline(self, project_key: str, pipeline_key: str) -> JSON | None:
        """The ReleasePipeline rep, or None if the project or pipeline does not exist."""
        pipelines = self.releases.pipelines.get(project_key, [])
        return next((p for p in pipelines if p["key"] == pipeline_key), None)

    def progressions(self, project_key: str, pipeline_key: str) -> list[Progression]:
        """The pipeline's progressions in served order (newest first)."""
        return self.releases.progressions.get((project_key, pipeline_key), [])

    # ----------------------------------------------------------------- truth and change

    def truth(self) -> Truth:
        """Everything a complete sync must end up with, exactly as served (deep copies)."""
        deployments: dict[tuple[str, str], list[JSON]] = {}
        for project in self.projects:
            for env in self.environments[project["key"]]:
                pair = (project["key"], env["key"])
                index = self._index.get(pair)
                records = index.records if index else []
                deployments[pair] = [
                    orjson.loads(self.deployment_bytes(record, prs=True, flags=True))
                    for record in records
                ]
        progressions = {
            pair: [progression.rep() for progression in items]
            for pair, items in self.releases.progressions.items()
        }
        from etl.sandbox.families import FAMILIES  # they import this module

        return Truth(
            projects=copy.deepcopy(self.projects),
            environments=copy.deepcopy(self.environments),
            deployments=deployments,
            release_pipelines=copy.deepcopy(self.releases.pipelines),
            release_progressions=progressions,
            release_policies=copy.deepcopy(self.releases.policies),
            extras={family.NAME: family.truth(self) for family in FAMILIES},
            extra_counts=self._family_counts(),
        )

    def counts(self) -> dict[str, int]:
        """Same numbers as `truth().counts()`, without rendering anything."""
        pull_requests = {
            pr_id for record in self.store.deployments.values() for pr_id in record.pr_ids
        }
        counts = {
            "projects": len(self.projects),
            "environments": sum(map(len, self.environments.values())),
            "deployments": len(self.store.deployments),
            "pull_requests": len(pull_requests),
            "release_pipelines": sum(map(len, self.releases.pipelines.values())),
            "release_progressions": sum(map(len, self.releases.progressions.values())),
            "release_policies": sum(map(len, self.releases.policies.values())),
        }
        for project in self.projects:
            for env in self.environments[project["key"]]:
                index = self._index.get((project["key"], env["key"]))
                counts[f"deployments/{project['key']}/{env['key']}"] = (
                    len(index.records) if index else 0
                )
        for (project_key, pipeline_key), items in self.releases.progressions.items():
            counts[f"release_progressions/{project_key}/{pipeline_key}"] = len(items)
        return counts | self._family_counts()

    def _family_counts(self) -> dict[str, int]:
        from etl.sandbox.families import FAMILIES  # they import this module

        counts: dict[str, int] = {}
        for family in FAMILIES:
            counts |= family.counts(self)
        return counts

    def advance(self, now_ms: int | None = None) -> dict[str, int]:
        """Move the world to `now_ms` (default: the current time) and report what changed.

        Finishes every running deployment, adds deployments started since the previous
        anchor (some still running), archives a few recent ones, moves and completes release
        progressions and adds new ones, replaces a pipeline on every odd-numbered advance, and
        swaps two policies' ranks. What happens depends only on the seed, the number of earlier
        advances and `now_ms`.

        Returns:
            Counts per kind of change, e.g. `deployments_added`, `pull_requests_changed`.
        """
        self.advances += 1
        previous = self.store.now_ms
        target = int(time.time() * 1000) if now_ms is None else now_ms
        new_now = max(target, previous + 1)
        rng = random.Random(f"{self.seed}/advance/{self.advances}")
        counts = evolve.advance_deployments(rng, self.store, SCALES[self.scale], new_now)
        counts |= evolve.advance_releases(
            rng,
            self.releases,
            self.environments,
            previous=previous,
            now_ms=new_now,
            replace_pipeline=self.advances % 2 == 1,
        )
        self._rendered.clear()
        self._reindex()
        return counts

    def _reindex(self) -> None:
        """Group deployments per (project, environment) in served order, for bisecting."""
        groups: defaultdict[tuple[str, str], list[Deployment]] = defaultdict(list)
        for record in self.store.deployments.values():
            groups[(record.project_key, record.environment_key)].append(record)
        self._index = {}
        for pair, records in groups.items():
            ordered = sorted(((record.sort_key, record) for record in records), key=_first)
            self._index[pair] = _PairIndex([k for k, _ in ordered], [r for _, r in ordered])


def _first(pair: tuple[tuple[int, str], Deployment]) -> tuple[int, str]:
    return pair[0]


def _matches(query: DeploymentQuery, record: Deployment) -> bool:
    return (
        (not query.applications or record.application_key in query.applications)
        and (not query.kinds or record.kind in query.kinds)
        and (not query.statuses or record.status in query.statuses)
    )
