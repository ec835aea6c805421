"""Flags, flag statuses and flag events: which chains a project's flags cost.

```
project ──► flags (offset listing, summary form)
        ├─► flag statuses (one request per environment, no paging)
        └─► flag events (beta; per environment: one cursor chain per window, newest first,
                         planned like deployments: `state.plan_windows` with FLAG_EVENTS)
```
Flags and statuses are not beta routes; flag events are (a token without the beta access
ends only `flag_events` partial). Flags come in LaunchDarkly's default summary form: no
targets, rules or prerequisites are asked for (`summary=0` would add end-user keys).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from etl.config import Stream
from etl.extract.family import Extract, Probe
from etl.extract.streams import LISTING_LIMIT, NewestFirst, StreamReader
from etl.paginate import OffsetPaginator, PageRequest
from etl.records import Fetched, ScopeComplete
from etl.state import Timeline, Window

FLAGS = "/api/v2/flags/{projectKey}"
FLAG_STATUSES = "/api/v2/flag-statuses/{projectKey}/{environmentKey}"
FLAG_EVENTS = "/api/v2/engineering-insights/flag-events"

FLAG_EVENT_TIMELINE = Timeline("flag_events", "flag_events", "event_time")
"""Flag events are read by `eventTime`, like deployments by `startedAt`; an event never
changes once it happened (its experiments' iterations may end later: the re-verification
sweep re-reads them)."""


async def start(
    reader: StreamReader, group: asyncio.TaskGroup, project_key: str, environments: Sequence[str]
) -> None:
    """The project's flags listing, a status request per environment, flag event chains."""
    if Stream.FLAGS in reader.streams:
        group.create_task(
            reader.guarded(Stream.FLAGS, f"flags of {project_key}", _flags(reader, project_key))
        )
    if Stream.FLAG_STATUSES in reader.streams:
        for environment_key in environments:
            group.create_task(
                reader.guarded(
                    Stream.FLAG_STATUSES,
                    f"flag statuses of {project_key}/{environment_key}",
                    _statuses(reader, project_key, environment_key),
                )
            )
    if Stream.FLAG_EVENTS in reader.streams and environments:
        for window in await reader.plan(project_key, environments, FLAG_EVENT_TIMELINE):
            where = (
                f"flag events {project_key}/{window.environment_key} "
                f"[{window.from_at:%Y-%m-%d %H:%M}, {window.unread_to:%Y-%m-%d %H:%M})"
            )
            group.create_task(reader.guarded(Stream.FLAG_EVENTS, where, _events(reader, window)))


async def _flags(reader: StreamReader, project_key: str) -> None:
    await reader.listing(
        Stream.FLAGS,
        {"project_key": project_key},
        OffsetPaginator(FLAGS.format(projectKey=project_key), {}, LISTING_LIMIT),
        route=FLAGS,
        beta=False,
        key_fields=("key",),
    )


async def _statuses(reader: StreamReader, project_key: str, environment_key: str) -> None:
    path = FLAG_STATUSES.format(projectKey=project_key, environmentKey=environment_key)
    page = await reader.api.get_page(
        PageRequest(path, {}), route=FLAG_STATUSES, beta=False, stream=Stream.FLAG_STATUSES
    )
    scope = {"project_key": project_key, "environment_key": environment_key}
    await reader.emit(
        Fetched(
            Stream.FLAG_STATUSES,
            scope,
            page.items,
            marks=(ScopeComplete(Stream.FLAG_STATUSES, scope),),
            source=page.source,
        )
    )


async def _events(reader: StreamReader, window: Window) -> None:
    params = {"limit": str(reader.settings.sync.page_size), "expand": "experiments"}
    await reader.read_window(
        window, Stream.FLAG_EVENTS, FLAG_EVENTS, params, NewestFirst("eventTime", "flag events")
    )


def _probes(
    project: str, environments: Sequence[str], streams: frozenset[Stream], now: datetime
) -> list[Probe]:
    """The flags scope (flags, statuses) and the insights scope (flag events, beta)."""
    probes: list[Probe] = []
    if Stream.FLAGS in streams:
        path = FLAGS.format(projectKey=project)
        probes.append(Probe("flags", path, FLAGS, Stream.FLAGS, {"limit": "1"}, beta=False))
    if environments and Stream.FLAG_STATUSES in streams:
        path = FLAG_STATUSES.format(projectKey=project, environmentKey=environments[0])
        probes.append(Probe("flag statuses", path, FLAG_STATUSES, Stream.FLAG_STATUSES, beta=False))
    if environments and Stream.FLAG_EVENTS in streams:
        day_ago = int((now - timedelta(days=1)).timestamp() * 1000)
        params = {"projectKey": project, "environmentKey": environments[0], "limit": "1",
                  "from": str(day_ago)}  # fmt: skip
        probes.append(Probe("flag events", FLAG_EVENTS, FLAG_EVENTS, Stream.FLAG_EVENTS, params))
    return probes


EXTRACT = Extract(
    frozenset({Stream.FLAGS, Stream.FLAG_STATUSES, Stream.FLAG_EVENTS}), start, _probes
)
