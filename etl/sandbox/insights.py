"""The sandbox's Insights world: ownership, groups, scores and the pull-request listing.

Built from a `Dataset` on demand and cached until the dataset changes (an `advance()`), so the
deployment generator stays as it is: the pull requests deployments carry are the deployed,
merged and preview (open or closed) ones the listing serves, and this module adds the pull
requests no deployment carries yet (opened on some days per application, some closed within
two days, some left open), derived from the seed and the day, so each advance brings new ones.
`insights_truth()` is what a complete sync of these endpoints must hold.
"""

from __future__ import annotations

import random
import weakref
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from etl.sandbox import owners, scores, vocab
from etl.sandbox.records import JSON, Deployment, PullRequest, hex_id, new_uuid

if TYPE_CHECKING:
    from etl.sandbox.data import Dataset

DAY = 86_400_000
HOUR = 3_600_000
_OPEN_P = 0.08
_INVERT_HEX = str.maketrans("0123456789abcdef", "fedcba9876543210")


@dataclass(frozen=True, slots=True)
class Listed:
    """One pull request as the Insights listing knows it: its project, application, deployments."""

    pr: PullRequest
    project_key: str
    application_key: str
    deployments: tuple[Deployment, ...]

    @property
    def sort_key(self) -> tuple[int, str]:
        """Ascending key for the served order: createTime descending, then id descending."""
        return (-self.pr.create_time, self.pr.id.translate(_INVERT_HEX))


@dataclass
class World:
    """Everything the Insights routes serve, for one state of the dataset."""

    origin_ms: int
    anchor_ms: int
    owner_of: dict[str, owners.Owner]
    groups: list[owners.Group]
    listed: dict[str, list[Listed]] = field(default_factory=dict)
    keys: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    by_id: dict[str, Listed] = field(default_factory=dict)
    by_pair: dict[tuple[str, str], list[Deployment]] = field(default_factory=dict)


_WORLDS: weakref.WeakKeyDictionary[Dataset, tuple[tuple[int, ...], World]] = (
    weakref.WeakKeyDictionary()
)


def world(dataset: Dataset) -> World:
    """The dataset's Insights world, rebuilt only when the dataset changed."""
    store = dataset.store
    version = (dataset.advances, store.now_ms, len(store.deployments), len(store.pull_requests))
    cached = _WORLDS.get(dataset)
    if cached is not None and cached[0] == version:
        return cached[1]
    built = _build(dataset)
    _WORLDS[dataset] = (version, built)
    return built


def _build(dataset: Dataset) -> World:
    store = dataset.store
    first = min((d.started_at for d in store.deployments.values()), default=store.now_ms)
    origin = first - first % DAY
    built = World(
        origin_ms=origin,
        anchor_ms=store.now_ms,
        owner_of=owners.owners(dataset.seed, store, dataset.advances),
        groups=owners.groups(dataset.seed, store, origin),
    )
    carried: dict[str, list[Deployment]] = defaultdict(list)
    by_pair: dict[tuple[str, str], list[Deployment]] = defaultdict(list)
    for record in store.deployments.values():
        by_pair[(record.project_key, record.environment_key)].append(record)
        for pr_id in record.pr_ids:
            carried[pr_id].append(record)
    built.by_pair = dict(by_pair)
    listed: dict[str, list[Listed]] = defaultdict(list)
    for pr_id, records in carried.items():
        records.sort(key=lambda record: record.sort_key)
        head = records[-1]
        entry = Listed(
            store.pull_requests[pr_id], head.project_key, head.application_key, tuple(records)
        )
        listed[head.project_key].append(entry)
    for project_key in sorted(store.applications):
        for app in sorted(store.applications[project_key]):
            listed[project_key].extend(
                _unattached(dataset.seed, project_key, app, origin, dataset.origin_ms, store.now_ms)
            )
    for project_key, entries in listed.items():
        entries.sort(key=lambda entry: entry.sort_key)
        built.listed[project_key] = entries
        built.keys[project_key] = [entry.sort_key for entry in entries]
        built.by_id.update((entry.pr.id, entry) for entry in entries)
    return built


