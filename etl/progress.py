"""Progress of a run while it goes: a live table on a terminal, a line now and then elsewhere.

The sync tells a `RunObserver` what it planned (deployment windows) and hands it every page
the client receives; the request counters come from the run's `RequestLedger`
(`etl.apistats`). The observer only adds numbers on the event loop (a few dict updates per
page of 100 records); the live table is drawn by rich's own refresh thread twice a second
from those numbers, so the sync never waits for the terminal.

How far along a stream is:
- offset listings (projects, environments, pipelines, releases, policies): items received ÷
  the `totalCount` of every listing started so far;
- deployments, flag events, Insights pull requests: the share of the planned time windows
  covered. Pages come newest first, so a window is covered from its end down to the oldest
  `startedAt` received so far, and whole once its last page arrived. Windows are planned a
  project at a time, so the share is scaled by the projects planned of those in scope;
- a fan-out stream (`FAN_OUT`: one listing per item of a parent stream, as progressions are
  one listing per pipeline and pipelines one per project in scope) also counts the listings
  still to come: each parent item read so far whose listing has not started is taken to be
  as long as the average listing so far, and the share is scaled by the parent's own.
  Otherwise the first pipeline's releases, read whole, showed 100 % while the others waited
  for a free chain. Flag statuses (one per environment) count only the environments
  `[scope] environments` keeps.
Both grow as discovery finds more projects, so early estimates are rough. ETA = elapsed ×
(1 − done) ÷ done. A stream's elapsed time runs from its first page to now, or to its last
page once it is done: it stops only when nothing more is left to read.

The request rate (req/s) is over a sliding `RATE_WINDOW_S`: LaunchDarkly counts requests in
fixed 10 s windows, and the limiter (`etl.ratelimit`) spends a window's budget as soon as the
window opens and then waits for the next one. Any window shorter than the server's read 0.0
between bursts while pages kept arriving; two whole server windows always hold two bursts,
so the reading is the sustained rate, and it still falls to 0 within 20 s of a stream's
last request.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from rich.console import Console
from rich.live import Live
from rich.text import Text

from etl.logs import event
from etl.paginate import Page, PageRequest

if TYPE_CHECKING:
    from etl.apistats import RequestLedger
    from etl.state import Window

log = logging.getLogger(__name__)

ProgressMode = Literal["auto", "live", "lines", "off"]

# Off a terminal: one line per this many seconds (a long run only; short runs stay quiet).
LINE_EVERY_S = 30.0
# The request rate shown is over this many recent seconds: two of LaunchDarkly's 10 s
# rate-limit windows (`SERVER_WINDOW_S`), see the module docstring.
RATE_WINDOW_S = 20.0
SERVER_WINDOW_S = 10.0
# Streams read as one listing per item of another stream (per project in scope): child →
# parent.
FAN_OUT = {
    "environments": "projects",
    "release_pipelines": "projects",
    "release_progressions": "release_pipelines",
    "flags": "projects",
    "flag_statuses": "environments",
}


class _Started(msgspec.Struct):
    startedAt: int = 0
    eventTime: int = 0  # a flag event's time (its chain is read by it, like deployments)


_STARTED = msgspec.json.Decoder(_Started)


class _Key(msgspec.Struct):
    key: str = ""


_KEYS = msgspec.json.Decoder(_Key)


def _key(item: msgspec.Raw) -> str:
    try:
        return _KEYS.decode(item).key
    except msgspec.DecodeError:
        return ""  # not an object, or no string key: the normalizer names it


@dataclass
class StreamProgress:
    """What one stream has done so far, and how much there is (where known)."""

    items: int = 0
    listings: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Offset listing path → (totalCount, items received)."""
    windows: dict[tuple[str, str, int], tuple[int, int]] = field(default_factory=dict)
    """Deployment window (project, environment, from ms) → (length ms, covered ms)."""
    started: float | None = None
    last_page: float | None = None

    keys: set[str] = field(default_factory=set)
    """The `key`s of its items (kept for projects only: their children follow the scope)."""

    def received(self) -> int:
        """Items received by its listings (a listing read again counts once)."""
        return sum(got for _, got in list(self.listings.values()))

    def done(self) -> float | None:
        """The share done, 0..1, or None while nothing tells how much there is."""
        # Copied in one step first: the display thread reads while the event loop adds.
        windows = list(self.windows.values())
        if windows:
            planned = sum(length for length, _ in windows)
            covered = sum(covered for _, covered in windows)
            return min(1.0, covered / planned) if planned else None
        listings = list(self.listings.values())
        if listings:
            total = sum(total for total, _ in listings)
            received = sum(min(total, got) for total, got in listings)
            return received / total if total else 1.0
        return None

    def done_of_fan_out(self, parents: int, parent_done: float | None) -> float | None:
        """The share done of a stream read as one listing per each of `parents` items.

        Listings not started yet count as long as the average one so far (each at least one
        item, so empty ones still count); the result is scaled by the parent's share done,
        as more parent items may still come.
        """
        listings = list(self.listings.values())
        if not listings:
            return None
        weights = [max(total, 1) for total, _ in listings]
        received = sum(min(total, got) if total else 1 for total, got in listings)
        planned = sum(weights) + max(0, parents - len(listings)) * sum(weights) / len(weights)
        return received / planned * (1.0 if parent_done is None else parent_done)


