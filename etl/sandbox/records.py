"""Immutable records behind the served representations, and how each one renders.

The dataset keeps its state as frozen records and renders LaunchDarkly's JSON shapes on demand.
That keeps one source of truth per fact: a pull request is stored once and every deployment
that shipped it renders the current version, so a PR that moves from "merged" to "deployed"
changes everywhere it appears, as it does in LaunchDarkly. Key order follows the OpenAPI
schemas so the bytes read like the real API's.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

JSON = dict[str, Any]

_INVERT_HEX = str.maketrans("0123456789abcdef", "fedcba9876543210")


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def new_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng`, so ids repeat with the seed (uuid4() would not).

    Formatted by hand: `str(uuid.UUID(...))` was a tenth of large-scale generation time.
    """
    digits = f"{rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def hex_id(rng: random.Random, length: int = 24) -> str:
    """A lowercase hex id such as LaunchDarkly's 24-hex ObjectIds or a short commit sha."""
    return f"{rng.getrandbits(length * 4):0{length}x}"


def link(href: str) -> JSON:
    """One `Link` object; `type` is always JSON in LaunchDarkly's responses."""
    return {"href": href, "type": "application/json"}


class PullRequest(NamedTuple):
    """A pull request, shared by every deployment that shipped it.

    Immutable like the other records; a NamedTuple rather than a frozen dataclass because
    the large scale creates ~40k PRs and ~100k deployments, and a frozen dataclass's
    `__init__` (one `object.__setattr__` per field) was a sixth of generation time.

    `coding_ms` (first commit to PR opened) is not served; it feeds lead-time stages.
    `merge_time`/`merge_commit_key` are None for open and closed PRs and then left out.
    """

    id: str
    external_id: str
    title: str
    status: str
    author: str
    create_time: int
    merge_time: int | None
    merge_commit_key: str | None
    base_commit_key: str
    head_commit_key: str
    files_changed: int
    lines_added: int
    lines_deleted: int
    url: str
    coding_ms: int
    reviewed: bool

    def rep(self) -> JSON:
        """The `PullRequestRep` as served."""
        body: JSON = {
            "id": self.id,
            "externalId": self.external_id,
            "title": self.title,
            "status": self.status,
            "author": self.author,
            "createTime": self.create_time,
        }
        if self.merge_time is not None:
            body["mergeTime"] = self.merge_time
        if self.merge_commit_key is not None:
            body["mergeCommitKey"] = self.merge_commit_key
        body["baseCommitKey"] = self.base_commit_key
        body["headCommitKey"] = self.head_commit_key
        body["filesChanged"] = self.files_changed
        body["linesAdded"] = self.lines_added
        body["linesDeleted"] = self.lines_deleted
        body["url"] = self.url
        return body


@dataclass(frozen=True, slots=True)
class FlagReference:
    """Flag references a deployment's code added or removed (`FlagReferenceRep`)."""

    project_key: str
    flag_key: str
    added: int
    removed: int

    def rep(self) -> JSON:
        """The `FlagReferenceRep` as served."""
        return {
            "projectKey": self.project_key,
            "flagKey": self.flag_key,
            "referencesAdded": self.added,
            "referencesRemoved": self.removed,
        }


