"""The response hook lets tests break successful bodies in ways a real API might."""

from __future__ import annotations

import orjson
import pytest

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
PARAMS = {
    "projectKey": "payments",
    "environmentKey": "production",
    "from": "0",
    "to": "9999999999999",
}


async def test_hook_sees_plain_dicts_and_can_drop_a_required_field(start_sandbox, api_for):
    def drop_status(request, body):
        del body["items"][0]["status"]
        return body

    api = api_for(await start_sandbox(hook=drop_status))
    items = (await api.get(DEPLOYMENTS, {**PARAMS, "expand": "pullRequests"})).json()["items"]
    assert "status" not in items[0]
    assert "status" in items[1]


async def test_hook_can_add_unknown_fields(start_sandbox, api_for):
    api = api_for(await start_sandbox(hook=lambda request, body: {**body, "surprise": [1, 2]}))
    assert (await api.get("/api/v2/projects", beta=False)).json()["surprise"] == [1, 2]


async def test_hook_can_return_malformed_bytes(start_sandbox, api_for):
    api = api_for(await start_sandbox(hook=lambda request, body: b'{"items": [}'))
    reply = await api.get("/api/v2/projects", beta=False)
    assert reply.status == 200
    with pytest.raises(orjson.JSONDecodeError):
        reply.json()


async def test_hook_can_repeat_a_cursor_forever(start_sandbox, api_for):
    def same_next(request, body):
        if "next" in body["_links"]:
            body["_links"]["next"]["href"] = f"{DEPLOYMENTS}?after={body['items'][0]['id']}"
        return body

    api = api_for(await start_sandbox(hook=same_next))
    first = (await api.get(DEPLOYMENTS, {**PARAMS, "limit": "2"})).json()
    after = first["_links"]["next"]["href"].split("after=")[1]
    second = (await api.get(DEPLOYMENTS, {**PARAMS, "limit": "2", "after": after})).json()
    assert second["_links"]["next"]["href"] == first["_links"]["next"]["href"].replace(
        after, second["items"][0]["id"]
    )


async def test_hook_is_not_applied_to_errors(start_sandbox, api_for):
    api = api_for(await start_sandbox(hook=lambda request, body: b"broken"))
    reply = await api.get(DEPLOYMENTS)
    assert reply.status == 400
    assert reply.json()["code"] == "invalid_request"
