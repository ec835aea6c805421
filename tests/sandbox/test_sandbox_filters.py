"""Query filters narrow results exactly as ld-api.md describes."""

from __future__ import annotations

from etl.sandbox import SandboxConfig

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
NOW_MS = 1_767_225_600_000
DAY = 86_400_000
WIDE = {"from": "0", "to": "9999999999999"}
PIPELINES = "/api/v2/projects/payments/release-pipelines"
RELEASES = PIPELINES + "/standard-pipeline/releases"


def truth_of(sandbox, project="payments", env="production"):
    return sandbox.dataset.truth().deployments[(project, env)]


def base(project="payments", env="production"):
    return {"projectKey": project, "environmentKey": env, "limit": "100", **WIDE}


async def test_application_key_accepts_a_comma_list(api, sandbox):
    truth = truth_of(sandbox)
    apps = sorted({rep["applicationKey"] for rep in truth})[:2]
    body = (await api.get(DEPLOYMENTS, {**base(), "applicationKey": ",".join(apps)})).json()
    assert [i["id"] for i in body["items"]] == [
        rep["id"] for rep in truth if rep["applicationKey"] in apps
    ]
    assert body["totalCount"] == len(body["items"])


async def test_kind_filter_returns_only_that_kind(api, sandbox):
    truth = truth_of(sandbox)
    expected = [rep["id"] for rep in truth if rep["kind"] == "rollback"]
    body = (await api.get(DEPLOYMENTS, {**base(), "kind": "rollback"})).json()
    assert expected
    assert [item["id"] for item in body["items"]] == expected


async def test_status_filter_returns_only_that_status(api, sandbox):
    truth = [rep for pair in sandbox.dataset.truth().deployments.values() for rep in pair]
    running = [rep for rep in truth if rep["status"] == "started"]
    assert running
    found = []
    for project, env in sandbox.dataset.truth().deployments:
        body = (await api.get(DEPLOYMENTS, {**base(project, env), "status": "started"})).json()
        found += body["items"]
    assert sorted(i["id"] for i in found) == sorted(rep["id"] for rep in running)
    assert not any("endedAt" in item or "durationMs" in item for item in found)


async def test_from_and_to_bound_started_at_inclusively(api, sandbox):
    truth = truth_of(sandbox)
    start, end = truth[-5]["startedAt"], truth[2]["startedAt"]
    params = {**base(), "from": str(start), "to": str(end)}
    body = (await api.get(DEPLOYMENTS, params)).json()
    assert [i["id"] for i in body["items"]] == [r["id"] for r in truth[2:-4]]


async def test_window_defaults_to_the_last_seven_days_of_real_time(start_sandbox, api_for):
    sandbox = await start_sandbox(SandboxConfig(scale="tiny"))
    truth = truth_of(sandbox)
    params = {"projectKey": "payments", "environmentKey": "production", "limit": "100"}
    body = (await api_for(sandbox).get(DEPLOYMENTS, params)).json()
    week_ago = sandbox.dataset.now_ms - 7 * DAY
    expected = [r["id"] for r in truth if r["startedAt"] >= week_ago + 120_000]
    assert expected
    assert set(expected) <= {item["id"] for item in body["items"]}
    assert all(item["startedAt"] >= week_ago - 60_000 for item in body["items"])


async def test_pipeline_query_filter_matches_key_name_or_description(api):
    body = (await api.get(PIPELINES, {"filter": "query:MOBILE"})).json()
    assert [p["key"] for p in body["items"]] == ["mobile-staged-rollout"]


async def test_pipeline_env_filter_keeps_pipelines_with_an_audience_there(api):
    body = (await api.get(PIPELINES, {"filter": "env:production"})).json()
    assert body["totalCount"] == 2
    none = (await api.get(PIPELINES, {"filter": "env:nowhere"})).json()
    assert none == {"items": [], "totalCount": 0}


async def test_release_status_filter_selects_active_or_completed(api, sandbox):
    truth = sandbox.dataset.truth().release_progressions[("payments", "standard-pipeline")]
    active = (await api.get(RELEASES, {"filter": "status:active", "limit": "100"})).json()
    done = (await api.get(RELEASES, {"filter": "status:completed", "limit": "100"})).json()
    assert active["items"] == [r for r in truth if "activePhaseId" in r]
    assert done["items"] == [r for r in truth if "_completedAt" in r]
    assert active["totalCount"] + done["totalCount"] == len(truth)


async def test_release_phase_filter_selects_releases_in_that_phase(api, sandbox):
    truth = sandbox.dataset.truth().release_progressions[("payments", "standard-pipeline")]
    phase = next(r["activePhaseId"] for r in truth if "activePhaseId" in r)
    body = (await api.get(RELEASES, {"filter": f"activePhaseId:{phase}"})).json()
    assert body["items"] == [r for r in truth if r.get("activePhaseId") == phase]


async def test_release_status_active_with_phase_equals_phase_alone(api, sandbox):
    truth = sandbox.dataset.truth().release_progressions[("payments", "standard-pipeline")]
    phase = next(r["activePhaseId"] for r in truth if "activePhaseId" in r)
    alone = (await api.get(RELEASES, {"filter": f"activePhaseId:{phase}"})).json()
    both_filter = f"status equals active,activePhaseId:{phase}"
    both = (await api.get(RELEASES, {"filter": both_filter})).json()
    assert both["items"] == alone["items"]
    assert both["totalCount"] == alone["totalCount"]


async def test_exclude_default_drops_the_default_policy(api):
    path = "/api/v2/projects/payments/release-policies"
    everything = (await api.get(path)).json()
    without = (await api.get(path, {"excludeDefault": "true"})).json()
    assert without["items"] == [p for p in everything["items"] if p["key"] != "default"]
    assert without["totalCount"] == everything["totalCount"] - 1


async def test_project_filter_by_keys(api):
    body = (
        await api.get("/api/v2/projects", {"filter": "keys:mobile|payments"}, beta=False)
    ).json()
    assert [p["key"] for p in body["items"]] == ["payments"]


async def test_projects_expand_environments(api, sandbox):
    body = (await api.get("/api/v2/projects", {"expand": "environments"}, beta=False)).json()
    for project in body["items"]:
        assert project["environments"]["items"] == sandbox.dataset.environments[project["key"]]
