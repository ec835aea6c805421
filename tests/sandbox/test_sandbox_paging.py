"""Cursor paging (deployments) and offset paging (everything else) collect exactly the truth."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from etl.sandbox import SandboxConfig

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
NOW_MS = 1_767_225_600_000
WIDE = {"from": "0", "to": "9999999999999"}
EXPAND = "pullRequests,flagReferences"


def pairs(sandbox):
    return [
        (project["key"], env["key"])
        for project in sandbox.dataset.projects
        for env in sandbox.dataset.environments[project["key"]]
    ]


@pytest.mark.parametrize("style", ["full", "after-only"])
async def test_cursor_paging_collects_exactly_the_truth(start_sandbox, api_for, style):
    sandbox = await start_sandbox(SandboxConfig(scale="tiny", now_ms=NOW_MS, next_href=style))
    api = api_for(sandbox)
    truth = sandbox.dataset.truth().deployments
    for project, env in pairs(sandbox):
        params = {"projectKey": project, "environmentKey": env, "expand": EXPAND, **WIDE}
        collected = await api.collect_deployments({**params, "limit": "3"})
        assert collected == truth[(project, env)]


async def test_full_next_href_repeats_every_original_parameter(api):
    params = {"projectKey": "payments", "environmentKey": "production", "limit": "3", **WIDE}
    body = (await api.get(DEPLOYMENTS, params)).json()
    query = dict(parse_qsl(urlsplit(body["_links"]["next"]["href"]).query))
    assert query == {**params, "after": body["items"][-1]["id"]}


async def test_full_next_href_can_be_followed_as_is(api):
    params = {"projectKey": "payments", "environmentKey": "production", "limit": "3", **WIDE}
    first = (await api.get(DEPLOYMENTS, params)).json()
    href = first["_links"]["next"]["href"]
    path, _, query = href.partition("?")
    second = (await api.get(path, dict(parse_qsl(query)))).json()
    assert second["items"][0]["startedAt"] <= first["items"][-1]["startedAt"]
    assert {i["id"] for i in first["items"]}.isdisjoint(i["id"] for i in second["items"])


async def test_after_only_next_href_carries_only_the_cursor(start_sandbox, api_for):
    sandbox = await start_sandbox(
        SandboxConfig(scale="tiny", now_ms=NOW_MS, next_href="after-only")
    )
    params = {"projectKey": "payments", "environmentKey": "production", "limit": "3", **WIDE}
    body = (await api_for(sandbox).get(DEPLOYMENTS, params)).json()
    assert body["_links"]["next"]["href"] == f"{DEPLOYMENTS}?after={body['items'][-1]['id']}"


async def test_last_page_has_no_next_link(api):
    params = {"projectKey": "payments", "environmentKey": "production", "limit": "100", **WIDE}
    body = (await api.get(DEPLOYMENTS, params)).json()
    assert len(body["items"]) == body["totalCount"]
    assert "next" not in body["_links"]


async def test_total_count_is_the_total_across_pages(api):
    params = {"projectKey": "payments", "environmentKey": "production", "limit": "2", **WIDE}
    first = (await api.get(DEPLOYMENTS, params)).json()
    after = first["items"][-1]["id"]
    second = (await api.get(DEPLOYMENTS, {**params, "after": after})).json()
    assert first["totalCount"] == second["totalCount"] > 2


async def test_deployments_are_ordered_newest_first_with_id_tie_break(api, sandbox):
    for pair, reps in sandbox.dataset.truth().deployments.items():
        keys = [(rep["startedAt"], rep["id"]) for rep in reps]
        assert keys == sorted(keys, reverse=True), pair


async def test_deployments_added_while_paging_do_not_shift_pages(api, sandbox):
    params = {"projectKey": "payments", "environmentKey": "staging", "limit": "4", **WIDE}
    before = sandbox.dataset.truth().deployments[("payments", "staging")]
    first = (await api.get(DEPLOYMENTS, params)).json()
    assert (await api.post("/_sandbox/advance", {"now_ms": str(NOW_MS + 3_600_000)})).status == 200
    rest = await api.collect_deployments({**params, "after": first["items"][-1]["id"]})
    ids = [item["id"] for item in first["items"] + rest]
    assert ids == [rep["id"] for rep in before]


async def test_before_cursor_pages_back_towards_newer_deployments(api, sandbox):
    params = {"projectKey": "payments", "environmentKey": "production", "limit": "3", **WIDE}
    first = (await api.get(DEPLOYMENTS, params)).json()
    second = (await api.get(DEPLOYMENTS, {**params, "after": first["items"][-1]["id"]})).json()
    prev_href = second["_links"]["prev"]["href"]
    back = (await api.get(DEPLOYMENTS, dict(parse_qsl(urlsplit(prev_href).query)))).json()
    assert back["items"] == first["items"]
    assert "prev" not in first["_links"]


@pytest.mark.parametrize(
    ("path", "truth_of"),
    [
        ("/api/v2/projects", lambda t: t.projects),
        ("/api/v2/projects/payments/environments", lambda t: t.environments["payments"]),
        ("/api/v2/projects/payments/release-pipelines", lambda t: t.release_pipelines["payments"]),
        (
            "/api/v2/projects/payments/release-pipelines/standard-pipeline/releases",
            lambda t: t.release_progressions[("payments", "standard-pipeline")],
        ),
    ],
)
async def test_offset_paging_collects_exactly_the_truth(api, sandbox, path, truth_of):
    assert await api.collect_offset(path) == truth_of(sandbox.dataset.truth())


async def test_offset_links_name_only_pages_that_exist(api):
    first = (await api.get("/api/v2/projects", {"limit": "1"}, beta=False)).json()
    assert set(first["_links"]) == {"first", "next", "last", "self"}
    last = (await api.get("/api/v2/projects", {"limit": "1", "offset": "1"}, beta=False)).json()
    assert set(last["_links"]) == {"first", "prev", "last", "self"}
    assert last["_links"]["prev"]["href"] == "/api/v2/projects?limit=1&offset=0"


async def test_release_progressions_links_hold_only_self(api):
    path = "/api/v2/projects/payments/release-pipelines/standard-pipeline/releases"
    body = (await api.get(path, {"limit": "2"})).json()
    assert body["_links"] == {
        "self": {"href": f"{path}?limit=2&offset=0", "type": "application/json"}
    }
