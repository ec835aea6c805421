"""Which chains a run reads, and in what dependency order.

```
projects ──► environments (per project) ──► deployments (per project × environment: one chain
         │                                                  per window, newest first)
         ├─► release pipelines (per project) ──► release progressions (per pipeline)
         └─► release policies (per project)
```
Everything at one level runs concurrently; the rate limiter and the in-flight cap keep the
total polite. Discovery (projects, environments) always runs, because every other stream
needs its keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from etl.client import ApiClient
from etl.config import Settings, Stream
from etl.errors import AuthError, EtlError, FatalApiError, PaginationError, WaitTooLongError
from etl.extract.chains import read_offset_listing, run_cursor_chain
from etl.extract.family import Extract
from etl.paginate import MAX_LIMIT, CursorPaginator, OffsetPaginator, Page, PageRequest
from etl.rawjson import RawRecord
from etl.records import Fetched, Mark, ScopeComplete, StreamRejected, WindowDone, WindowProgress
from etl.state import DEPLOYMENTS as DEPLOYMENT_TIMELINE
from etl.state import Timeline, Window

PROJECTS = "/api/v2/projects"
ENVIRONMENTS = "/api/v2/projects/{projectKey}/environments"
DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
PIPELINES = "/api/v2/projects/{projectKey}/release-pipelines"
PROGRESSIONS = "/api/v2/projects/{projectKey}/release-pipelines/{pipelineKey}/releases"
POLICIES = "/api/v2/projects/{projectKey}/release-policies"

# Every listing at the largest page the API takes: 100 is the documented maximum of the
# insights listings (`ld-api.md` §1, §6); the others document only their default (20), and a
# server that serves fewer per page is followed by `OffsetPaginator.rest` (it steps by what
# came back), so asking for 100 costs nothing where the cap is lower.
LISTING_LIMIT = MAX_LIMIT
EXPAND = "pullRequests,flagReferences"

Emit = Callable[[Fetched], Awaitable[None]]
Planner = Callable[[str, Sequence[str], Timeline], Awaitable[list[Window]]]
Failure = Callable[[Stream, str, EtlError], None]
Warn = Callable[[Stream, str], None]


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _StartedAt(msgspec.Struct):
    startedAt: Any = None


class _EventTime(msgspec.Struct):
    eventTime: Any = None


_TIME_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "startedAt": msgspec.json.Decoder(_StartedAt),
    "eventTime": msgspec.json.Decoder(_EventTime),
}


def _time_ms(item: RawRecord, field: str) -> int | None:
    """A record's time `field` (ms), or None when it has none that is an integer."""
    try:
        value = getattr(_TIME_DECODERS[field].decode(item), field)
    except msgspec.DecodeError:
        return None  # not an object: the normalizer names it
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class NewestFirst:
    """Checks that a chain's records come newest first, as the checkpoint relies on.

    The shrinking checkpoint says "everything newer than this page's oldest record is
    read"; that is true only if the API serves the time field (`startedAt`, `eventTime`)
    descending (LaunchDarkly's and the sandbox's order). A chain that breaks the order stops
    with a clear error instead of leaving a checkpoint that could skip records on resume.
    """

    def __init__(self, field: str = "startedAt", what: str = "deployments") -> None:
        self._oldest: int | None = None
        self._field = field
        self._what = what

    def check(self, page: Page) -> int | None:
        """The page's oldest time (ms); PaginationError if the order is broken.

        Only a page's first and last records are read (each costs a ~2.5 µs decode;
        every one of 100k would cost a large sync ~0.25 s of the event loop): the page must
        start no newer than the previous one ended, and end no newer than it starts.
        """
        if not page.items:
            return self._oldest
        for item in (page.items[0], page.items[-1]):
            started = _time_ms(item, self._field)
            if started is None:
                continue
            if self._oldest is not None and started > self._oldest:
                raise PaginationError(
                    f"{page.request.describe()}: {self._what} are not newest first "
                    f"({self._field} {started} after {self._oldest})"
                )
            self._oldest = started
        return self._oldest


def _after_ms(ms: int) -> datetime:
    """The instant just past `ms`: a half-open window ending here still holds `ms`."""
    return EPOCH + timedelta(milliseconds=ms + 1)


