"""Live progress on a terminal, and none of it off one."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import subprocess
import sys

from rich.console import Console

from etl.progress import RunObserver, StreamRow, progress_for
from etl.sync import sync

HEADER = ("stream", "pages", "records", "req/s", "429s", "retries", "elapsed", "done", "ETA")


async def test_progress_renders_per_stream_on_a_recording_terminal(sandbox_factory, settings_for):
    console = Console(record=True, force_terminal=True, width=120, file=io.StringIO())
    async with sandbox_factory(latency_ms=30) as sandbox:
        observer, display = progress_for("live", console)
        with display:
            report = await sync(settings_for(sandbox), observer)
    assert report.status == "succeeded"
    text = console.export_text()
    assert all(column in text for column in HEADER)
    assert f"syncing {report.run_id}" in text
    last_frame = text.split("syncing ")[-1]
    for stream in report.streams:
        line = next(line for line in last_frame.splitlines() if line.split()[:1] == [stream])
        assert "100%" in line, line


def run_in_pty(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """`etl ...` with stdout and stderr on a pseudo-terminal; everything it drew."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "etl", *args], stdin=slave, stdout=slave, stderr=slave,
        env={**env, "COLUMNS": "120", "TERM": "xterm"}, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return process.wait(), b"".join(chunks).decode(errors="replace")


async def test_etl_sync_shows_live_progress_on_a_terminal_and_none_off_it(
    sandbox_factory, tmp_path
):
    async with sandbox_factory(latency_ms=30) as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        args = ["sync", "--base-url", sandbox.url, "--db"]
        code, drawn = await asyncio.to_thread(
            run_in_pty, [*args, str(tmp_path / "tty.duckdb")], env
        )
        piped = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "etl", *args, str(tmp_path / "pipe.duckdb"), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out = (await piped.communicate())[0].decode()
    assert code == 0, drawn
    assert "syncing " in drawn and "ETA" in drawn and "req/s" in drawn
    assert piped.returncode == 0, out
    assert "syncing " not in out and "req/s" not in out
    assert "succeeded" in out


async def test_releases_reach_100_percent_with_their_last_page_and_their_elapsed_keeps_up(
    sandbox_factory, settings_for
):
    """One request in flight, so two chains at a time: pipelines' release listings wait
    behind deployment windows while the first ones are already read.

    The observer's clock counts the pages received, so times below are in pages.
    """
    clock = {"pages": 0.0}
    observer = RunObserver(clock=lambda: clock["pages"])
    frames: list[tuple[float, StreamRow]] = []

    def after_page() -> None:
        rows = [row for row in observer.snapshot() if row.stream == "release_progressions"]
        frames.extend((clock["pages"], row) for row in rows)
        clock["pages"] += 1

    observer.after_page = after_page
    async with sandbox_factory(scale="small") as sandbox:
        report = await sync(settings_for(sandbox, **{"limits.max_in_flight": 1}), observer)
    assert report.status == "succeeded"
    records = frames[-1][1].records
    before_last = [row for _, row in frames if row.records < records]
    assert len({row.records for row in before_last}) > 2  # several listings, read in turn
    assert all(row.done is not None and row.done < 1.0 for row in before_last)
    assert frames[-1][1].done == 1.0
    first_page = frames[0][0]
    last_page = next(at for at, row in frames if row.records == records)
    assert frames[-1][1].elapsed_s == last_page - first_page
