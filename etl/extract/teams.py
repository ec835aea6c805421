"""Ownership and Insights: what the `teams` family reads, and how the doctor checks it.

```
account  ──► applications (offset) · teams (offset) · insight groups (offset, expand=scores)
project  ──► insight scores (one request per environment)
         └─► Insights pull requests (cursor, one chain per window of `created_at`)
```
Pull requests are read by time window like deployments (`etl.state`, `PULL_REQUESTS_TIMELINE`):
a first run reads the whole backfill range as one chain per project, later runs the pull
requests created since the last run plus the re-verification slice. A window commits only
with its last page (`WindowDone`): the listing's order is documented only as "by created or
merged date", so no page can promise that everything newer was read, and a killed run reads
its unfinished windows again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from etl.config import Stream
from etl.extract.chains import run_cursor_chain
from etl.extract.family import Extract, Probe
from etl.extract.streams import LISTING_LIMIT, StreamReader, _ms
from etl.paginate import CursorPaginator, OffsetPaginator, Page, PageRequest
from etl.records import Fetched, WindowDone
from etl.state import Timeline, Window

APPLICATIONS = "/api/v2/applications"
TEAMS = "/api/v2/teams"
GROUPS = "/api/v2/engineering-insights/insights/groups"
SCORES = "/api/v2/engineering-insights/insights/scores"
PULL_REQUESTS = "/api/v2/engineering-insights/pull-requests"
GROUPS_LIMIT = 20
"""The groups listing takes at most 20 per page (its `limit` is "between 1 and 20")."""
PR_EXPAND = "deployments,flagReferences,leadTime"

PULL_REQUESTS_PARTITION = "(pull requests)"
"""The environment key of the pull-request windows: the listing is per project (no
LaunchDarkly key has parentheses)."""
PULL_REQUESTS_TIMELINE = Timeline(
    "pull_requests", "pull_request_timeline", "created_at", "d.status = 'merged'"
)
"""By `created_at`, per project (`sql/views/52_pull_request_timeline.sql`). A merged pull
request still moves (deployments add to its lead time until it is deployed); an open one may
stay open for weeks, and is left to the re-verification sweep."""

STREAMS = frozenset(
    {
        Stream.APPLICATIONS,
        Stream.TEAMS,
        Stream.INSIGHT_GROUPS,
        Stream.INSIGHT_SCORES,
        Stream.PULL_REQUESTS,
    }
)


async def start_account(reader: StreamReader, group: asyncio.TaskGroup) -> None:
    """The account-wide listings, once per run."""
    listings: tuple[tuple[Stream, str, dict[str, str], bool, int], ...] = (
        (Stream.APPLICATIONS, APPLICATIONS, {}, False, LISTING_LIMIT),
        (Stream.TEAMS, TEAMS, {}, False, LISTING_LIMIT),
        (Stream.INSIGHT_GROUPS, GROUPS, {"expand": "scores"}, True, GROUPS_LIMIT),
    )
    for stream, path, params, beta, limit in listings:
        if stream in reader.streams:
            work = _listing(reader, stream, OffsetPaginator(path, params, limit), beta=beta)
            group.create_task(reader.guarded(stream, f"{stream.value} listing", work))


async def _listing(
    reader: StreamReader, stream: Stream, paginator: OffsetPaginator, *, beta: bool
) -> None:
    await reader.listing(
        stream, {}, paginator, route=paginator.path, beta=beta, key_fields=("key",)
    )


async def start_project(
    reader: StreamReader, group: asyncio.TaskGroup, project_key: str, environments: Sequence[str]
) -> None:
    """A project's scores (per environment) and its pull-request windows."""
    if Stream.INSIGHT_SCORES in reader.streams:
        for environment_key in environments:
            group.create_task(
                reader.guarded(
                    Stream.INSIGHT_SCORES,
                    f"insight scores {project_key}/{environment_key}",
                    _scores(reader, project_key, environment_key),
                )
            )
    if Stream.PULL_REQUESTS in reader.streams:
        windows = await reader.plan(project_key, [PULL_REQUESTS_PARTITION], PULL_REQUESTS_TIMELINE)
        for window in windows:
            where = (
                f"pull requests {project_key} "
                f"[{window.from_at:%Y-%m-%d %H:%M}, {window.to_at:%Y-%m-%d %H:%M})"
            )
            group.create_task(
                reader.guarded(Stream.PULL_REQUESTS, where, _pull_requests(reader, window))
            )


async def _scores(reader: StreamReader, project_key: str, environment_key: str) -> None:
    params = {"projectKey": project_key, "environmentKey": environment_key}
    page = await reader.api.get_page(
        PageRequest(SCORES, params),
        route=SCORES,
        beta=True,
        stream=Stream.INSIGHT_SCORES,
        whole=True,
    )
    context = {"project_key": project_key, "environment_key": environment_key}
    await reader.emit(Fetched(Stream.INSIGHT_SCORES, context, page.items, source=page.source))


async def _pull_requests(reader: StreamReader, window: Window) -> None:
    """One window's pull requests (created in [from, to)), committed with the last page."""
    params = {
        "projectKey": window.project_key,
        "from": _ms(window.from_at),
        # The API's window is inclusive at both ends; ours are half-open [from, to).
        "to": str(int(_ms(window.to_at)) - 1),
        "limit": str(reader.settings.sync.page_size),
        "expand": PR_EXPAND,
    }
    context = {"project_key": window.project_key}
    done = WindowDone(
        window.project_key, window.environment_key, window.from_at, window.to_at, window.stream
    )

    async def on_page(page: Page, last: bool) -> None:
        await reader.emit(
            Fetched(
                Stream.PULL_REQUESTS,
                context,
                page.items,
                marks=(done,) if last else (),
                source=page.source,
            )
        )

    async with reader.chains:
        await run_cursor_chain(
            reader.api,
            CursorPaginator(PULL_REQUESTS, params),
            route=PULL_REQUESTS,
            beta=True,
            stream=Stream.PULL_REQUESTS,
            on_page=on_page,
        )


def probes(
    project: str, environments: Sequence[str], streams: frozenset[Stream], now: datetime
) -> list[Probe]:
    """One cheap request per route the family reads (account listings: the doctor checks once)."""
    found: list[Probe] = []
    if Stream.APPLICATIONS in streams:
        found.append(
            Probe("applications", APPLICATIONS, APPLICATIONS, Stream.APPLICATIONS,
                  {"limit": "1"}, beta=False, account=True)
        )  # fmt: skip
    if Stream.TEAMS in streams:
        found.append(
            Probe("teams", TEAMS, TEAMS, Stream.TEAMS, {"limit": "1"}, beta=False, account=True)
        )
    if Stream.INSIGHT_GROUPS in streams:
        found.append(
            Probe("insight groups", GROUPS, GROUPS, Stream.INSIGHT_GROUPS, {"limit": "1"},
                  account=True)
        )  # fmt: skip
    if Stream.INSIGHT_SCORES in streams and environments:
        params = {"projectKey": project, "environmentKey": environments[0]}
        found.append(
            Probe("insight scores", SCORES, SCORES, Stream.INSIGHT_SCORES, params, whole=True)
        )
    if Stream.PULL_REQUESTS in streams:
        day_ago = str(int(now.timestamp() * 1000) - 86_400_000)
        params = {"projectKey": project, "limit": "1", "from": day_ago}
        found.append(
            Probe("pull requests", PULL_REQUESTS, PULL_REQUESTS, Stream.PULL_REQUESTS, params)
        )
    return found


EXTRACT = Extract(STREAMS, start_project, probes, account=start_account)
