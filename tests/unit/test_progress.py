"""How far along a run is: listings by totalCount, deployments by time covered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

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
