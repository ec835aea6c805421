"""`etl report`: the HTML page in a real browser (Debian's chromium driven by Playwright).

The browser opens the file with every request it would make recorded and refused, so a
page that needs the network (a CDN script, a web font, an image) fails here. A screenshot
is kept in tests/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import time
from pathlib import Path

from playwright.async_api import Route, async_playwright

from etl.report import write_report
from etl.sync import sync

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


async def test_the_report_renders_with_charts_and_fetches_nothing(
    sandbox_factory, settings_for, tmp_path
):
    anchor = int(time.time() // 60 * 60_000) - 2 * 3_600_000
    async with sandbox_factory(scale="small", now_ms=anchor) as sandbox:
        settings = settings_for(sandbox)
        assert (await sync(settings)).status == "succeeded"
        sandbox.dataset.advance(anchor + 3_600_000)
        assert (await sync(settings)).status == "succeeded"
    out = tmp_path / "report.html"
    result = write_report(settings.warehouse.path, out)
    assert result.path == out and result.headline["deployments"] > 0

    url = out.as_uri()
    requests: list[str] = []
    errors: list[str] = []

    async def refuse_the_network(route: Route) -> None:
        if route.request.url == url:
            await route.continue_()
        else:
            await route.abort()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 900},
        )  # fmt: skip
        try:
            page = await browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.route("**/*", refuse_the_network)
            await page.goto(url, wait_until="load")

            assert await page.title() != ""
            assert await page.locator("h1").inner_text() == "Engineering insights"
            sections = ("dora", "trends", "recovery", "funnel", "phases", "flags", "releases",
                        "runs")  # fmt: skip
            for section in sections:
                assert await page.locator(f"section#{section} h2").is_visible(), section
            trend_marks = [
                await chart.locator(".mark").count()
                for chart in await page.locator("section#trends svg.chart").all()
            ]
            assert len(trend_marks) == 4 and min(trend_marks) >= 5, trend_marks
            assert await page.locator("section#funnel svg.chart .mark").count() > 0
            assert await page.locator("section#flags svg.chart .mark").count() > 0
            releases = page.locator("section#releases")
            assert await releases.locator("svg.chart").count() == 2  # frequency, experiments
            assert await releases.locator("svg.chart .mark").count() > 0
            assert await releases.locator("tbody tr").count() > 0  # flag health by team
            assert await page.locator("section#dora tbody tr").count() > 1
            assert await page.locator("section#runs tbody tr").count() == 2
            assert await page.locator("script").count() == 0
            box = await page.locator("section#trends svg.chart").first.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 80

            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            await releases.screenshot(path=str(ARTIFACTS / "report-releases.png"))
        finally:
            await browser.close()
    assert errors == []
    assert requests == [url]