class Deployment(NamedTuple):
    """One deployment of an application version to one environment.

    A NamedTuple for the same reason as `PullRequest`.

    Running deployments have `ended_at` None and status "started". `lead_time` and `stages`
    come from `lead_time()` when the deployment is created or finished, so serving never
    recomputes them.
    """

    id: str
    project_key: str
    environment_key: str
    application_key: str
    application_version: str
    started_at: int
    ended_at: int | None
    status: str
    kind: str
    archived: bool
    metadata: Mapping[str, str] | None
    pr_ids: tuple[str, ...]
    flags: tuple[FlagReference, ...]
    contributors: int
    lines_added: int
    lines_deleted: int
    lead_time: int = 0
    stages: Mapping[str, int] | None = None

    @property
    def sort_key(self) -> tuple[int, str]:
        """Ascending key for the served order: startedAt descending, then id descending."""
        return (-self.started_at, self.id.translate(_INVERT_HEX))

    @property
    def active(self) -> bool:
        """Sandbox meaning of `active` (undocumented upstream): not failed and not archived."""
        return self.status != "failed" and not self.archived

    def head(self) -> JSON:
        """Every field up to `leadTime`, in schema order; the expansions follow it."""
        body: JSON = {
            "id": self.id,
            "applicationKey": self.application_key,
            "applicationVersion": self.application_version,
            "startedAt": self.started_at,
        }
        if self.ended_at is not None:
            body["endedAt"] = self.ended_at
            body["durationMs"] = self.ended_at - self.started_at
        body["status"] = self.status
        body["kind"] = self.kind
        body["active"] = self.active
        if self.metadata is not None:
            body["metadata"] = dict(self.metadata)
        body["archived"] = self.archived
        body["environmentKey"] = self.environment_key
        body["numberOfContributors"] = self.contributors
        body["numberOfPullRequests"] = len(self.pr_ids)
        body["linesAdded"] = self.lines_added
        body["linesDeleted"] = self.lines_deleted
        body["leadTime"] = self.lead_time
        return body


def lead_time(
    prs: Sequence[PullRequest], started_at: int, ended_at: int | None
) -> tuple[int, dict[str, int] | None]:
    """`leadTime` and `leadTimeStages` of a deployment shipping `prs`.

    Stages are averages over the PRs: coding (first commit to PR opened), review (opened to
    merged, only for reviewed merged PRs), wait (merged to this deployment's start) and deploy
    (the deployment's own duration). `leadTime` is their sum, so it equals `totalLeadTimeMs`,
    as in LaunchDarkly's example. A stage that does not apply is left out, which the schema
    allows: no review or wait for unmerged PRs, no deploy or total while the deployment runs.
    A deployment without PRs has no stages and its lead time is its duration.
    """
    duration = None if ended_at is None else ended_at - started_at
    if not prs:
        return duration or 0, None
    stages: dict[str, int] = {"codingDurationMs": _mean([pr.coding_ms for pr in prs])}
    merged = [pr for pr in prs if pr.merge_time is not None]
    reviewed = [pr for pr in merged if pr.reviewed]
    if reviewed:
        stages["reviewDurationMs"] = _mean(
            [(pr.merge_time or 0) - pr.create_time for pr in reviewed]
        )
    if merged:
        stages["waitDurationMs"] = _mean(
            [max(0, started_at - (pr.merge_time or 0)) for pr in merged]
        )
    if duration is not None:
        stages["deployDurationMs"] = duration
    total = sum(stages.values())
    if duration is not None:
        stages["totalLeadTimeMs"] = total
    return total, stages


def _mean(values: Sequence[int]) -> int:
    return sum(values) // len(values)


@dataclass(frozen=True, slots=True)
class Progression:
    """One flag's release on a pipeline (`ReleaseProgression`).

    Active releases carry `active_phase_id`; completed ones carry `completed_at` instead.
    """

    flag_key: str
    created_at: int
    active_phase_id: str | None
    completed_at: int | None

    @property
    def sort_key(self) -> tuple[int, str]:
        """Ascending key for the served order: newest first, then flag key."""
        return (-self.created_at, self.flag_key)

    def rep(self) -> JSON:
        """The `ReleaseProgression` as served (LaunchDarkly sends an empty `_links`)."""
        body: JSON = {"_createdAt": self.created_at}
        if self.completed_at is not None:
            body["_completedAt"] = self.completed_at
        body["flagKey"] = self.flag_key
        if self.active_phase_id is not None:
            body["activePhaseId"] = self.active_phase_id
        body["_links"] = {}
        return body