class RunObserver:
    """Collects a run's progress; `LiveProgress` and `LineProgress` show it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.streams: dict[str, StreamProgress] = {}
        self.ledger: RequestLedger | None = None
        self.run_id = ""
        self.after_page: Callable[[], None] | None = None
        self.projects: frozenset[str] = frozenset()
        """The projects in scope (`[scope] projects`); empty: every project listed."""
        self.environments: dict[str, frozenset[str]] = {}
        """Project → its environments in scope (`[scope] environments`); absent: all listed."""

    def run_started(
        self,
        run_id: str,
        ledger: RequestLedger,
        projects: Sequence[str] = (),
        environments: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """The run's id, its request counters (read, never written, here) and its scope."""
        self.run_id, self.ledger, self.projects = run_id, ledger, frozenset(projects)
        self.environments = {key: frozenset(envs) for key, envs in (environments or {}).items()}

    def windows_planned(self, windows: Sequence[Window]) -> None:
        """Windows this run reads (deployments, flag events): the denominator of their share."""
        for window in windows:
            stream = self._stream(window.stream)
            key = (window.project_key, window.environment_key, _ms(window.from_at))
            length = _ms(window.to_at) - key[2]
            stream.windows.setdefault(key, (length, 0))

    def page(self, stream_name: str, request: PageRequest, page: Page) -> None:
        """One page received (called by the client for every 200 answer)."""
        stream = self._stream(stream_name)
        stream.items += len(page.items)
        stream.last_page = self.clock()
        if stream_name == "projects" and self.projects:
            stream.keys.update(_key(item) for item in page.items)
        params = request.params
        if stream_name in ("deployments", "flag_events", "pull_requests") and "from" in params:
            self._covered(stream, params, page)
        else:
            total = page.body.get("totalCount")
            if isinstance(total, int) and not isinstance(total, bool):
                _, got = stream.listings.get(request.path, (total, 0))
                # A listing read again (it drifted) starts over at offset 0.
                first = params.get("offset", "0") == "0"
                stream.listings[request.path] = (total, len(page.items) + (0 if first else got))
            elif stream_name == "flag_statuses":  # unpaged, one per environment: all of it
                stream.listings[request.path] = (len(page.items), len(page.items))
        if self.after_page is not None:
            self.after_page()

    def _covered(self, stream: StreamProgress, params: Any, page: Page) -> None:
        # Pull requests are windowed per project (`state.PULL_REQUESTS_PARTITION`).
        environment = params.get("environmentKey", "(pull requests)")
        key = (params["projectKey"], environment, int(params["from"]))
        length, covered = stream.windows.get(key, (int(params["to"]) + 1 - key[2], 0))
        links = page.body.get("_links")
        if not (isinstance(links, dict) and links.get("next")):
            covered = length  # the window's last page
        elif page.items:
            try:
                last = _STARTED.decode(page.items[-1])
                oldest = last.startedAt or last.eventTime
            except msgspec.DecodeError:
                oldest = 0
            if oldest:
                covered = max(covered, min(length, int(params["to"]) + 1 - oldest))
        stream.windows[key] = (length, covered)

    def _stream(self, name: str) -> StreamProgress:
        stream = self.streams.get(name)
        if stream is None:
            stream = self.streams[name] = StreamProgress(started=self.clock())
        return stream

    def _done(self, name: str, stream: StreamProgress) -> float | None:
        if stream.windows:
            return self._done_of_windows(stream)
        parent_name = FAN_OUT.get(name, "")
        parent = self.streams.get(parent_name)
        if parent is None:
            return stream.done()
        parents = parent.received()
        if parent_name == "projects" and self.projects:
            parents = len(parent.keys & self.projects)
        elif parent_name == "environments":
            parents = self._environments_in_scope(parent)
        return stream.done_of_fan_out(parents, self._done(parent_name, parent))

    def _done_of_windows(self, stream: StreamProgress) -> float | None:
        """Time covered of the windows planned, scaled by the share of projects planned.

        Windows are planned a project at a time, as its environments are listed: one
        project's windows read whole are not the stream done while others wait.
        """
        covered = stream.done()
        projects = self.streams.get("projects")
        if self.projects:
            expected = len(self.projects)
        elif projects is not None:
            expected = sum(total for total, _ in list(projects.listings.values()))
        else:
            expected = 0
        if covered is None or not expected:
            return covered
        planned = len({project for project, _, _ in list(stream.windows)})
        return covered * min(1.0, planned / expected)

    def _environments_in_scope(self, environments: StreamProgress) -> int:
        """Environments listed so far that the run reads (`[scope] environments` narrows)."""
        count = 0
        for path, (total, _) in list(environments.listings.items()):
            project = path.split("/")[4]  # /api/v2/projects/{projectKey}/environments
            scoped = self.environments.get(project)
            count += min(total, len(scoped)) if scoped else total
        return count

    def snapshot(self) -> list[StreamRow]:
        """Every stream's row, for display (safe from another thread: values only grow)."""
        now = self.clock()
        counters = self.ledger.snapshot() if self.ledger is not None else {}
        rows = []
        for name, stream in list(self.streams.items()):
            api = counters.get(name, {})
            done = self._done(name, stream)
            end = stream.last_page if done == 1.0 and stream.last_page is not None else now
            elapsed = end - (stream.started or self.started)
            eta = elapsed * (1 - done) / done if done else None
            rows.append(
                StreamRow(
                    name,
                    int(api.get("pages", 0)),
                    stream.items,
                    int(api.get("requests", 0)),
                    int(api.get("rate_limited", 0)),
                    int(api.get("retries", 0)),
                    elapsed,
                    done,
                    eta,
                )
            )
        return rows


