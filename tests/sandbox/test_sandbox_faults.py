"""Injected faults: each kind breaks a response the way a flaky network or server would."""

from __future__ import annotations

import time

import aiohttp
import orjson
import pytest

from etl.sandbox import REQUEST_LOG, SandboxConfig

NOW_MS = 1_767_225_600_000
PROJECTS = "/api/v2/projects"


async def faulty(start_sandbox, api_for, *kinds, rate=1.0, **knobs):
    config = SandboxConfig(scale="tiny", now_ms=NOW_MS, fault_rate=rate, fault_kinds=kinds, **knobs)
    sandbox = await start_sandbox(config)
    return sandbox, api_for(sandbox)


@pytest.mark.parametrize(
    ("kind", "code"),
    [("500", "internal_server_error"), ("502", "bad_gateway"), ("503", "service_unavailable")],
)
async def test_server_error_faults_answer_with_a_json_error(start_sandbox, api_for, kind, code):
    _, api = await faulty(start_sandbox, api_for, kind)
    reply = await api.get(PROJECTS, beta=False)
    assert reply.status == int(kind)
    assert reply.json()["code"] == code
    assert "X-Ratelimit-Reset" in reply.headers


async def test_drop_closes_the_connection_without_a_response(start_sandbox, api_for):
    _, api = await faulty(start_sandbox, api_for, "drop")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.get(PROJECTS, beta=False)


async def test_truncate_sends_half_the_promised_body(start_sandbox, api_for):
    _, api = await faulty(start_sandbox, api_for, "truncate")
    with pytest.raises(aiohttp.ClientPayloadError):
        await api.get(PROJECTS, beta=False)


async def test_garble_sends_a_complete_200_that_is_not_json(start_sandbox, api_for):
    _, bad = await faulty(start_sandbox, api_for, "garble")
    reply = await bad.get(PROJECTS, beta=False)
    assert reply.status == 200
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    with pytest.raises(orjson.JSONDecodeError):
        reply.json()


async def test_faults_are_recorded_in_the_request_log(start_sandbox, api_for):
    sandbox, api = await faulty(start_sandbox, api_for, "503")
    await api.get(PROJECTS, beta=False)
    [record] = sandbox.app[REQUEST_LOG]
    assert (record.path, record.status, record.fault) == (PROJECTS, 503, "503")


async def test_admin_routes_are_never_faulted(start_sandbox, api_for):
    _, api = await faulty(start_sandbox, api_for, "500", "drop")
    statuses = [(await api.get("/_sandbox/truth/counts")).status for _ in range(5)]
    assert statuses == [200] * 5


async def test_unauthenticated_requests_are_refused_before_faults(start_sandbox, api_for):
    _, api = await faulty(start_sandbox, api_for, "500")
    assert (await api.get(PROJECTS, auth=False, beta=False)).status == 401


async def test_fault_sequence_repeats_for_the_same_seed(start_sandbox, api_for):
    runs = []
    for _ in range(2):
        sandbox, api = await faulty(start_sandbox, api_for, "500", "503", rate=0.5)
        for _ in range(20):
            await api.get(PROJECTS, beta=False)
        runs.append([record.status for record in sandbox.app[REQUEST_LOG]])
    assert runs[0] == runs[1]
    assert {200, 500, 503} <= set(runs[0])


async def test_latency_delays_api_responses(start_sandbox, api_for):
    _, api = await faulty(start_sandbox, api_for, "500", rate=0.0, latency_ms=150)
    started = time.perf_counter()
    await api.get(PROJECTS, beta=False)
    assert time.perf_counter() - started >= 0.15