def _ms(moment: datetime) -> str:
    """Unix milliseconds, in integer arithmetic (a float product can land 1 ms short)."""
    return str((moment - EPOCH) // timedelta(milliseconds=1))


class StreamReader:
    """Reads every selected stream of one run and emits `Fetched` units.

    A family's `start` (`extract/registry.py`) uses the public parts: `api`, `settings`,
    `streams` (the selected ones), `chains` (hold it while a chain runs: it bounds the pages
    waiting for the loader), `guarded` (one partition whose failure ends only its stream
    partial), `listing` (a whole offset listing as one unit that completes its scope),
    `emit`, `plan` (the deployment windows' planner), `fail` and `warn`.
    """

    def __init__(
        self,
        api: ApiClient,
        settings: Settings,
        *,
        emit: Emit,
        plan: Planner,
        fail: Failure,
        warn: Warn | None = None,
        extracts: Sequence[Extract],
    ) -> None:
        self.api = api
        self.settings = settings
        self.streams = set(settings.sync.streams)
        # Each running chain may hold one fetched page while it waits for the loader's queue,
        # so memory is bounded only if the number of running chains is: twice the requests
        # in flight keeps the connection pool busy while a chain hands its page over.
        self._chain_slots = 2 * settings.limits.max_in_flight
        self.chains = asyncio.Semaphore(self._chain_slots)
        # (stream, project, environment) partitions the API refused (403, 404): their other
        # windows are not read, so one refusal is one error, not one per window.
        self._refused: set[tuple[str, str, str]] = set()
        self.emit = emit
        self.plan = plan
        self.fail = fail
        self.warn = warn
        self._extracts = [e for e in extracts if e.streams & self.streams]

    async def guarded(self, stream: Stream, where: str, work: Awaitable[None]) -> None:
        """Run one partition; a failure is recorded for its stream, the rest goes on.

        An `AuthError` (401) is re-raised: with a rejected token nothing else can succeed; so
        is a `WaitTooLongError`: every partition shares the budget the server refuses.
        """
        try:
            await work
        except (AuthError, WaitTooLongError):
            raise
        except EtlError as exc:
            self.fail(stream, where, exc)
        except StreamRejected:
            pass

    async def listing(
        self,
        stream: Stream,
        scope: dict[str, str],
        paginator: OffsetPaginator,
        *,
        route: str,
        beta: bool,
        key_fields: tuple[str, ...],
    ) -> list[dict[str, Any]]:
        """Read a whole offset listing, emit it as one unit that completes its scope.

        Returns:
            The listing's records that are objects, decoded (callers read keys from them;
            a record that is not an object is named by the normalizer).
        """
        warn = self.warn

        def warn_stream(message: str) -> None:
            if warn is not None:
                warn(stream, message)

        items, records, first = await read_offset_listing(
            self.api,
            paginator,
            route=route,
            beta=beta,
            stream=stream,
            key_fields=key_fields,
            warn=warn_stream,
        )
        await self.emit(
            Fetched(stream, scope, items, body=first.body, marks=(ScopeComplete(stream, scope),))
        )
        return [record for record in records if isinstance(record, dict)]

    async def read_all(self) -> None:
        """Discovery, then every selected stream of every selected project, concurrently.

        Account-wide chains (`Extract.account`) start beside the projects' own.
        """
        projects = await self._projects()
        async with asyncio.TaskGroup() as group:
            for extract in self._extracts:
                if extract.account is not None:
                    await extract.account(self, group)
            for project_key in projects:
                group.create_task(
                    self.guarded(
                        Stream.ENVIRONMENTS, f"project {project_key}", self._project(project_key)
                    )
                )

    async def _projects(self) -> list[str]:
        items = await self.listing(
            Stream.PROJECTS,
            {},
            OffsetPaginator(PROJECTS, {}, LISTING_LIMIT),
            route=PROJECTS,
            beta=False,
            key_fields=("key",),
        )
        keys = [str(item.get("key")) for item in items]
        wanted = self.settings.scope.projects
        if not wanted:
            return keys
        for missing in sorted(set(wanted) - set(keys)):
            self.fail(Stream.PROJECTS, f"project {missing}", FatalApiError("not found"))
        return [key for key in keys if key in wanted]

    async def _project(self, project_key: str) -> None:
        """One project's environments, then every selected family's chains (`registry.py`)."""
        items = await self.listing(
            Stream.ENVIRONMENTS,
            {"project_key": project_key},
            OffsetPaginator(ENVIRONMENTS.format(projectKey=project_key), {}, LISTING_LIMIT),
            route=ENVIRONMENTS,
            beta=False,
            key_fields=("key",),
        )
        environments = [str(item.get("key")) for item in items]
        wanted = self.settings.scope.environments.get(project_key)
        if wanted:
            for missing in sorted(set(wanted) - set(environments)):
                self.fail(
                    Stream.DEPLOYMENTS,
                    f"project {project_key} environment {missing}",
                    FatalApiError("environment not found"),
                )
            environments = [key for key in environments if key in wanted]
        async with asyncio.TaskGroup() as group:
            for extract in self._extracts:
                await extract.start(self, group, project_key, environments)

    async def start_core(
        self, group: asyncio.TaskGroup, project_key: str, environments: Sequence[str]
    ) -> None:
        """The first streams' chains for one project: deployments, pipelines, policies."""
        if Stream.DEPLOYMENTS in self.streams and environments:
            for window in await self.plan(project_key, environments, DEPLOYMENT_TIMELINE):
                where = (
                    f"deployments {project_key}/{window.environment_key} "
                    f"[{window.from_at:%Y-%m-%d %H:%M}, {window.unread_to:%Y-%m-%d %H:%M})"
                )
                group.create_task(
                    self.guarded(Stream.DEPLOYMENTS, where, self._deployments(window))
                )
        if self.streams & {Stream.RELEASE_PIPELINES, Stream.RELEASE_PROGRESSIONS}:
            group.create_task(
                self.guarded(
                    Stream.RELEASE_PIPELINES,
                    f"release pipelines of {project_key}",
                    self._pipelines(project_key),
                )
            )
        if Stream.RELEASE_POLICIES in self.streams:
            group.create_task(
                self.guarded(
                    Stream.RELEASE_POLICIES,
                    f"release policies of {project_key}",
                    self._policies(project_key),
                )
            )

    async def _deployments(self, window: Window) -> None:
        """One cursor chain over one deployment window's unread part, newest first."""
        params = {"limit": str(self.settings.sync.page_size), "expand": EXPAND}
        if self.settings.scope.application_keys:
            params["applicationKey"] = ",".join(self.settings.scope.application_keys)
        await self.read_window(
            window, Stream.DEPLOYMENTS, DEPLOYMENTS, params, NewestFirst("startedAt")
        )

    async def read_window(
        self,
        window: Window,
        stream: Stream,
        route: str,
        params: dict[str, str],
        order: NewestFirst,
    ) -> None:
        """One beta cursor chain over one window's unread part, newest first.

        `params` are the chain's own beyond the partition and the window (`projectKey`,
        `environmentKey`, `from`, `to` are added).

        Each page commits with a mark: `WindowProgress` (the window is read down to the page's
        oldest record), or `WindowDone` on the last page. A killed run therefore resumes
        at the page it had not committed, not at the window's end. A partition (stream,
        project, environment) the API refuses is not read again this run: one refusal is one
        error, not one per window.
        """
        params = {
            "projectKey": window.project_key,
            "environmentKey": window.environment_key,
            "from": _ms(window.from_at),
            # The API's window is inclusive at both ends; ours are half-open [from, to).
            "to": str(int(_ms(window.unread_to)) - 1),
            **params,
        }
        context = {"project_key": window.project_key, "environment_key": window.environment_key}
        key = (window.project_key, window.environment_key, window.from_at, window.to_at)
        done = WindowDone(*key, stream=window.stream)

        async def on_page(page: Page, last: bool) -> None:
            oldest = order.check(page)
            mark: Mark | None = done
            if not last:
                mark = (
                    None
                    if oldest is None
                    else WindowProgress(*key, _after_ms(oldest), stream=window.stream)
                )
            await self.emit(
                Fetched(
                    stream,
                    context,
                    page.items,
                    marks=(mark,) if mark is not None else (),
                    source=page.source,
                )
            )

        partition = (stream.value, window.project_key, window.environment_key)
        async with self.chains:
            if partition in self._refused:
                return  # another window of this environment was refused; reported there
            try:
                await run_cursor_chain(
                    self.api,
                    CursorPaginator(route, params),
                    route=route,
                    beta=True,
                    stream=stream,
                    on_page=on_page,
                )
            except FatalApiError:
                if partition in self._refused:
                    return
                self._refused.add(partition)
                raise

    async def _pipelines(self, project_key: str) -> None:
        items = await self.listing(
            Stream.RELEASE_PIPELINES,
            {"project_key": project_key},
            OffsetPaginator(PIPELINES.format(projectKey=project_key), {}, LISTING_LIMIT),
            route=PIPELINES,
            beta=True,
            key_fields=("key",),
        )
        if Stream.RELEASE_PROGRESSIONS not in self.streams:
            return
        async with asyncio.TaskGroup() as group:
            for pipeline_key in (str(item.get("key")) for item in items):
                group.create_task(
                    self.guarded(
                        Stream.RELEASE_PROGRESSIONS,
                        f"releases of pipeline {project_key}/{pipeline_key}",
                        self._progressions(project_key, pipeline_key),
                    )
                )

    async def _progressions(self, project_key: str, pipeline_key: str) -> None:
        # The first page's body carries the `phases` summary the normalizer names phases from.
        path = PROGRESSIONS.format(projectKey=project_key, pipelineKey=pipeline_key)
        async with self.chains:
            await self.listing(
                Stream.RELEASE_PROGRESSIONS,
                {"project_key": project_key, "pipeline_key": pipeline_key},
                OffsetPaginator(path, {}, LISTING_LIMIT),
                route=PROGRESSIONS,
                beta=True,
                key_fields=("flagKey", "_createdAt"),
            )

    async def _policies(self, project_key: str) -> None:
        page = await self.api.get_page(
            PageRequest(POLICIES.format(projectKey=project_key), {}),
            route=POLICIES,
            beta=True,
            stream=Stream.RELEASE_POLICIES,
        )
        scope = {"project_key": project_key}
        await self.emit(
            Fetched(
                Stream.RELEASE_POLICIES,
                scope,
                page.items,
                marks=(ScopeComplete(Stream.RELEASE_POLICIES, scope),),
                source=page.source,
            )
        )
