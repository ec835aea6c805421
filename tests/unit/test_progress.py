"""How far along a run is: listings by totalCount, deployments by time covered."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from etl.paginate import Page, PageRequest
from etl.progress import RunObserver
from etl.state import Window

START = datetime(2026, 1, 1, tzinfo=UTC)
DEPLOYMENTS = "/api/v2/engineering-insights/deployments"


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def deployments_page(window: Window, started: list[datetime], last: bool) -> tuple:
    params = {
        "projectKey": window.project_key, "environmentKey": window.environment_key,
        "from": str(ms(window.from_at)), "to": str(ms(window.to_at) - 1),
    }  # fmt: skip
    items = [msgspec.Raw(msgspec.json.encode({"id": "x", "startedAt": ms(s)})) for s in started]
    body = {"totalCount": 999} if last else {"_links": {"next": {"href": "?after=x"}}}
    request = PageRequest(DEPLOYMENTS, params)
    return request, Page(request, items, body)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deployments_are_done_by_the_share_of_planned_time_covered_newest_first():
    clock = Clock()
    observer = RunObserver(clock)
    older = Window("p", "production", START, START + timedelta(days=10))
    newer = Window("p", "production", START + timedelta(days=10), START + timedelta(days=20))
    observer.windows_planned([older, newer])
    # The newer window's first page reaches back 5 of its 10 days: a quarter of the plan.
    observer.page("deployments", *deployments_page(newer, [START + timedelta(days=15)], False))
    clock.now += 30
    (row,) = observer.snapshot()
    assert row.done == 0.25 and row.records == 1
    assert row.eta_s == 90.0  # 30 s for a quarter: 90 s for the rest
    observer.page("deployments", *deployments_page(newer, [START + timedelta(days=12)], True))
    assert observer.snapshot()[0].done == 0.5  # a window's last page covers all of it


def test_listings_are_done_by_items_received_of_their_total_count():
    observer = RunObserver(Clock())
    path = "/api/v2/projects/p/release-pipelines/x/releases"
    items = [msgspec.Raw(b"{}")] * 100
    first = PageRequest(path, {"limit": "100", "offset": "0"})
    observer.page("release_progressions", first, Page(first, items, {"totalCount": 250}))
    (row,) = observer.snapshot()
    assert row.done == 0.4
    second = PageRequest(path, {"limit": "100", "offset": "100"})
    observer.page("release_progressions", second, Page(second, items, {"totalCount": 250}))
    assert observer.snapshot()[0].done == 0.8


def test_a_stream_with_nothing_to_measure_by_has_no_eta():
    observer = RunObserver(Clock())
    request = PageRequest("/api/v2/projects/p/release-policies", {})
    observer.page("release_policies", request, Page(request, [], {}))
    (row,) = observer.snapshot()
    assert (row.done, row.eta_s) == (None, None)


def test_off_a_terminal_a_progress_line_is_logged_only_every_30_seconds(caplog):
    from etl.progress import LineProgress

    clock = Clock()
    observer = RunObserver(clock)
    request = PageRequest("/api/v2/projects", {"offset": "0"})
    page = Page(request, [msgspec.Raw(b"{}")], {"totalCount": 2})
    with caplog.at_level("INFO", logger="etl.progress"), LineProgress(observer):
        observer.page("projects", request, page)
        clock.now += 29
        observer.page("projects", request, page)
        assert caplog.records == []
        clock.now += 2
        observer.page("projects", request, page)
    (record,) = caplog.records
    assert (
        record.event == "progress" and record.getMessage() == "progress: projects 3 records (50%)"
    )


def listing_page(path: str, offset: int, served: int, total: int) -> tuple:
    request = PageRequest(path, {"limit": "100", "offset": str(offset)})
    keys = [msgspec.Raw(msgspec.json.encode({"key": f"k{offset + i}"})) for i in range(served)]
    return request, Page(request, keys, {"totalCount": total})


PIPELINES = "/api/v2/projects/p/release-pipelines"


def test_releases_count_the_pipelines_whose_listings_have_not_started():
    """Four pipelines known, one's releases read whole: a quarter done, not 100 %."""
    observer = RunObserver(Clock())
    observer.page("release_pipelines", *listing_page(PIPELINES, 0, 4, 4))
    observer.page("release_progressions", *listing_page(f"{PIPELINES}/a/releases", 0, 50, 50))
    rows = {row.stream: row for row in observer.snapshot()}
    # 50 releases read; three pipelines to go, taken as long as the one read: 50 of 200.
    assert rows["release_progressions"].done == 0.25
    observer.page("release_progressions", *listing_page(f"{PIPELINES}/b/releases", 0, 100, 150))
    # 150 read of 50 + 150 started, and two to go at their average of 100: 150 of 400.
    assert observer.snapshot()[1].done == 0.375


