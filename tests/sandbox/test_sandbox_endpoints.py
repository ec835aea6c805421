"""Every route answers 200 with LaunchDarkly's shape (details are in the schema test)."""

from __future__ import annotations

from datetime import datetime

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
WIDE = {"from": "0", "to": "9999999999999"}


async def test_projects_lists_every_project_with_links(api, sandbox):
    body = (await api.get("/api/v2/projects", beta=False)).json()
    assert [p["key"] for p in body["items"]] == [p["key"] for p in sandbox.dataset.projects]
    assert body["totalCount"] == len(body["items"])
    assert {"first", "last", "self"} <= body["_links"].keys()


async def test_environments_carry_fake_sdk_and_mobile_keys(api):
    body = (await api.get("/api/v2/projects/payments/environments", beta=False)).json()
    assert [env["key"] for env in body["items"]] == ["staging", "production"]
    for env in body["items"]:
        assert env["apiKey"].startswith("sdk-")
        assert env["mobileKey"].startswith("mob-")


async def test_deployments_page_has_total_items_and_self_link(api):
    params = {"projectKey": "payments", "environmentKey": "production", "limit": "5", **WIDE}
    reply = await api.get(DEPLOYMENTS, params)
    body = reply.json()
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert list(body) == ["totalCount", "items", "_links"]
    assert len(body["items"]) == 5
    assert body["totalCount"] > 5
    assert body["_links"]["self"]["href"].startswith(DEPLOYMENTS + "?")


async def test_deployments_leave_out_expansions_unless_asked(api):
    params = {"projectKey": "payments", "environmentKey": "production", **WIDE}
    items = (await api.get(DEPLOYMENTS, params)).json()["items"]
    assert not any("pullRequests" in item or "flagReferences" in item for item in items)
    assert any("leadTimeStages" in item for item in items)


async def test_deployments_expand_pull_requests_and_flag_references(api):
    params = {
        "projectKey": "payments",
        "environmentKey": "production",
        "expand": "pullRequests,flagReferences",
        **WIDE,
    }
    for item in (await api.get(DEPLOYMENTS, params)).json()["items"]:
        assert item["pullRequests"]["totalCount"] == item["numberOfPullRequests"]
        assert item["flagReferences"]["totalCount"] == len(item["flagReferences"]["items"])


async def test_single_deployment_is_served_by_id(api, sandbox):
    wanted = sandbox.dataset.truth().deployments[("payments", "production")][0]
    path = f"{DEPLOYMENTS}/{wanted['id']}"
    body = (await api.get(path, {"expand": "pullRequests,flagReferences"})).json()
    assert body == wanted


async def test_release_pipelines_have_iso_created_at_and_phases(api):
    body = (await api.get("/api/v2/projects/payments/release-pipelines")).json()
    assert body["totalCount"] == len(body["items"]) == 2
    assert "_links" not in body
    for pipeline in body["items"]:
        datetime.fromisoformat(pipeline["createdAt"])
        assert 2 <= len(pipeline["phases"]) <= 5


async def test_releases_report_counts_and_phase_summary(api, sandbox):
    path = "/api/v2/projects/payments/release-pipelines/standard-pipeline/releases"
    body = (await api.get(path, {"limit": "100"})).json()
    items = body["items"]
    active = [item for item in items if "activePhaseId" in item]
    assert body["totalCount"] == len(items)
    assert body["activeCount"] == len(active)
    assert body["completedCount"] == len(items) - len(active)
    assert sum(phase["releaseCount"] for phase in body["phases"]) == len(active)
    assert all("_completedAt" in item for item in items if "activePhaseId" not in item)


async def test_release_policies_include_the_default_policy(api):
    body = (await api.get("/api/v2/projects/payments/release-policies")).json()
    assert body["totalCount"] == len(body["items"])
    assert body["items"][-1]["key"] == "default"
    assert [p["rank"] for p in body["items"]] == sorted(p["rank"] for p in body["items"])


async def test_index_describes_the_sandbox_without_a_token(api):
    body = (await api.get("/", auth=False, beta=False)).json()
    assert DEPLOYMENTS in body["routes"]
    assert body["scale"] == "tiny"
