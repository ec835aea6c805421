"""How the sandbox world changes between syncs (`Dataset.advance`).

Each function applies one family of changes and counts what it did. Counts for deployments
and PRs are taken by comparing the stores before and after (identity of the frozen records),
so the report cannot drift from what actually changed.
"""

from __future__ import annotations

import random
from dataclasses import replace

from etl.sandbox import generate, pipelines, vocab
from etl.sandbox.config import Scale
from etl.sandbox.generate import DAY, MINUTE, span
from etl.sandbox.records import JSON, Deployment, Progression
from etl.sandbox.store import Releases, Store


def advance_deployments(
    rng: random.Random, store: Store, scale: Scale, now_ms: int
) -> dict[str, int]:
    """Finish running deployments, archive a few recent ones, add new ones up to `now_ms`.

    New deployments start in (previous anchor, now_ms]. Each either promotes an application's
    newest version to its next environment (reusing that version's PRs) or deploys a new
    version to the first environment. The last quarter start within ten minutes of `now_ms`
    and are left running.
    """
    previous = store.now_ms
    store.now_ms = now_ms
    pull_requests_before = dict(store.pull_requests)
    running = sorted(
        (record for record in store.deployments.values() if record.ended_at is None),
        key=lambda record: (record.started_at, record.id),
    )
    failed = 0
    for record in running:
        done, _changed = generate.finish(rng, store, record, now_ms)
        failed += done.status == "failed"
    finished_ids = {record.id for record in running}
    candidates = sorted(
        (
            record
            for record in store.deployments.values()
            if not record.archived
            and record.id not in finished_ids
            and record.started_at >= previous - 7 * DAY
        ),
        key=lambda record: record.sort_key,
    )
    archived = rng.sample(candidates, min(len(candidates), rng.randint(1, 3)))
    for record in archived:
        store.deployments[record.id] = record._replace(archived=True)

    count = scale.new_deployments
    still_running = max(1, count // 4)
    starts = sorted(rng.randint(previous + 1, now_ms) for _ in range(count - still_running))
    starts += sorted(
        max(previous + 1, now_ms - span(rng, MINUTE, 10 * MINUTE)) for _ in range(still_running)
    )
    added_running = 0
    for number, start in enumerate(starts):
        record = _new_deployment(rng, store, start, force_running=number >= count - still_running)
        added_running += record.ended_at is None

    changed_prs = sum(
        1 for pr_id, pr in pull_requests_before.items() if store.pull_requests[pr_id] is not pr
    )
    return {
        "deployments_finished": len(running),
        "deployments_failed": failed,
        "deployments_archived": len(archived),
        "deployments_added": count,
        "deployments_running": added_running,
        "pull_requests_added": len(store.pull_requests) - len(pull_requests_before),
        "pull_requests_changed": changed_prs,
    }


def _new_deployment(
    rng: random.Random, store: Store, start: int, *, force_running: bool
) -> Deployment:
    project_key = rng.choice(sorted(store.environments))
    app = rng.choice(store.applications[project_key])
    chain = store.environments[project_key]
    frontier = store.frontier.get((project_key, app))
    promotable = None
    if frontier is not None and frontier.env_index + 1 < len(chain):
        last = store.deployments[frontier.deployment_id]
        if last.status == "finished" and last.ended_at is not None and last.ended_at < start:
            promotable = frontier
    if promotable is not None and rng.random() < 0.5:
        version, env_index = promotable.version, promotable.env_index + 1
    else:
        version, env_index = generate.new_version(rng, store, project_key, app, start), 0
    duration = span(rng, 90_000, 40 * MINUTE)
    if force_running or start + duration > store.now_ms:
        outcome = "started"
    else:
        outcome = "failed" if rng.random() < 0.08 else "finished"
    return generate.deploy(
        rng, store, version, env_index, start, "deployment", outcome=outcome, duration=duration
    )


def advance_releases(
    rng: random.Random,
    releases: Releases,
    environments: dict[str, list[JSON]],
    *,
    previous: int,
    now_ms: int,
    replace_pipeline: bool,
) -> dict[str, int]:
    """Move progressions along, add new ones, maybe replace a pipeline, re-rank two policies.

    A replaced pipeline is deleted first and its successor created last, so no progression is
    both added and deleted, or both added and moved, within one advance.
    """
    counts = {
        "progressions_advanced": 0,
        "progressions_completed": 0,
        "progressions_added": 0,
        "progressions_deleted": 0,
        "pipelines_added": 0,
        "pipelines_deleted": 0,
        "policies_changed": 0,
    }
    if replace_pipeline:
        counts["progressions_deleted"] += _delete_pipeline(rng, releases)
        counts["pipelines_deleted"] += 1
    for project_key in sorted(releases.pipelines):
        for pipeline in releases.pipelines[project_key]:
            pair = (project_key, pipeline["key"])
            moved, done = _progress(rng, releases, pair, pipeline, previous, now_ms)
            counts["progressions_advanced"] += moved
            counts["progressions_completed"] += done
            counts["progressions_added"] += _add_progressions(
                rng, releases, pair, pipeline, rng.randint(0, 2), previous, now_ms
            )
    if replace_pipeline:
        counts["progressions_added"] += _add_pipeline(rng, releases, environments, previous, now_ms)
        counts["pipelines_added"] += 1
    elif counts["progressions_added"] == 0:
        project_key = sorted(releases.pipelines)[0]
        pipeline = releases.pipelines[project_key][0]
        pair = (project_key, pipeline["key"])
        counts["progressions_added"] += _add_progressions(
            rng, releases, pair, pipeline, 1, previous, now_ms
        )
    counts["policies_changed"] = _rerank(rng, releases)
    return counts


def _progress(
    rng: random.Random,
    releases: Releases,
    pair: tuple[str, str],
    pipeline: JSON,
    previous: int,
    now_ms: int,
) -> tuple[int, int]:
    """Advance ~30% of active releases a phase; complete ~40% of those in the last phase."""
    phase_ids = [phase["id"] for phase in pipeline["phases"]]
    moved = completed = 0
    updated = []
    for progression in releases.progressions[pair]:
        if progression.active_phase_id is None:
            updated.append(progression)
            continue
        position = phase_ids.index(progression.active_phase_id)
        draw = rng.random()
        if position == len(phase_ids) - 1 and draw < 0.4:
            done_at = rng.randint(max(previous, progression.created_at) + 1, now_ms)
            progression = replace(progression, active_phase_id=None, completed_at=done_at)
            completed += 1
        elif position < len(phase_ids) - 1 and draw < 0.3:
            progression = replace(progression, active_phase_id=phase_ids[position + 1])
            moved += 1
        updated.append(progression)
    releases.progressions[pair] = updated
    return moved, completed


def _add_progressions(
    rng: random.Random,
    releases: Releases,
    pair: tuple[str, str],
    pipeline: JSON,
    count: int,
    previous: int,
    now_ms: int,
) -> int:
    first_phase = pipeline["phases"][0]["id"]
    items = releases.progressions.setdefault(pair, [])
    for _ in range(count):
        releases.serial += 1
        flag = f"{rng.choice(vocab.FLAG_WORDS)}-r{releases.serial}"
        items.append(Progression(flag, rng.randint(previous + 1, now_ms), first_phase, None))
    items.sort(key=lambda progression: progression.sort_key)
    return count


def _delete_pipeline(rng: random.Random, releases: Releases) -> int:
    """Delete one non-default pipeline with its progressions; return how many went with it.

    Runs before progressions move, so every deleted progression existed before this advance.
    """
    candidates = [
        (project_key, pipeline)
        for project_key in sorted(releases.pipelines)
        for pipeline in releases.pipelines[project_key]
        if not pipeline.get("isProjectDefault")
    ]
    project_key, gone = rng.choice(candidates)
    releases.pipelines[project_key].remove(gone)
    return len(releases.progressions.pop((project_key, gone["key"]), []))


def _add_pipeline(
    rng: random.Random,
    releases: Releases,
    environments: dict[str, list[JSON]],
    previous: int,
    now_ms: int,
) -> int:
    """Create a pipeline in a random project with a few new releases; return their number."""
    project_key = rng.choice(sorted(releases.pipelines))
    releases.serial += 1
    base_key, name = vocab.PIPELINES[releases.serial % len(vocab.PIPELINES)]
    key = f"{base_key}-{releases.serial}"
    pipeline = pipelines.pipeline_rep(
        rng, key, f"{name} #{releases.serial}", environments[project_key], now_ms, is_default=False
    )
    releases.pipelines[project_key].append(pipeline)
    return _add_progressions(
        rng, releases, (project_key, key), pipeline, rng.randint(1, 4), previous, now_ms
    )


def _rerank(rng: random.Random, releases: Releases) -> int:
    """Swap the ranks of two adjacent non-default policies in one project; return 2 (or 0)."""
    projects = [
        key
        for key in sorted(releases.policies)
        if sum(policy["key"] != "default" for policy in releases.policies[key]) >= 2
    ]
    if not projects:
        return 0
    policies = releases.policies[rng.choice(projects)]
    ranked = [index for index, policy in enumerate(policies) if policy["key"] != "default"]
    first = rng.choice(ranked[:-1])
    second = ranked[ranked.index(first) + 1]
    one, two = policies[first], policies[second]
    policies[first] = {**two, "rank": one["rank"]}
    policies[second] = {**one, "rank": two["rank"]}
    return 2
