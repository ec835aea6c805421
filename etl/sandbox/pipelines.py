"""Deterministic synthetic release pipelines, progressions and release policies.

Drawn from the dataset RNG after the deployments (see `generate`), in a fixed order, so the
same seed gives the same releases. Pipelines and policies are built directly as the JSON reps
LaunchDarkly serves; progressions are `Progression` records because `advance()` moves them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime

from etl.sandbox import vocab
from etl.sandbox.config import Scale
from etl.sandbox.generate import DAY, HISTORY_MS, HOUR, span
from etl.sandbox.records import JSON, Progression, hex_id, new_uuid
from etl.sandbox.store import Releases

GO_RELEASE_METHODS: tuple[str, ...] = ("guarded-release", "progressive-release")
"""`ReleaseMethod` enum of ld-openapi.json (api-client-go v22); the sandbox default."""

PY_RELEASE_METHODS: tuple[str, ...] = (
    "guarded-release",
    "immediate-release",
    "progressive-release",
)
"""`ReleaseMethod` enum of the newer launchdarkly-api 25.0.1 Python client."""


def generate_releases(
    rng: random.Random,
    environments: dict[str, list[JSON]],
    plan: Scale,
    release_methods: Sequence[str],
    now_ms: int,
) -> Releases:
    """Pipelines (the first is each project's default), their progressions, and policies."""
    releases = Releases()
    for project_key, envs in environments.items():
        releases.pipelines[project_key] = []
        for number, (pipeline_key, name) in enumerate(vocab.PIPELINES[: plan.pipelines]):
            created = now_ms - HISTORY_MS - rng.randint(1, 200) * DAY
            pipeline = pipeline_rep(rng, pipeline_key, name, envs, created, is_default=number == 0)
            releases.pipelines[project_key].append(pipeline)
            count = max(1, round(plan.progressions * rng.uniform(0.8, 1.2)))
            releases.progressions[(project_key, pipeline_key)] = progressions(
                rng, pipeline, count, oldest=now_ms - HISTORY_MS, newest=now_ms
            )
        environment_keys = [env["key"] for env in envs]
        releases.policies[project_key] = policies(
            rng, project_key, environment_keys, plan.policies, release_methods
        )
    return releases


def environment_summary(env: JSON) -> JSON:
    """The `EnvironmentSummary` embedded in pipeline audiences."""
    return {"_links": env["_links"], "key": env["key"], "name": env["name"], "color": env["color"]}


def pipeline_rep(
    rng: random.Random,
    key: str,
    name: str,
    environments: Sequence[JSON],
    created_at: int,
    *,
    is_default: bool,
) -> JSON:
    """A `ReleasePipeline` with 2–5 phases over the project's environments.

    `createdAt` is an RFC 3339 string, the one non-integer timestamp in these APIs.
    """
    count = rng.randint(2, 5)
    names = [vocab.PHASE_NAMES[i] for i in sorted(rng.sample(range(4), count - 1))]
    names.append(vocab.PHASE_NAMES[4])
    phases = []
    for index, phase_name in enumerate(names):
        env = environments[round(index * (len(environments) - 1) / (count - 1))]
        audiences = [_audience(rng, env, n) for n in range(rng.choice((1, 1, 2)))]
        phases.append({"id": hex_id(rng), "audiences": audiences, "name": phase_name})
    body: JSON = {
        "createdAt": datetime.fromtimestamp(created_at / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
    }
    if rng.random() < 0.7:
        body["description"] = f"{name}: {count} phases to production"
    body["key"] = key
    body["name"] = name
    body["phases"] = phases
    body["tags"] = rng.sample(("example-tag", "backend", "frontend", "mobile"), rng.randint(0, 2))
    body["_version"] = rng.randint(1, 9)
    body["_access"] = {
        "denied": [],
        "allowed": [{"action": "updateReleasePhaseStatus", "reason": _access_reason(key)}],
    }
    body["isProjectDefault"] = is_default
    body["_isLegacy"] = False
    return body


def _audience(rng: random.Random, env: JSON, index: int) -> JSON:
    """An `Audience` in one environment, with an `AudienceConfiguration`."""
    strategy = rng.choice(vocab.RELEASE_STRATEGIES)
    configuration: JSON = {
        "releaseStrategy": strategy,
        "requireApproval": env["key"] == "production",
    }
    if rng.random() < 0.5:
        configuration["notifyMemberIds"] = [hex_id(rng)]
    if rng.random() < 0.5:
        configuration["notifyTeamKeys"] = [rng.choice(vocab.TEAMS)]
    if strategy == "guarded-rollout":
        configuration["releaseGuardianConfiguration"] = {
            "monitoringWindowMilliseconds": rng.choice((60_000, 300_000, 3_600_000)),
            "rolloutWeight": rng.choice((10, 25, 50)),
            "rollbackOnRegression": rng.random() < 0.8,
            "randomizationUnit": "user",
        }
    body: JSON = {
        "environment": environment_summary(env),
        "name": f"{env['name']} — audience {index + 1}",
        "configuration": configuration,
    }
    if index > 0 or rng.random() < 0.3:
        body["segmentKeys"] = [rng.choice(("beta-testers", "employees", "eu-customers"))]
    return body


def _access_reason(resource: str) -> JSON:
    return {
        "resources": [f"proj/*:pipeline/{resource}"],
        "actions": ["*"],
        "effect": "allow",
        "role_name": "writer",
    }


def progressions(
    rng: random.Random, pipeline: JSON, count: int, *, oldest: int, newest: int
) -> list[Progression]:
    """`count` releases on `pipeline` created in [oldest, newest]: ~60% active, rest completed.

    Flag keys are unique per pipeline; the numeric suffix keeps them unique at large scale.
    """
    phase_ids = [phase["id"] for phase in pipeline["phases"]]
    made = []
    for n in range(count):
        created = rng.randint(oldest, newest)
        flag = f"{rng.choice(vocab.FLAG_WORDS)}-{pipeline['key'][:3]}{n}"
        if rng.random() < 0.6 or newest - created < DAY:
            made.append(Progression(flag, created, rng.choice(phase_ids), None))
        else:
            completed = min(newest, created + span(rng, HOUR, 20 * DAY))
            made.append(Progression(flag, created, None, completed))
    return sorted(made, key=lambda p: p.sort_key)


# --------------------------------------------------------------------------- policies


def policies(
    rng: random.Random,
    project_key: str,
    environment_keys: Sequence[str],
    count: int,
    methods: Sequence[str],
) -> list[JSON]:
    """`count` ranked policies cycling through `methods`, then the project's default policy.

    The default policy (key "default") has the lowest priority (highest rank) and no scope, so
    `excludeDefault=true` has something to drop.
    """
    made = []
    for rank in range(1, count + 1):
        method = methods[(rank - 1) % len(methods)]
        scope: JSON = {}
        if rng.random() < 0.8:
            scope["environmentKeys"] = rng.sample(
                list(environment_keys), rng.randint(1, len(environment_keys))
            )
        if rng.random() < 0.5:
            scope["flagTagKeys"] = rng.sample(["frontend", "backend", "mobile", "ops"], 2)
        made.append(
            _policy(rng, project_key, f"{method.split('-')[0]}-{rank}", method, rank, scope)
        )
    made.append(_policy(rng, project_key, "default", methods[0], count + 1, None))
    return made


def _policy(
    rng: random.Random, project_key: str, key: str, method: str, rank: int, scope: JSON | None
) -> JSON:
    body: JSON = {}
    if rng.random() < 0.5:
        body["_access"] = {
            "denied": [],
            "allowed": [{"action": "updateReleasePolicy", "reason": _access_reason(key)}],
        }
    body["_id"] = new_uuid(rng)
    if scope:
        body["scope"] = scope
    body["rank"] = rank
    body["releaseMethod"] = method
    stages = [
        {"allocation": allocation, "durationMillis": rng.choice((60_000, 600_000, 3_600_000))}
        for allocation in sorted(rng.sample((1_000, 5_000, 10_000, 25_000, 50_000), 3))
    ]
    if method == "guarded-release":
        body["guardedReleaseConfig"] = {
            "rolloutContextKindKey": "user",
            "minSampleSize": rng.choice((100, 500, 1000)),
            "rollbackOnRegression": rng.random() < 0.8,
            "metricKeys": rng.sample(vocab.METRICS, 2),
            "metricGroupKeys": ["backend-metrics"],
            "stages": stages,
        }
    elif method == "progressive-release":
        body["progressiveReleaseConfig"] = {"rolloutContextKindKey": "user", "stages": stages}
    name = "Default release policy" if key == "default" else f"{project_key} {key} ✓"
    body["name"] = name
    body["key"] = key
    return body
