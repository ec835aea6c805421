"""Deterministic synthetic data: projects, environments, and deployments with shared PRs.

Everything is drawn from one `random.Random` in a fixed order, so a (seed, scale, now_ms)
triple always yields the same records. No wall clock is read here: every timestamp is derived
from the anchor `now_ms`. The same functions serve `Dataset.generate` and `Dataset.advance`, so
data added later has exactly the shapes of the initial data. Releases are in `pipelines`.

Deployments follow application versions through a promotion chain of environments (for example
development → staging → production): the version's PRs appear in every deployment of it, which
is what makes "the same PR in several deployments" realistic. Along the way some deployments
fail and are redeployed, some production releases are rolled back, a few preview deployments
carry open or closed PRs, and the newest ones are still running.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace

from etl.sandbox import vocab
from etl.sandbox.records import (
    JSON,
    Deployment,
    FlagReference,
    PullRequest,
    hex_id,
    lead_time,
    link,
    new_uuid,
)
from etl.sandbox.store import Frontier, Store, Version

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
HISTORY_MS = 120 * DAY

_PROMOTE_P = 0.9
_FAIL_P = 0.06
_RETRY_P = 0.7
_REDEPLOY_P = 0.03
_ROLLBACK_P = 0.08
_PREVIEW_P = 0.05


def span(rng: random.Random, low: int, high: int) -> int:
    """A duration drawn log-uniformly from [low, high]: many short ones, a few long ones."""
    return int(low * (high / low) ** rng.random())


# --------------------------------------------------------------------------- projects


def project_rep(
    rng: random.Random, key: str, name: str, tags: Sequence[str], default_pipeline: str
) -> JSON:
    """A `Project` with every required field and a couple of optional ones."""
    return {
        "_links": {
            "environments": link(f"/api/v2/projects/{key}/environments"),
            "self": link(f"/api/v2/projects/{key}"),
        },
        "_id": hex_id(rng),
        "key": key,
        "includeInSnippetByDefault": rng.random() < 0.5,
        "defaultClientSideAvailability": {
            "usingMobileKey": rng.random() < 0.5,
            "usingEnvironmentId": rng.random() < 0.5,
        },
        "name": name,
        "tags": list(tags),
        "defaultReleasePipelineKey": default_pipeline,
    }


def environment_rep(rng: random.Random, project_key: str, env_key: str) -> JSON:
    """An `Environment`; `apiKey`/`mobileKey` are fake secrets shaped like the real ones."""
    name, color = vocab.ENVIRONMENTS[env_key]
    production = env_key == "production"
    body: JSON = {
        "_links": {"self": link(f"/api/v2/projects/{project_key}/environments/{env_key}")},
        "_id": hex_id(rng),
        "key": env_key,
        "name": name,
        "apiKey": f"sdk-{new_uuid(rng)}",
        "mobileKey": f"mob-{new_uuid(rng)}",
        "color": color,
        "defaultTtl": 0 if production else 5,
        "secureMode": production,
        "defaultTrackEvents": rng.random() < 0.3,
        "requireComments": production,
        "confirmChanges": production,
        "tags": ["ops"] if production else [],
    }
    if production:
        body["approvalSettings"] = {
            "required": True,
            "bypassApprovalsForPendingChanges": False,
            "minNumApprovals": 1,
            "canReviewOwnRequest": False,
            "canApplyDeclinedChanges": True,
            "serviceKind": "launchdarkly",
            "serviceConfig": {},
            "requiredApprovalTags": ["require-approval"],
        }
    body["critical"] = production
    return body


# --------------------------------------------------------------------------- deployments


def new_version(
    rng: random.Random, store: Store, project_key: str, app: str, first_start: int
) -> Version:
    """A version of `app` whose PRs were all merged before `first_start`.

    About one version in ten ships no PR (a config-only or dependency-free rebuild), which
    gives deployments with `numberOfPullRequests == 0`.
    """
    count = rng.choices((0, 1, 2, 3, 4), weights=(10, 35, 30, 15, 10))[0]
    pr_ids = tuple(
        _new_pull_request(rng, store, project_key, app, first_start, merged=True)
        for _ in range(count)
    )
    return Version(
        project_key=project_key,
        app=app,
        version=hex_id(rng, 7),
        born_at=first_start,
        pr_ids=pr_ids,
        flags=_flag_references(rng, project_key),
        metadata=_metadata(rng, store),
    )


def new_preview(
    rng: random.Random, store: Store, project_key: str, app: str, start: int
) -> Version:
    """A branch build with one unmerged PR (open, or since closed) for a preview deployment."""
    pr_id = _new_pull_request(rng, store, project_key, app, start, merged=False)
    metadata = _metadata(rng, store)
    return Version(project_key, app, hex_id(rng, 7), start, (pr_id,), (), metadata, preview=True)


def deploy(
    rng: random.Random,
    store: Store,
    version: Version,
    env_index: int,
    start: int,
    kind: str,
    *,
    outcome: str,
    duration: int | None = None,
) -> Deployment:
    """Create, register and return one deployment of `version`.

    Args:
        rng: The dataset RNG.
        store: Where the deployment is registered.
        version: What is deployed.
        env_index: Index into the project's environment chain.
        start: startedAt (Unix ms).
        kind: "deployment", "redeployment" or "rollback".
        outcome: "started" (still running), "finished" or "failed".
        duration: Run time for finished/failed deployments; drawn when None.
    """
    env = store.environments[version.project_key][env_index]
    prs = [store.pull_requests[pr_id] for pr_id in version.pr_ids]
    ended = None
    if outcome != "started":
        ended = start + (duration if duration is not None else span(rng, 90_000, 40 * MINUTE))
    total, stages = lead_time(prs, start, ended)
    record = Deployment(
        id=new_uuid(rng),
        project_key=version.project_key,
        environment_key=env,
        application_key=version.app,
        application_version=version.version,
        started_at=start,
        ended_at=ended,
        status=outcome,
        kind=kind,
        archived=outcome != "started" and rng.random() < 0.02,
        metadata=version.metadata,
        pr_ids=version.pr_ids,
        flags=version.flags,
        contributors=len({pr.author for pr in prs}),
        lines_added=sum(pr.lines_added for pr in prs),
        lines_deleted=sum(pr.lines_deleted for pr in prs),
        lead_time=total,
        stages=stages,
    )
    store.deployments[record.id] = record
    key = (version.project_key, version.app)
    current = store.frontier.get(key)
    newest = current is None or version.born_at >= current.version.born_at
    if kind != "rollback" and not version.preview and newest:
        store.frontier[key] = Frontier(version, env_index, record.id)
    if outcome == "finished" and env_index == len(store.environments[version.project_key]) - 1:
        mark_deployed(store, version.pr_ids)
        if kind != "rollback":
            store.released[key] = version
    return record


def finish(
    rng: random.Random, store: Store, deployment: Deployment, end_by: int
) -> tuple[Deployment, list[str]]:
    """Finish a running deployment no later than `end_by`; return it and the PR ids it changed.

    One in ten fails. A successful production deployment marks its PRs "deployed", and since
    PRs are shared that change shows in every earlier deployment of the same version.
    """
    end = min(deployment.started_at + span(rng, 90_000, 40 * MINUTE), end_by)
    end = max(end, deployment.started_at + 1)
    status = "failed" if rng.random() < 0.1 else "finished"
    prs = [store.pull_requests[pr_id] for pr_id in deployment.pr_ids]
    total, stages = lead_time(prs, deployment.started_at, end)
    done = deployment._replace(ended_at=end, status=status, lead_time=total, stages=stages)
    store.deployments[done.id] = done
    if (
        status == "finished"
        and deployment.environment_key == store.environments[deployment.project_key][-1]
    ):
        return done, mark_deployed(store, deployment.pr_ids)
    return done, []


def mark_deployed(store: Store, pr_ids: Sequence[str]) -> list[str]:
    """Move merged PRs to "deployed" (they reached production); return the ids that changed."""
    changed = []
    for pr_id in pr_ids:
        pr = store.pull_requests[pr_id]
        if pr.status == "merged":
            store.pull_requests[pr_id] = pr._replace(status="deployed")
            changed.append(pr_id)
    return changed


def generate_deployments(
    rng: random.Random, store: Store, project_key: str, target: int, project_index: int
) -> None:
    """Fill `store` with about `target` deployments for one project over the last 120 days.

    Version start times are drawn with density rising towards `now_ms` (u**1.6 skews toward
    recent), then processed in time order so "previous version" (for rollbacks) is well
    defined. A few in-flight versions are added last so every project has running deployments.
    """
    chain = store.environments[project_key]
    apps = store.applications[project_key]
    # Expected deployments per version: the chain continues with p ≈ 0.88 per environment
    # (promotion × not stopped by an unretried failure), plus retries, previews, rollbacks.
    per_version = sum(0.88**k for k in range(len(chain))) * 1.05 + 0.1
    count = max(1, round(target / per_version))
    now = store.now_ms
    starts = sorted(
        now - HOUR - int((HISTORY_MS - HOUR) * rng.random() ** 1.6) for _ in range(count)
    )
    for start in starts:
        app = rng.choice(apps)
        if rng.random() < _PREVIEW_P:
            preview = new_preview(rng, store, project_key, app, start - span(rng, HOUR, 2 * DAY))
            deploy(rng, store, preview, 0, preview.born_at, "deployment", outcome="finished")
        _run_chain(rng, store, new_version(rng, store, project_key, app, start), start)
    _in_flight(rng, store, project_key, project_index)
    _ensure_variety(rng, store, project_key)


def _ensure_variety(rng: random.Random, store: Store, project_key: str) -> None:
    """Make sure even a tiny project has a rollback, an unmerged PR and an archived deployment."""
    records = sorted(
        (d for d in store.deployments.values() if d.project_key == project_key),
        key=lambda d: d.sort_key,
    )
    production = store.environments[project_key][-1]
    if not any(d.kind == "rollback" for d in records):
        shipped = [d for d in records if d.environment_key == production and d.status == "finished"]
        for current in shipped:
            older = next(
                (
                    d
                    for d in shipped
                    if d.application_key == current.application_key
                    and d.application_version != current.application_version
                    and d.started_at < current.started_at
                ),
                None,
            )
            at = (current.ended_at or current.started_at) + HOUR
            if older is None or at + HOUR > store.now_ms:
                continue
            target = Version(
                project_key,
                older.application_key,
                older.application_version,
                older.started_at,
                (),
                (),
                older.metadata,
            )
            last = len(store.environments[project_key]) - 1
            deploy(rng, store, target, last, at, "rollback", outcome="finished")
            break
    unmerged = (store.pull_requests[i].merge_time is None for d in records for i in d.pr_ids)
    if not any(unmerged):
        app = store.applications[project_key][-1]
        preview = new_preview(rng, store, project_key, app, store.now_ms - 2 * DAY)
        deploy(rng, store, preview, 0, preview.born_at, "deployment", outcome="finished")
    if not any(d.archived for d in records):
        finished = [d for d in records if d.ended_at is not None]
        if finished:
            chosen = rng.choice(finished)
            store.deployments[chosen.id] = chosen._replace(archived=True)


def _run_chain(rng: random.Random, store: Store, version: Version, start: int) -> None:
    """Deploy `version` up the environment chain until it stops, fails or reaches now."""
    chain_length = len(store.environments[version.project_key])
    previous = store.released.get((version.project_key, version.app))
    at = start
    for env_index in range(chain_length):
        done = _deploy_until_success(rng, store, version, env_index, at)
        if done is None:
            return
        if env_index == chain_length - 1:
            _after_release(rng, store, version, previous, done)
            return
        if rng.random() > _PROMOTE_P:
            return
        at = done + span(rng, 20 * MINUTE, 36 * HOUR)


def _deploy_until_success(
    rng: random.Random, store: Store, version: Version, env_index: int, start: int
) -> int | None:
    """Deploy (retrying a failure at most once); return the success's end, or None if stopped."""
    now = store.now_ms
    kind = "deployment"
    for _attempt in range(2):
        if start > now:
            return None
        duration = span(rng, 90_000, 40 * MINUTE)
        if start + duration > now:
            deploy(rng, store, version, env_index, start, kind, outcome="started")
            return None
        failed = rng.random() < _FAIL_P
        outcome = "failed" if failed else "finished"
        deploy(rng, store, version, env_index, start, kind, outcome=outcome, duration=duration)
        if not failed:
            return start + duration
        if rng.random() > _RETRY_P:
            return None
        start += duration + span(rng, 5 * MINUTE, HOUR)
        kind = "redeployment"
    return None