def _unattached(
    seed: int, project_key: str, app: str, origin: int, anchor_ms: int, now_ms: int
) -> list[Listed]:
    """Pull requests no deployment carries: some days an application gets one.

    Some of those opened before the first anchor were closed within two days; the rest stay
    open, so these never change after they appear (an incremental read sees each once).
    """
    found = []
    for day in range(origin // DAY, now_ms // DAY + 1):
        rng = random.Random(f"{seed}/open-pr/{project_key}/{app}/{day}")
        if rng.random() >= _OPEN_P:
            continue
        created = day * DAY + rng.randint(0, DAY - 1)
        if created > now_ms:
            continue
        closes = rng.randint(HOUR, 2 * DAY) if rng.random() < 0.4 else None
        status = "closed" if closes is not None and created + closes <= anchor_ms else "open"
        added = rng.randint(1, 900)
        number = 100_000 + day
        pr = PullRequest(
            id=new_uuid(rng),
            external_id=str(number),
            title=f"{rng.choice(vocab.TITLE_VERBS)} {rng.choice(vocab.TITLE_OBJECTS)}",
            status=status,
            author=rng.choice(vocab.AUTHORS),
            create_time=created,
            merge_time=None,
            merge_commit_key=None,
            base_commit_key=hex_id(rng, 7),
            head_commit_key=hex_id(rng, 7),
            files_changed=rng.randint(1, 40),
            lines_added=added,
            lines_deleted=rng.randint(0, added),
            url=f"https://github.com/acme/{app}/pull/{number}",
            coding_ms=rng.randint(HOUR, 3 * DAY),
            reviewed=False,
        )
        found.append(Listed(pr, project_key, app, ()))
    return found


# --------------------------------------------------------------------------- pull requests


@dataclass(frozen=True, slots=True)
class PullRequestQuery:
    """One request to the pull-request listing, validated. The window applies to createTime."""

    project_key: str
    from_ms: int
    to_ms: int
    limit: int
    statuses: frozenset[str] = frozenset()
    applications: frozenset[str] = frozenset()
    text: str = ""
    after: Listed | None = None


def query_pull_requests(built: World, query: PullRequestQuery) -> tuple[list[Listed], int, bool]:
    """(page, total matching, more after the page), newest created first, keyset cursor."""
    keys = built.keys.get(query.project_key, [])
    entries = built.listed.get(query.project_key, [])
    low = bisect_left(keys, (-query.to_ms, ""))
    high = bisect_right(keys, (-query.from_ms, "~"))
    window = [entry for entry in entries[low:high] if _matches(query, entry)]
    start = 0
    if query.after is not None:
        cursor = query.after.sort_key
        start = next((i for i, entry in enumerate(window) if entry.sort_key > cursor), len(window))
    page = window[start : start + query.limit]
    return page, len(window), start + query.limit < len(window)


def _matches(query: PullRequestQuery, entry: Listed) -> bool:
    needle = query.text.lower()
    return (
        (not query.statuses or entry.pr.status in query.statuses)
        and (not query.applications or entry.application_key in query.applications)
        and (not needle or needle in entry.pr.title.lower() or needle in entry.pr.author.lower())
    )


def pull_request_rep(entry: Listed, expand: frozenset[str]) -> JSON:
    """A `PullRequestRep` with the asked expansions (deployments, flagReferences, leadTime)."""
    body = entry.pr.rep()
    if "deployments" in expand:
        body["deployments"] = {
            "totalCount": len(entry.deployments),
            "items": [record.head() for record in entry.deployments],
        }
    if "flagReferences" in expand:
        flags = entry.deployments[-1].flags if entry.deployments else ()
        body["flagReferences"] = {
            "totalCount": len(flags),
            "items": [flag.rep() for flag in flags],
        }
    if "leadTime" in expand:
        body["leadTime"] = _lead_time(entry)
    return body


def _lead_time(entry: Listed) -> JSON:
    """Coding, review, and the wait, deploy and total times over its finished deployments."""
    pr = entry.pr
    body: JSON = {"codingDurationMs": pr.coding_ms}
    if pr.merge_time is None:
        return body
    review = pr.merge_time - pr.create_time if pr.reviewed else 0
    if pr.reviewed:
        body["reviewDurationMs"] = review
    done = [d for d in entry.deployments if d.status == "finished" and d.ended_at is not None]
    if not done:
        return body
    waits = [max(0, d.started_at - pr.merge_time) for d in done]
    deploys = [(d.ended_at or d.started_at) - d.started_at for d in done]
    totals = [
        pr.coding_ms + review + wait + deploy for wait, deploy in zip(waits, deploys, strict=True)
    ]
    body["maxWaitDurationMs"] = max(waits)
    body["avgWaitDurationMs"] = sum(waits) // len(waits)
    body["maxDeployDurationMs"] = max(deploys)
    body["avgDeployDurationMs"] = sum(deploys) // len(deploys)
    body["maxTotalLeadTimeMs"] = max(totals)
    body["avgTotalLeadTimeMs"] = sum(totals) // len(totals)
    return body


# --------------------------------------------------------------------------- scores


def scope_scores(
    built: World, project_key: str, environment_key: str, applications: frozenset[str]
) -> tuple[JSON, JSON, JSON]:
    """(`period`, `lastPeriod`, scores) for a project and environment, maybe some applications."""
    records = built.by_pair.get((project_key, environment_key), [])
    if applications:
        records = [record for record in records if record.application_key in applications]
    scope = f"{project_key}/{environment_key}/{','.join(sorted(applications))}"
    return scores.insight_scores(scope, records, built.anchor_ms)


def group_scores(built: World, group: owners.Group) -> tuple[JSON, JSON, JSON]:
    """A group's scores: its applications in its project and environment."""
    return scope_scores(
        built, group.project_key, group.environment_key, frozenset(group.application_keys)
    )


# --------------------------------------------------------------------------- truth


@dataclass(frozen=True)
class InsightsTruth:
    """What a complete sync of the Insights endpoints must hold (plain JSON values).

    Attributes:
        applications: ApplicationRep by key order.
        teams: Team reps in served order.
        groups: InsightGroup reps with `scores` and `scoreMetadata`, by key.
        scores: (project, environment) → InsightScores body, for every environment.
        pull_requests: Project key → PullRequestRep with every expansion, newest first.
    """

    applications: list[JSON]
    teams: list[JSON]
    groups: list[JSON]
    scores: dict[tuple[str, str], JSON]
    pull_requests: dict[str, list[JSON]]

    def counts(self) -> dict[str, int]:
        """Totals per stream (a benchmark's floor is computed from them)."""
        counts = {
            "applications": len(self.applications),
            "teams": len(self.teams),
            "insight_groups": len(self.groups),
            "insight_scopes": len(self.scores),
            "insight_pull_requests": sum(map(len, self.pull_requests.values())),
        }
        for project, reps in self.pull_requests.items():
            counts[f"insight_pull_requests/{project}"] = len(reps)
        return counts


ALL_EXPANSIONS = frozenset({"deployments", "flagReferences", "leadTime"})


def applications(dataset: Dataset, *, flags: bool = False) -> list[JSON]:
    """Every ApplicationRep, by key."""
    built = world(dataset)
    return [
        owners.application_rep(key, owner, built.origin_ms, flags=flags)
        for key, owner in sorted(built.owner_of.items())
    ]


def teams(dataset: Dataset, *, members: bool = False) -> list[JSON]:
    """Every Team rep, in the order of `owners.TEAMS`."""
    origin = world(dataset).origin_ms
    return [owners.team_rep(index, origin, members=members) for index in range(len(owners.TEAMS))]


def group_rep(built: World, group: owners.Group, *, with_scores: bool) -> JSON:
    """An InsightGroup, with `scores` and `scoreMetadata` when asked."""
    body = group.rep()
    if with_scores:
        period, last_period, values = group_scores(built, group)
        body["scores"] = values
        body["scoreMetadata"] = {"period": period, "lastPeriod": last_period}
    return body


def insights_truth(dataset: Dataset) -> InsightsTruth:
    """Everything the Insights endpoints serve now, for tests to compare a warehouse with."""
    built = world(dataset)
    scope_bodies = {}
    for project in dataset.projects:
        for env in dataset.environments[project["key"]]:
            period, last_period, values = scope_scores(
                built, project["key"], env["key"], frozenset()
            )
            scope_bodies[(project["key"], env["key"])] = {
                "period": period,
                "lastPeriod": last_period,
                "scores": values,
            }
    return InsightsTruth(
        applications=applications(dataset),
        teams=teams(dataset),
        groups=[group_rep(built, group, with_scores=True) for group in built.groups],
        scores=scope_bodies,
        pull_requests={
            project: [pull_request_rep(entry, ALL_EXPANSIONS) for entry in entries]
            for project, entries in built.listed.items()
        },
    )
