"""The flag routes: valid against the spec, and consistent with what the sandbox serves."""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from etl.sandbox import Dataset, SandboxConfig
from etl.sandbox.flags import DAY_MS, status_of, world
from tests.sandbox.test_sandbox_schema import NOW_MS, SPEC_PATH, WIDE, Spec, Walker

FLAG_EVENTS = "/api/v2/engineering-insights/flag-events"


@pytest.fixture(scope="module")
def schemas() -> Spec:
    return Spec(orjson.loads(SPEC_PATH.read_bytes()))


@pytest.fixture(scope="module")
def small() -> Dataset:
    return Dataset.generate(42, "small", NOW_MS)


async def test_every_flag_body_matches_its_schema(start_sandbox, api_for, schemas):
    sandbox = await start_sandbox(SandboxConfig(scale="small", now_ms=NOW_MS))
    walker = Walker(api_for(sandbox), schemas)
    for project in sandbox.dataset.projects:
        key = project["key"]
        await walker.offset_pages(f"/api/v2/flags/{key}", beta=False)
        await walker.check(f"/api/v2/flags/{key}", {"filter": "state:archived"}, beta=False)
        for env in sandbox.dataset.environments[key]:
            await walker.check(f"/api/v2/flag-statuses/{key}/{env['key']}", beta=False)
            query = {"projectKey": key, "environmentKey": env["key"], "limit": "100",
                     "expand": "experiments", **WIDE}  # fmt: skip
            while True:
                body = (await walker.check(FLAG_EVENTS, query)).json()
                if "next" not in body["_links"]:
                    break
                after = dict(parse_qsl(urlsplit(body["_links"]["next"]["href"]).query))["after"]
                query = {**query, "after": after}
    await walker.check(FLAG_EVENTS, {"projectKey": "payments", "environmentKey": "production"},
                       beta=False)  # fmt: skip
    assert set(walker.validated) == {
        "FeatureFlags",
        "FeatureFlagStatuses",
        "FlagEventCollectionRep",
        "ForbiddenErrorRep",
    }


def test_flag_events_fall_on_the_flags_deployments_reference(small):
    truth = small.truth()
    referenced = {
        (ref["projectKey"], ref["flagKey"])
        for reps in truth.deployments.values()
        for rep in reps
        for ref in rep["flagReferences"]["items"]
    }
    flags = truth.extras["flags"]
    served = {(p, f["key"]) for p, items in flags.flags.items() for f in items}
    evented = {(x["projectKey"], x["flagKey"]) for xs in flags.events.values() for x in xs}
    assert referenced <= served
    assert len(evented & referenced) >= len(referenced) // 2


def test_some_flag_events_carry_an_experiment_running_at_the_time(small):
    events = [x for xs in small.truth().extras["flags"].events.values() for x in xs]
    tied = [x for x in events if x["experiments"]["items"]]
    assert 0 < len(tied) < len(events)
    for event in tied:
        (experiment,) = event["experiments"]["items"]
        iteration = experiment["iteration"]
        assert iteration["startedAt"] <= event["eventTime"] <= iteration.get("endedAt", 2**62)


def test_statuses_agree_with_the_events(small):
    found = world(small)
    now = small.now_ms
    seen = Counter()
    for (project, env), events in found.events.items():
        for flag in found.flags[project]:
            status, last = status_of(flag, env, now)
            seen[status] += 1
            mine = [e for e in events if e.flag is flag]
            if status == "launched":  # no change for a week, the last one a full rollout
                assert mine and mine[0].size == "large" and now - mine[0].time_ms >= 7 * DAY_MS
            if status == "inactive":  # no evaluation (and so no change) for a week
                assert last is None or now - last >= 7 * DAY_MS
                assert all(e.time_ms <= (last or flag.created_ms) for e in mine)
            if status == "new":
                assert not mine and now - flag.created_ms < 7 * DAY_MS
    assert set(seen) == {"new", "active", "inactive", "launched"}


def test_there_are_stale_healthy_archived_and_permanent_flags(small):
    found = world(small)
    now = small.now_ms
    flags = [f for items in found.flags.values() for f in items]
    assert any(f.archived_ms is not None for f in flags)
    assert any(not f.temporary for f in flags)
    stale = healthy = 0
    for flag in flags:
        for env in flag.behaviours:
            status, _ = status_of(flag, env, now)
            old = now - flag.created_ms >= 30 * DAY_MS
            if flag.temporary and flag.archived_ms is None and old and status != "active":
                stale += status in ("inactive", "launched")
            else:
                healthy += 1
    assert stale and healthy


def test_an_advance_brings_new_flag_events_and_keeps_the_old_ones():
    dataset = Dataset.generate(42, "small", NOW_MS)
    before = {x["id"]: x for xs in dataset.truth().extras["flags"].events.values() for x in xs}
    dataset.advance(NOW_MS + 3 * 3_600_000)
    after = {x["id"]: x for xs in dataset.truth().extras["flags"].events.values() for x in xs}
    assert before.items() <= after.items()
    added = [x for i, x in after.items() if i not in before]
    assert added and all(NOW_MS < x["eventTime"] <= NOW_MS + 3 * 3_600_000 for x in added)
    assert dataset.counts()["flag_events"] == len(after)