def _after_release(
    rng: random.Random, store: Store, version: Version, previous: Version | None, ended: int
) -> None:
    """Sometimes redeploy a production release (a restart) or roll it back to `previous`."""
    last = len(store.environments[version.project_key]) - 1
    draw = rng.random()
    at = ended + span(rng, 30 * MINUTE, 6 * HOUR)
    if at + 40 * MINUTE > store.now_ms:
        return
    if draw < _REDEPLOY_P:
        deploy(rng, store, version, last, at, "redeployment", outcome="finished")
    elif draw < _REDEPLOY_P + _ROLLBACK_P and previous is not None:
        rollback = replace(previous, pr_ids=(), flags=())
        deploy(rng, store, rollback, last, at, "rollback", outcome="finished")
        store.released[(version.project_key, version.app)] = previous


def _in_flight(rng: random.Random, store: Store, project_key: str, project_index: int) -> None:
    """A version that went partway up the chain in the last hours and is running right now."""
    chain_length = len(store.environments[project_key])
    app = store.applications[project_key][0]
    now = store.now_ms
    running_at = project_index % chain_length
    version = new_version(rng, store, project_key, app, now - 3 * HOUR)
    for env_index in range(running_at):
        start = version.born_at + env_index * 40 * MINUTE
        deploy(rng, store, version, env_index, start, "deployment", outcome="finished")
    start = now - span(rng, MINUTE, 8 * MINUTE)
    deploy(rng, store, version, running_at, start, "deployment", outcome="started")


