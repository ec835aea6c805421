"""Pages that repeat: a server answering every request with the same page costs a few requests.

LaunchDarkly's own spec examples are such a server: each listing's example is one fixed page
(two copies of one item, a `totalCount` that may disagree with them) and the deployments
example's `next` link names the same cursor forever. LaunchDarkly cannot run here, so these
tests serve those examples (verbatim from tests/data/ld-openapi.json), and schema-valid
placeholder pages, from an aiohttp server that ignores `offset` and `after`, and count what
the sync asked it.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from etl.client import ApiClient
from etl.errors import PaginationError
from etl.extract.chains import read_offset_listing, run_cursor_chain
from etl.paginate import CursorPaginator, OffsetPaginator
from etl.ratelimit import RateLimiter
from etl.rawjson import decode
from etl.secret import Secret
from etl.sync import sync
from tests.property.openapi import payloads

SPEC = json.loads((Path(__file__).parents[1] / "data" / "ld-openapi.json").read_text())
TOKEN = "api-fixed-pages-token-0123456789"
PROJECTS = "/api/v2/projects"
ENVIRONMENTS = "/api/v2/projects/{projectKey}/environments"
DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
PIPELINES = "/api/v2/projects/{projectKey}/release-pipelines"
PROGRESSIONS = "/api/v2/projects/{projectKey}/release-pipelines/{pipelineKey}/releases"
FLAGS = "/api/v2/flags/{projectKey}"
FLAG_EVENTS = "/api/v2/engineering-insights/flag-events"
EXAMPLE_CURSOR = "a4290006-1fd1-4ca5-acf7-9f31fac61cf5"  # DeploymentCollectionRep's next.href


def spec_example(route: str) -> Any:
    """The example LaunchDarkly's spec gives for the 200 answer of GET `route`."""
    answer = SPEC["paths"][route]["get"]["responses"]["200"]["content"]["application/json"]
    schema = SPEC["components"]["schemas"][answer["schema"]["$ref"].rsplit("/", 1)[-1]]
    return schema["example"]


