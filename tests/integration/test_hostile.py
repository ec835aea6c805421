"""A hostile environment: each case ends with the last good state intact and one clear line.

The warehouse's directory turns read-only, its disk fills up during a batch, another process
holds it open for writing (there the sync goes on: it publishes beside the holder); the
server answers 200 with an HTML page, asks for an hour's wait, or sends rate-limit resets an
hour in the past or days in the future.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from etl.sandbox import Dataset, SandboxConfig, make_app
from etl.sandbox.errors import RATE_LIMITED, error_response
from etl.sync import sync
from tests.integration.conftest import Sandbox
from tests.integration.warehouse_truth import table_fingerprint, warehouse_differences

NOW_MS = int(time.time() // 60 * 60_000)
Middleware = Callable[[web.Request, Any], Any]


@asynccontextmanager
async def hostile_sandbox(
    middleware: Middleware | None = None, **knobs: Any
) -> AsyncIterator[Sandbox]:
    """A sandbox whose answers pass through `middleware` first (outermost)."""
    config = SandboxConfig(**{"scale": "tiny", "now_ms": NOW_MS, **knobs})
    dataset = Dataset.generate(config.seed, config.scale, config.anchor_ms())
    app = make_app(dataset, config)
    if middleware is not None:
        app.middlewares.insert(0, web.middleware(middleware))
    async with TestServer(app, host="127.0.0.1") as server:
        yield Sandbox(str(server.make_url("")).rstrip("/"), dataset, app, config)


async def etl_sync(db: Path, sandbox: Sandbox, *extra: str, config: str = "") -> tuple[int, str]:
    """`etl sync` in a child process: its exit code and everything it printed."""
    config_path = db.parent.parent / f"config-{time.monotonic_ns()}.toml"
    config_path.write_text(config)
    env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
    args = ["sync", "-q", "--config", str(config_path), "--db", str(db), "--base-url", sandbox.url]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "etl", *args, *extra, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, (out + err).decode()


def one_clear_line(output: str) -> str:
    """The run's verdict: its last line, `etl: error: ...`; and no traceback anywhere."""
    assert "Traceback" not in output, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("etl: error: "), output
    return last


async def good_warehouse(
    directory: Path, settings_for: Callable[..., Any], scale: str = "tiny"
) -> Path:
    """A warehouse holding one complete sync."""
    os.makedirs(directory, exist_ok=True)
    async with hostile_sandbox(scale=scale) as sandbox:
        settings = settings_for(sandbox, **{"warehouse.path": str(directory / "w.duckdb")})
        assert (await sync(settings)).status == "succeeded"
    return Path(settings.warehouse.path)


def run_root(*command: str) -> bool:
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


@contextmanager
def mounted(kind: str, target: Path, *options: str) -> Iterator[Path]:
    """`mount` for the block (root only); skips the test with the reason where it cannot."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root to mount a {kind} (not root here)")
    target.mkdir(parents=True, exist_ok=True)
    if not run_root("mount", *options, str(target)):
        pytest.skip(f"cannot mount a {kind} here (no mount privilege in this container)")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


async def test_a_read_only_warehouse_directory(settings_for, tmp_path):
    db = await good_warehouse(tmp_path / "rw", settings_for)
    before = table_fingerprint(db)
    with mounted("read-only view", tmp_path / "ro", "--bind", str(db.parent)) as view:
        assert run_root("mount", "-o", "remount,ro,bind", str(view))
        async with hostile_sandbox() as sandbox:
            code, output = await etl_sync(view / db.name, sandbox)
    assert code == 1
    assert "Read-only file system" in one_clear_line(output)
    assert table_fingerprint(db) == before


async def test_the_disk_filling_up_during_a_batch(settings_for, tmp_path):
    with mounted(
        "small tmpfs", tmp_path / "disk", "-t", "tmpfs", "-o", "size=128m", "tmpfs"
    ) as disk:
        db = await good_warehouse(disk, settings_for, "small")
        before = table_fingerprint(db)
        stats = os.statvfs(disk)
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - 512 * 1024))
        async with hostile_sandbox(scale="small") as sandbox:
            code, output = await etl_sync(db, sandbox, "--since", "2020-01-01")
        line = one_clear_line(output)
        assert code == 1
        assert "the disk holding the warehouse is full: free space there and run again" in line
        assert table_fingerprint(db) == before
        filler.unlink()
        async with hostile_sandbox(scale="small") as sandbox:
            code, output = await etl_sync(db, sandbox)
            assert code == 0, output
            assert warehouse_differences(db, sandbox.dataset.truth()) == []


async def test_a_warehouse_held_read_write_by_another_process_does_not_stop_the_sync(
    settings_for, tmp_path
):
    # The DuckDB CLI opens a file read-write by default: the sync never opens the published
    # file, so it publishes beside the holder, which keeps the file it opened.
    db = await good_warehouse(tmp_path / "w", settings_for)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
        "print('holding', flush=True); sys.stdin.read(); "
        "print(c.execute('SELECT count(*) FROM etl_runs').fetchone()[0])", str(db),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and await holder.stdout.readline() == b"holding\n"
        async with hostile_sandbox() as sandbox:
            code, output = await etl_sync(db, sandbox)
    finally:
        held_runs, _ = await holder.communicate(b"")
    assert code == 0, output
    assert held_runs.split() == [b"1"]
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM etl_runs").fetchone()[0] == 2


async def html_page(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        return web.Response(
            text="<html><body>Sign in to continue</body></html>", content_type="text/html"
        )
    return await handler(request)


async def an_hour_to_wait(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        return error_response(429, RATE_LIMITED, {"Retry-After": "3600"})
    return await handler(request)


@pytest.mark.parametrize(
    ("middleware", "expected"),
    [
        (
            html_page,
            "it is text/html, not JSON (a proxy or login page?) (gave up after 2 attempts)",
        ),
        (an_hour_to_wait, "the server asks us to wait 3,600 s, more than api.max_wait_s = 300"),
    ],
    ids=["200-with-html", "retry-after-an-hour"],
)
async def test_a_server_that_cannot_be_read(settings_for, tmp_path, middleware, expected):
    db = await good_warehouse(tmp_path / "w", settings_for)
    before = table_fingerprint(db)
    async with hostile_sandbox(middleware) as sandbox:
        code, output = await etl_sync(db, sandbox, config="[api]\nmax_attempts = 2\n")
    assert code == 1
    assert expected in one_clear_line(output)
    assert table_fingerprint(db) == before


@pytest.mark.parametrize(
    "shift_s", [-3_600, 3 * 24 * 3_600], ids=["reset-an-hour-ago", "reset-in-3-days"]
)
async def test_rate_limit_resets_in_the_past_or_far_future_do_not_stall_the_run(
    settings_for, shift_s
):
    async def skewed(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if "X-Ratelimit-Reset" in response.headers:
            reset_ms = int(response.headers["X-Ratelimit-Reset"]) + shift_s * 1000
            response.headers["X-Ratelimit-Reset"] = str(reset_ms)
        return response

    async with hostile_sandbox(skewed, rate=200, rate_window_s=1) as sandbox:
        settings = settings_for(sandbox)
        report = await sync(settings)
        assert report.status == "succeeded", report.error
        assert warehouse_differences(settings.warehouse.path, sandbox.dataset.truth()) == []
