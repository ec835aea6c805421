"""The ownership and Insights routes: valid against the spec, and consistent with the data."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from etl.sandbox import SandboxConfig
from etl.sandbox.insights import insights_truth
from etl.sandbox.owners import TEAMS
from etl.sandbox.records import Deployment
from etl.sandbox.scores import dora_scores
from tests.sandbox.test_sandbox_schema import NOW_MS, SPEC_PATH, WIDE, Spec, Walker

APPLICATIONS = "/api/v2/applications"
TEAMS_PATH = "/api/v2/teams"
GROUPS = "/api/v2/engineering-insights/insights/groups"
SCORES = "/api/v2/engineering-insights/insights/scores"
PULL_REQUESTS = "/api/v2/engineering-insights/pull-requests"
EXPAND = "deployments,flagReferences,leadTime"


@pytest.fixture(scope="module")
def schemas() -> Spec:
    return Spec(orjson.loads(SPEC_PATH.read_bytes()))


async def _pull_requests(api, project: str, **extra: str) -> list[dict]:
    """Every pull request of a project, following `_links.next` with the original params."""
    query = {"projectKey": project, "limit": "100", "expand": EXPAND, **WIDE, **extra}
    items: list[dict] = []
    while True:
        reply = await api.get(PULL_REQUESTS, query)
        assert reply.status == 200, reply.body
        body = reply.json()
        items.extend(body["items"])
        if "next" not in body["_links"]:
            return items
        after = dict(parse_qsl(urlsplit(body["_links"]["next"]["href"]).query))["after"]
        query = {**query, "after": after}


async def test_every_insights_body_matches_its_schema(start_sandbox, api_for, schemas):
    sandbox = await start_sandbox(SandboxConfig(scale="small", now_ms=NOW_MS))
    walker = Walker(api_for(sandbox), schemas)
    await walker.offset_pages(APPLICATIONS, beta=False)
    await walker.check(APPLICATIONS, {"expand": "flags", "sort": "-name"}, beta=False)
    await walker.offset_pages(TEAMS_PATH, beta=False)
    await walker.check(TEAMS_PATH, {"expand": "members"}, beta=False)
    await walker.offset_pages(GROUPS, {"expand": "scores,environment,metadata"})
    for project in sandbox.dataset.projects:
        for env in sandbox.dataset.environments[project["key"]]:
            await walker.check(SCORES, {"projectKey": project["key"], "environmentKey": env["key"]})
        query = {"projectKey": project["key"], "limit": "100", "expand": EXPAND, **WIDE}
        await walker.check(PULL_REQUESTS, query)
    await walker.check(GROUPS, {"limit": "21"})
    await walker.check(PULL_REQUESTS, {"projectKey": "payments"}, beta=False)
    await walker.check(SCORES, {"projectKey": "payments"})
    assert set(walker.validated) == {
        "ApplicationCollectionRep",
        "Teams",
        "InsightGroupCollection",
        "InsightScores",
        "PullRequestCollectionRep",
        "ValidationFailedErrorRep",
        "ForbiddenErrorRep",
    }


async def test_applications_are_the_ones_deployments_name_with_every_kind_of_owner(
    start_sandbox, api_for
):
    sandbox = await start_sandbox(SandboxConfig(scale="small", now_ms=NOW_MS))
    api = api_for(sandbox)
    apps = await api.collect_offset(APPLICATIONS)
    teams = await api.collect_offset(TEAMS_PATH)
    deployed = {d.application_key for d in sandbox.dataset.store.deployments.values()}
    assert {app["key"] for app in apps} == deployed
    team_keys = {team["key"] for team in teams}
    maintainers = [app.get("_maintainer", {}) for app in apps]
    owning = {m["team"]["key"] for m in maintainers if "team" in m}
    assert owning and owning <= team_keys and team_keys - owning
    assert any("member" in m for m in maintainers)
    assert sum(not m for m in maintainers) == 1


async def test_teams_carry_no_member_list(api):
    teams = await api.collect_offset(TEAMS_PATH)
    assert [team["key"] for team in teams] == [key for key, _, _ in TEAMS]
    assert not any("members" in team or "maintainers" in team for team in teams)


async def test_groups_collect_applications_of_their_project(start_sandbox, api_for):
    sandbox = await start_sandbox(SandboxConfig(scale="small", now_ms=NOW_MS))
    reply = await api_for(sandbox).get(GROUPS, {"expand": "scores"})
    groups = reply.json()["items"]
    store = sandbox.dataset.store
    assert len(groups) == 6
    for group in groups:
        assert set(group["applicationKeys"]) <= set(store.applications[group["projectKey"]])
        assert group["environmentKey"] in store.environments[group["projectKey"]]
        assert group["scores"]["velocity"]["aggregateOf"] == ["deploymentFrequency", "leadTime"]


async def test_pull_requests_are_open_merged_closed_and_deployed(sandbox, api):
    listed = {project: await _pull_requests(api, project) for project in ("payments", "storefront")}
    statuses = {pr["status"] for prs in listed.values() for pr in prs}
    assert statuses == {"open", "merged", "closed", "deployed"}
    carried = {
        pr_id
        for d in sandbox.dataset.store.deployments.values()
        if d.project_key in listed
        for pr_id in d.pr_ids
    }
    served = {pr["id"] for prs in listed.values() for pr in prs}
    assert carried < served
    deployed = [pr for prs in listed.values() for pr in prs if pr["status"] == "deployed"]
    assert all(pr["id"] in carried and pr["deployments"]["totalCount"] for pr in deployed)
    truth = insights_truth(sandbox.dataset)
    assert listed["payments"] == truth.pull_requests["payments"]


async def test_pull_request_window_filters_on_creation(sandbox, api):
    every = await _pull_requests(api, "payments")
    middle = sorted(pr["createTime"] for pr in every)[len(every) // 2]
    newer = await _pull_requests(api, "payments", **{"from": str(middle)})
    assert newer == [pr for pr in every if pr["createTime"] >= middle]


async def test_an_advance_brings_new_pull_requests_and_moves_an_application(sandbox, api):
    before = insights_truth(sandbox.dataset)
    sandbox.dataset.advance(NOW_MS + 6 * 3_600_000)
    after = insights_truth(sandbox.dataset)
    old_ids = {pr["id"] for prs in before.pull_requests.values() for pr in prs}
    new = [pr for prs in after.pull_requests.values() for pr in prs if pr["id"] not in old_ids]
    assert new and all(pr["createTime"] > NOW_MS - 3 * 86_400_000 for pr in new)
    moved = [
        (old.get("_maintainer"), fresh.get("_maintainer"))
        for old, fresh in zip(before.applications, after.applications, strict=True)
        if old.get("_maintainer") != fresh.get("_maintainer")
    ]
    assert len(moved) == 1 and "team" in moved[0][0] and "team" in moved[0][1]


def _deployment(number: int, started_at: int, *, kind: str = "deployment", hours: float = 2.0):
    return Deployment(
        id=f"00000000-0000-4000-8000-{number:012d}",
        project_key="p",
        environment_key="production",
        application_key="a",
        application_version="v",
        started_at=started_at,
        ended_at=started_at + 60_000,
        status="finished",
        kind=kind,
        archived=False,
        metadata=None,
        pr_ids=(),
        flags=(),
        contributors=1,
        lines_added=1,
        lines_deleted=1,
        lead_time=int(hours * 3_600_000),
    )


def test_stand_in_scores_follow_the_documented_formula():
    day = 86_400_000
    # Seven deployments in seven days (one a day: excellent, at its bottom), one a rollback
    # (1/7 = 14.3 %: fair), lead times 2 h and 50 h (mean 26 h over the six non-rollbacks
    # of 2 h ×5 and 50 h: (10 + 50) / 6 = 10 h: excellent).
    records = [_deployment(n, n * day, hours=50 if n == 0 else 2) for n in range(6)]
    records.append(_deployment(6, 6 * day, kind="rollback"))
    scores = dora_scores(records, 0, 7 * day)
    assert scores["deploymentFrequency"]["indicator"] == "excellent"
    assert scores["deploymentFrequency"]["score"] == 90
    assert scores["deploymentFailureRate"]["indicator"] == "fair"
    assert scores["leadTime"]["indicator"] == "excellent"
    assert dora_scores([], 0, 7 * day)["leadTime"]["indicator"] == "notCalculated"