def _new_pull_request(
    rng: random.Random, store: Store, project_key: str, app: str, before: int, *, merged: bool
) -> str:
    """Create and register a PR merged (or opened, when unmerged) before `before`."""
    number = store.pr_numbers.get((project_key, app), rng.randint(100, 3000)) + rng.randint(1, 3)
    store.pr_numbers[(project_key, app)] = number
    wait = span(rng, 5 * MINUTE, DAY)
    review = span(rng, 10 * MINUTE, 2 * DAY)
    coding = span(rng, HOUR, 5 * DAY)
    create_time = before - wait - review
    added = span(rng, 1, 1500)
    status = "merged" if merged else rng.choice(("open", "open", "closed"))
    pr = PullRequest(
        id=new_uuid(rng),
        external_id=str(number),
        title=f"{rng.choice(vocab.TITLE_VERBS)} {rng.choice(vocab.TITLE_OBJECTS)}",
        status=status,
        author=rng.choice(vocab.AUTHORS),
        create_time=create_time,
        merge_time=before - wait if merged else None,
        merge_commit_key=hex_id(rng, 7) if merged else None,
        base_commit_key=hex_id(rng, 7),
        head_commit_key=hex_id(rng, 7),
        files_changed=min(60, span(rng, 1, 80)),
        lines_added=added,
        lines_deleted=int(added * rng.uniform(0.0, 0.8)),
        url=f"https://github.com/acme/{app}/pull/{number}",
        coding_ms=coding,
        reviewed=rng.random() < 0.9,
    )
    store.pull_requests[pr.id] = pr
    return pr.id


def _flag_references(rng: random.Random, project_key: str) -> tuple[FlagReference, ...]:
    """Zero to three flags touched by a version; about 40% of versions touch none."""
    count = rng.choices((0, 1, 2, 3), weights=(40, 35, 15, 10))[0]
    flags = rng.sample(vocab.FLAG_WORDS, count)
    refs = []
    for flag in flags:
        added = rng.randint(0, 5)
        removed = rng.randint(0 if added else 1, 3)
        refs.append(FlagReference(project_key, flag, added, removed))
    return tuple(refs)


def _metadata(rng: random.Random, store: Store) -> Mapping[str, str] | None:
    """CI metadata on most versions; left out on some, as the schema allows."""
    store.build_number += rng.randint(1, 4)
    if rng.random() < 0.3:
        return None
    return {
        "buildNumber": str(store.build_number),
        "trigger": rng.choice(("push", "manual", "schedule")),
    }
