"""A log of every request the sandbox answered, for tests and the summary route.

Tests prove client behaviour from what the server saw (as aiohttp_retry's tests count server
hits): "no page fetched twice", "zero 429s", "three retries after a 503".
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from etl.sandbox.records import JSON


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One answered request.

    Attributes:
        method: HTTP method.
        path: URL path without the query string.
        query: Query parameters (the last value wins when a name repeats).
        status: Status sent; 0 when a "drop" fault closed the connection without a response.
        fault: The injected fault ("500", "drop", "truncate", ...) or None.
        api_version: The `LD-API-Version` header, if any.
        at: Wall-clock time the response was ready (Unix seconds).
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    fault: str | None
    api_version: str | None
    at: float


REQUEST_LOG: web.AppKey[list[RequestRecord]] = web.AppKey("request_log")
FAULT: web.RequestKey[str] = web.RequestKey("fault")


@web.middleware
async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: record each request once its response is decided."""
    response = await handler(request)
    fault = request.get(FAULT)
    request.app[REQUEST_LOG].append(
        RequestRecord(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            status=0 if fault == "drop" else response.status,
            fault=fault,
            api_version=request.headers.get("LD-API-Version"),
            at=time.time(),
        )
    )
    return response


def summarize(records: Sequence[RequestRecord]) -> JSON:
    """Totals over API requests: by status, by fault, pages fetched again, deployment pages.

    `deploymentPages` counts 200 answers of the deployments listing (what a benchmark compares
    with the floor).
    `repeatedPages` counts 200 responses for a (path, query) that had already been answered
    with 200, which is what a client that re-fetches pages it already has would cause.
    """
    api = [record for record in records if record.path.startswith("/api/")]
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    repeated = 0
    for record in api:
        if record.status == 200 and record.fault is None:
            key = (record.path, tuple(sorted(record.query.items())))
            repeated += key in seen
            seen.add(key)
    return {
        "total": len(api),
        "byStatus": dict(sorted(Counter(str(record.status) for record in api).items())),
        "byFault": dict(sorted(Counter(record.fault or "none" for record in api).items())),
        "repeatedPages": repeated,
        "deploymentPages": sum(
            1
            for record in api
            if record.path == "/api/v2/engineering-insights/deployments" and record.status == 200
        ),
    }