def _pattern(route: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", route) + "$")


ROUTES = [(route, _pattern(route)) for route in SPEC["paths"]]


@dataclass
class FixedPages:
    """The server: its URL, a token, and every request it answered (route, query)."""

    url: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    config: Any = field(default_factory=lambda: SimpleNamespace(token=TOKEN))

    def count(self) -> Counter[str]:
        return Counter(route for route, _ in self.requests)


@asynccontextmanager
async def fixed_pages(body_for: Callable[[str], Any]) -> AsyncIterator[FixedPages]:
    """A server that answers every GET of a spec route with `body_for(route)`, whatever the
    query (offset, after, limit, from/to)."""
    server = FixedPages("")

    async def answer(request: web.Request) -> web.Response:
        route = next((route for route, pattern in ROUTES if pattern.match(request.path)), None)
        if route is None:
            raise web.HTTPNotFound
        server.requests.append((route, dict(request.query)))
        return web.Response(body=orjson.dumps(body_for(route)), content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    async with TestServer(app, host="127.0.0.1") as test_server:
        server.url = str(test_server.make_url("")).rstrip("/")
        yield server


@asynccontextmanager
async def client_of(body_for: Callable[[str], Any]) -> AsyncIterator[tuple[FixedPages, ApiClient]]:
    """`fixed_pages(body_for)` and the API client a sync would use against it."""
    async with fixed_pages(body_for) as server:
        api = ApiClient(server.url, Secret(TOKEN), RateLimiter(None, 4))
        async with api:
            yield server, api


async def test_the_spec_examples_cost_a_few_requests_per_listing_and_end_partial(
    settings_for,
):
    async with fixed_pages(spec_example) as server:
        settings = settings_for(server)
        report = await sync(settings)
    counts = server.count()
    assert counts[PROJECTS] == 3  # count 0 beside 2 items: re-read, offset 2 repeats offset 0
    assert counts[ENVIRONMENTS] == 1  # count 2, two items: read once
    assert counts[PIPELINES] == 3  # count 1 beside 2 items: as projects
    assert counts[PROGRESSIONS] == 4  # count 8: offset 2 repeats; re-read: offsets 0 and 2
    assert counts[FLAGS] == 3  # count 1 beside 2 items: as projects
    for stream, route in (("deployments", DEPLOYMENTS), ("flag_events", FLAG_EVENTS)):
        failed_windows = report.streams[stream].errors
        assert failed_windows and counts[route] == 2 * len(failed_windows)
        for error in failed_windows:
            # Both examples' `next` links name the same cursor.
            assert f"after={EXAMPLE_CURSOR!r}" in error and "repeats page 1" in error
    assert (report.status, report.exit_code) == ("partial", 3)
    for stream in ("projects", "release_pipelines", "release_progressions", "flags"):
        (warning,) = [w for w in report.streams[stream].warnings if "repeats" in w]
        assert "offset 2 only repeats items read on earlier pages" in warning
        assert report.streams[stream].errors == []
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        for table in ("projects", "environments", "release_pipelines", "release_progressions"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,), table


PLACEHOLDER = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def read_listing(page: dict[str, Any]) -> tuple[list[Any], list[str], int]:
    """Read the projects listing from a server serving `page` for every offset: the items
    read, the warnings, and the requests it cost."""

    async def run() -> tuple[list[Any], list[str], int]:
        warnings: list[str] = []
        async with client_of(lambda route: page) as (server, api):
            items, _, _ = await read_offset_listing(
                api, OffsetPaginator(PROJECTS, {}), route=PROJECTS, beta=False,
                stream="projects", key_fields=("key",), warn=warnings.append,
            )  # fmt: skip
        return [decode(item) for item in items], warnings, len(server.requests)

    return asyncio.run(run())


@PLACEHOLDER
@given(page=payloads("Projects"))
@example(page={"_links": {}, "items": [], "totalCount": 2**53 - 1})
@example(page={"_links": {}, "items": [{"key": "a"}, {"key": "b"}], "totalCount": 2**53 - 1})
def test_a_placeholder_page_served_for_every_offset_is_read_once_in_at_most_4_requests(page):
    items, warnings, requests = read_listing(page)
    assert requests <= 4
    served = list({orjson.dumps(item): item for item in page["items"]}.values())
    assert items == served  # every distinct item, once
    more_than_one_page = requests > 1
    if more_than_one_page and served:
        assert any("only repeats items read on earlier pages" in w for w in warnings)


@PLACEHOLDER
@given(page=payloads("DeploymentCollectionRep"), empty=st.booleans())
def test_a_placeholder_page_served_for_every_new_cursor_fails_its_chain_in_2_requests(page, empty):
    """Each answer carries a cursor never seen before: only the page itself repeats."""
    if empty:
        page["items"] = []

    def with_fresh_cursor(route: str) -> dict[str, Any]:
        href = f"{DEPLOYMENTS}?after={uuid.uuid4()}"
        return {**page, "_links": {"next": {"href": href, "type": "application/json"}}}

    async def run() -> tuple[str, int]:
        async with client_of(with_fresh_cursor) as (server, api):
            with pytest.raises(PaginationError) as failure:
                await run_cursor_chain(
                    api, CursorPaginator(DEPLOYMENTS, {"projectKey": "p"}),
                    route=DEPLOYMENTS, beta=True, stream="deployments", on_page=ignore,
                )  # fmt: skip
        return str(failure.value), len(server.requests)

    message, requests = asyncio.run(run())
    assert requests == 2
    cursor = message.split("after=", 1)[1].split("&", 1)[0]
    assert f"the page at cursor after='{cursor}' repeats page 1 of this chain" in message


async def ignore(page: Any, last: bool) -> None:
    pass
