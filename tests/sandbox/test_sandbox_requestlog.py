"""The request log and its summary route let tests prove client behaviour from the server."""

from __future__ import annotations

from etl.sandbox import REQUEST_LOG

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"


async def test_each_request_is_logged_with_query_status_and_api_version(api, sandbox):
    await api.get(DEPLOYMENTS, {"projectKey": "payments", "environmentKey": "staging"})
    [record] = sandbox.app[REQUEST_LOG]
    assert record.method == "GET"
    assert record.path == DEPLOYMENTS
    assert record.query == {"projectKey": "payments", "environmentKey": "staging"}
    assert (record.status, record.fault, record.api_version) == (200, None, "beta")


async def test_summary_counts_statuses_faults_and_repeated_pages(api):
    await api.get("/api/v2/projects", beta=False)
    await api.get("/api/v2/projects", beta=False)
    await api.get("/api/v2/projects", auth=False)
    summary = (await api.get("/_sandbox/requests/summary")).json()
    assert summary == {
        "total": 3,
        "byStatus": {"200": 2, "401": 1},
        "byFault": {"none": 3},
        "repeatedPages": 1,
        "deploymentPages": 0,
    }
