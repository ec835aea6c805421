"""Running the sandbox in-process, from click, and as a blocking server."""

from __future__ import annotations

import asyncio
import socket
import sys

import aiohttp
from click.testing import CliRunner

from etl.sandbox import SANDBOX_TOKEN, SandboxConfig, running_sandbox, sandbox_command

NOW_MS = 1_767_225_600_000


async def test_running_sandbox_serves_its_dataset_on_a_free_port(http):
    async with running_sandbox(SandboxConfig(scale="tiny", now_ms=NOW_MS)) as sandbox:
        headers = {"Authorization": SANDBOX_TOKEN}
        async with http.get(f"{sandbox.url}/api/v2/projects", headers=headers) as resp:
            body = await resp.json()
    assert sandbox.url.startswith("http://127.0.0.1:")
    assert [p["key"] for p in body["items"]] == [p["key"] for p in sandbox.dataset.projects]


def test_command_help_lists_every_knob():
    result = CliRunner().invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--seed", "--scale", "--rate", "--route-rate", "--fault-rate", "--next-href"):
        assert option in result.output


def test_command_rejects_an_unknown_fault_kind():
    result = CliRunner().invoke(sandbox_command, ["--fault-kinds", "500,teapot"])
    assert result.exit_code == 2
    assert "fault_kinds" in result.output


async def test_serve_answers_until_terminated(http):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from etl.sandbox import SandboxConfig, serve; "
        f"serve(SandboxConfig(scale='tiny'), '127.0.0.1', {port})"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        status = None
        for _ in range(100):
            try:
                async with http.get(f"http://127.0.0.1:{port}/") as resp:
                    status = resp.status
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        assert status == 200
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)


def test_command_on_a_busy_port_is_one_line_without_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(sandbox_command, ["--scale", "tiny", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
