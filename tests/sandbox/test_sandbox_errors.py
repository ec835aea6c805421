"""400, 401, 403 and 404 bodies in LaunchDarkly's error shapes."""

from __future__ import annotations

import pytest

from etl.sandbox import SANDBOX_TOKEN

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
RELEASES = "/api/v2/projects/payments/release-pipelines/standard-pipeline/releases"
VALID = {"projectKey": "payments", "environmentKey": "production"}


def attributes(body):
    assert body["code"] == "invalid_request"
    assert body["message"] == "validation failed"
    return [error["attribute"] for error in body["errors"]]


async def test_missing_project_key_names_the_attribute(api):
    reply = await api.get(DEPLOYMENTS, {"environmentKey": "production"})
    assert reply.status == 400
    assert reply.json() == {
        "code": "invalid_request",
        "message": "validation failed",
        "errors": [{"attribute": "projectKey", "reason": "must be present"}],
    }


async def test_every_missing_attribute_is_listed(api):
    reply = await api.get(DEPLOYMENTS)
    assert attributes(reply.json()) == ["projectKey", "environmentKey"]


@pytest.mark.parametrize("limit", ["101", "0", "-1", "ten", "2.5"])
async def test_limit_outside_1_to_100_or_not_an_integer_is_rejected(api, limit):
    reply = await api.get(DEPLOYMENTS, {**VALID, "limit": limit})
    assert reply.status == 400
    assert attributes(reply.json()) == ["limit"]


@pytest.mark.parametrize("name", ["from", "to"])
async def test_non_numeric_window_bound_is_rejected(api, name):
    reply = await api.get(DEPLOYMENTS, {**VALID, name: "yesterday"})
    assert reply.status == 400
    assert attributes(reply.json()) == [name]


@pytest.mark.parametrize("cursor", ["garbled!!", "00000000-0000-4000-8000-000000000000"])
async def test_unknown_or_garbled_cursor_is_rejected(api, cursor):
    reply = await api.get(DEPLOYMENTS, {**VALID, "after": cursor})
    assert reply.status == 400
    assert attributes(reply.json()) == ["after"]


async def test_completed_status_with_active_phase_is_rejected(api, sandbox):
    phase = sandbox.dataset.pipeline("payments", "standard-pipeline")["phases"][0]["id"]
    reply = await api.get(RELEASES, {"filter": f"status:completed,activePhaseId:{phase}"})
    assert reply.status == 400
    assert attributes(reply.json()) == ["filter"]


async def test_unknown_release_status_is_rejected(api):
    reply = await api.get(RELEASES, {"filter": "status:paused"})
    assert reply.status == 400


async def test_offset_limit_must_be_numeric(api):
    reply = await api.get("/api/v2/projects", {"limit": "many"}, beta=False)
    assert reply.status == 400
    assert attributes(reply.json()) == ["limit"]


async def test_exclude_default_must_be_boolean(api):
    reply = await api.get("/api/v2/projects/payments/release-policies", {"excludeDefault": "yes"})
    assert reply.status == 400
    assert reply.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "wrong"}, {"Authorization": f"Bearer {SANDBOX_TOKEN}"}],
    ids=["missing", "wrong", "bearer"],
)
async def test_requests_without_the_raw_token_get_401(api, headers):
    reply = await api.get("/api/v2/projects", headers={**headers, "LD-API-Version": "beta"})
    assert reply.status == 401
    assert reply.json() == {"code": "unauthorized", "message": "Invalid access token"}


async def test_admin_routes_need_the_token_too(api):
    reply = await api.get("/_sandbox/truth/counts", auth=False)
    assert reply.status == 401


@pytest.mark.parametrize(
    "path",
    [
        DEPLOYMENTS,
        "/api/v2/projects/payments/release-pipelines",
        RELEASES,
        "/api/v2/projects/payments/release-policies",
    ],
)
async def test_beta_routes_without_the_beta_header_get_403(api, path):
    reply = await api.get(path, VALID if path == DEPLOYMENTS else None, beta=False)
    assert reply.status == 403
    assert reply.json()["code"] == "forbidden"


async def test_projects_do_not_need_the_beta_header(api):
    headers = {"Authorization": SANDBOX_TOKEN, "LD-API-Version": "20240415"}
    assert (await api.get("/api/v2/projects", headers=headers)).status == 200


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (DEPLOYMENTS, {"projectKey": "nope", "environmentKey": "production"}),
        (DEPLOYMENTS, {"projectKey": "payments", "environmentKey": "nope"}),
        (DEPLOYMENTS + "/00000000-0000-4000-8000-000000000000", None),
        ("/api/v2/projects/nope/environments", None),
        ("/api/v2/projects/nope/release-pipelines", None),
        ("/api/v2/projects/payments/release-pipelines/nope/releases", None),
        ("/api/v2/projects/nope/release-policies", None),
        ("/api/v2/no-such-route", None),
    ],
)
async def test_unknown_resources_get_a_json_404(api, path, params):
    reply = await api.get(path, params)
    assert reply.status == 404
    assert reply.json() == {"code": "not_found", "message": "Invalid resource identifier"}


async def test_wrong_method_gets_a_json_405(api, http, sandbox):
    async with http.post(sandbox.url("/api/v2/projects"), headers=api.headers()) as resp:
        assert resp.status == 405
        assert (await resp.json())["code"] == "method_not_allowed"