@dataclass(frozen=True)
class StreamRow:
    """One stream's line of the display."""

    stream: str
    pages: int
    records: int
    requests: int
    rate_limited: int
    retries: int
    elapsed_s: float
    done: float | None
    eta_s: float | None


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return (
        f"{seconds // 60}:{seconds % 60:02d}"
        if seconds < 3600
        else f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    )


class _Rates:
    """Requests per second per stream over the last `RATE_WINDOW_S` (display thread only).

    The display samples the request counters at each frame; the count `RATE_WINDOW_S` ago is
    interpolated between the two frames around that instant, so the window is exactly two
    server windows long however the frames fall. A stream younger than the window is read
    from its first request, over at least one server window: its first burst is not a rate
    it can keep.
    """

    def __init__(self) -> None:
        self.samples: deque[tuple[float, dict[str, int]]] = deque()
        self.began: dict[str, float] = {}
        """Stream → the last frame before its first request."""

    def update(self, now: float, rows: list[StreamRow]) -> dict[str, float]:
        counts = {row.stream: row.requests for row in rows}
        before = self.samples[-1][0] if self.samples else now
        for name, requests in counts.items():
            if requests and name not in self.began:
                self.began[name] = before
        self.samples.append((now, counts))
        while len(self.samples) > 2 and self.samples[1][0] <= now - RATE_WINDOW_S:
            self.samples.popleft()
        rates = {}
        for name, requests in counts.items():
            since = max(now - RATE_WINDOW_S, self.began.get(name, now))
            span = max(now - since, SERVER_WINDOW_S)
            rates[name] = (requests - self._count_at(name, since)) / span
        return rates

    def _count_at(self, name: str, moment: float) -> float:
        """The stream's request count at `moment`, interpolated between frames."""
        earlier = (self.samples[0][0], self.samples[0][1].get(name, 0))
        for at, counts in self.samples:
            count = counts.get(name, 0)
            if at >= moment:
                if at == earlier[0]:
                    return count
                share = (moment - earlier[0]) / (at - earlier[0])
                return earlier[1] + share * (count - earlier[1])
            earlier = (at, count)
        return earlier[1]