def test_releases_are_done_no_sooner_than_their_pipelines():
    observer = RunObserver(Clock())
    observer.page("release_pipelines", *listing_page(PIPELINES, 0, 1, 2))
    observer.page("release_progressions", *listing_page(f"{PIPELINES}/a/releases", 0, 10, 10))
    assert observer.snapshot()[1].done == 0.5  # the second pipeline is not even listed yet
    observer.page("release_pipelines", *listing_page(PIPELINES, 1, 1, 2))
    observer.page("release_progressions", *listing_page(f"{PIPELINES}/b/releases", 0, 0, 0))
    assert observer.snapshot()[1].done == 1.0


def test_elapsed_runs_while_pages_come_after_a_full_listing_and_stops_at_the_last():
    clock = Clock()
    observer = RunObserver(clock)
    observer.page("environments", *listing_page("/api/v2/projects/a/environments", 0, 2, 2))
    assert observer.snapshot()[0].done == 1.0  # all it knows of is read
    clock.now += 30
    observer.page("environments", *listing_page("/api/v2/projects/b/environments", 0, 1, 2))
    assert observer.snapshot()[0].elapsed_s == 30.0  # another project's listing began
    clock.now += 10
    observer.page("environments", *listing_page("/api/v2/projects/b/environments", 1, 1, 2))
    clock.now += 60
    (row,) = observer.snapshot()
    assert (row.done, row.elapsed_s) == (1.0, 40.0)


def rates_seen(window_requests: int, seconds: float) -> dict[float, str]:
    """The req/s column at every frame (2 a second) while a stream spends `window_requests`
    in the first second of each 10 s server window, as the limiter does under a budget."""
    from rich.console import Console

    from etl.apistats import RequestLedger
    from etl.progress import LiveProgress

    clock = Clock()
    clock.now = 0.0
    observer = RunObserver(clock)
    ledger = RequestLedger()
    observer.run_started("run", ledger)
    display = LiveProgress(observer, Console(file=io.StringIO(), force_terminal=True))
    request = PageRequest(DEPLOYMENTS, {})
    seen = {}
    for frame in range(int(seconds * 2) + 1):
        clock.now = frame / 2
        window, into = divmod(clock.now, 10.0)
        spent = int(window) * window_requests + int(min(into, 1.0) * window_requests)
        while ledger.stream("deployments").requests < spent:
            ledger.stream("deployments").requests += 1
            observer.page("deployments", request, Page(request, [], {}))
        line = str(display.__rich__()).splitlines()[-1]
        seen[clock.now] = line.split()[3]
    return seen


def test_the_request_rate_reads_the_servers_windows_not_the_gaps_between_bursts():
    seen = rates_seen(window_requests=50, seconds=60)
    # 50 requests per 10 s window: 5 a second, at every frame once two windows have passed.
    assert {seen[t] for t in seen if t >= 20} == {"5.0"}
    # Before that, the first burst is spread over at least one window, never read as 0.
    assert seen[0.5] == "2.5" and seen[5.0] == "5.0" and seen[15.0] == "6.7"
    assert "0.0" not in [seen[t] for t in seen if t > 0]


def test_environments_wait_for_every_project_in_scope_and_only_those():
    projects = "/api/v2/projects"
    unscoped, scoped = RunObserver(Clock()), RunObserver(Clock())
    scoped.projects = frozenset({"k0"})
    for observer in (unscoped, scoped):
        observer.page("projects", *listing_page(projects, 0, 3, 3))  # keys k0, k1, k2
        observer.page("environments", *listing_page(f"{projects}/k0/environments", 0, 2, 2))
    assert unscoped.snapshot()[1].done == pytest.approx(1 / 3)
    assert scoped.snapshot()[1].done == 1.0


def test_deployments_read_whole_for_one_project_of_two_are_half_done():
    observer = RunObserver(Clock())
    observer.page("projects", *listing_page("/api/v2/projects", 0, 2, 2))  # k0 and k1
    window = Window("k0", "production", START, START + timedelta(days=10))
    observer.windows_planned([window])  # k1's environments are not listed yet
    observer.page("deployments", *deployments_page(window, [START], True))
    rows = {row.stream: row for row in observer.snapshot()}
    assert rows["deployments"].done == 0.5
    other = Window("k1", "production", START, START + timedelta(days=10))
    observer.windows_planned([other])
    observer.page("deployments", *deployments_page(other, [START], True))
    assert {row.stream: row for row in observer.snapshot()}["deployments"].done == 1.0


def test_flag_statuses_count_only_the_environments_in_scope():
    observer = RunObserver(Clock())
    observer.run_started("run", None, ["k0"], {"k0": ["production"]})  # type: ignore[arg-type]
    observer.page("projects", *listing_page("/api/v2/projects", 0, 1, 1))
    observer.page("environments", *listing_page("/api/v2/projects/k0/environments", 0, 3, 3))
    statuses = PageRequest("/api/v2/flag-statuses/k0/production", {})
    observer.page("flag_statuses", statuses, Page(statuses, [msgspec.Raw(b"{}")] * 4, {}))
    rows = {row.stream: row for row in observer.snapshot()}
    assert rows["flag_statuses"].done == 1.0  # staging and test are not read