class LiveProgress:
    """The live table on a terminal: one row per stream, redrawn by rich twice a second."""

    def __init__(self, observer: RunObserver, console: Console) -> None:
        self.observer = observer
        self.rates = _Rates()
        self.live = Live(
            self, console=console, refresh_per_second=2, transient=True, redirect_stdout=False
        )

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def __rich__(self) -> Text:
        """The frame: a heading, then one fixed-width line per stream.

        Plain text rather than a rich `Table`: a table frame cost ~5 ms of the GIL to lay
        out, which a 4 Hz refresh took from the sync; these lines cost ~0.2 ms.
        """
        observer = self.observer
        rows = observer.snapshot()
        rates = self.rates.update(observer.clock(), rows)
        etas = [row.eta_s for row in rows if row.eta_s is not None]
        elapsed = observer.clock() - observer.started
        frame = Text.assemble(
            ("syncing ", "bold"), observer.run_id, f"  elapsed {_duration(elapsed)}",
            f"  ETA {_duration(max(etas)) if etas else '-'}\n",
            (_LINE.format(*COLUMNS), "bold"),
        )  # fmt: skip
        for row in rows:
            done = "-" if row.done is None else f"{row.done:.0%}"
            frame.append(
                "\n" + _LINE.format(
                    row.stream, f"{row.pages:,}", f"{row.records:,}",
                    f"{rates.get(row.stream, 0.0):.1f}", row.rate_limited, row.retries,
                    _duration(row.elapsed_s), done, _duration(row.eta_s),
                )
            )  # fmt: skip
        return frame


COLUMNS = ("stream", "pages", "records", "req/s", "429s", "retries", "elapsed", "done", "ETA")
_LINE = "{:<21}{:>8}{:>10}{:>7}{:>6}{:>8}{:>9}{:>6}{:>7}"


class LineProgress:
    """Off a terminal: a log line every `LINE_EVERY_S` while a run goes on, nothing else."""

    def __init__(self, observer: RunObserver) -> None:
        self.observer = observer
        self.next_at = observer.started + LINE_EVERY_S
        observer.after_page = self.maybe_log

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.observer.after_page = None

    def maybe_log(self) -> None:
        """Log a progress line if one is due (called on every page; cheap otherwise)."""
        now = self.observer.clock()
        if now < self.next_at:
            return
        self.next_at = now + LINE_EVERY_S
        rows = self.observer.snapshot()
        parts = [
            f"{row.stream} {row.records:,} records"
            + (f" ({row.done:.0%})" if row.done is not None else "")
            for row in rows
        ]
        log.info(
            "progress: %s", "; ".join(parts),
            extra=event(
                "progress",
                records=sum(row.records for row in rows),
                requests=sum(row.requests for row in rows),
                rate_limited=sum(row.rate_limited for row in rows),
            ),
        )  # fmt: skip


def progress_for(
    mode: ProgressMode, console: Console | None = None
) -> tuple[RunObserver | None, AbstractContextManager[Any]]:
    """The observer to hand `sync` and the display to run it inside, for `mode`.

    `auto`: the live table when stderr is a terminal, progress lines otherwise; `live`: the
    table even off a terminal (drawn as a terminal would get it); `lines`; `off`.
    """
    if mode == "auto":
        mode = "live" if sys.stderr.isatty() else "lines"
    if mode == "off":
        return None, nullcontext()
    observer = RunObserver()
    if mode == "lines":
        return observer, LineProgress(observer)
    console = console or Console(file=sys.stderr, force_terminal=True)
    return observer, LiveProgress(observer, console)
