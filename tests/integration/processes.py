"""`etl` commands as real processes against an in-test sandbox, stopped at chosen moments."""

from __future__ import annotations

import asyncio
import signal
import sys

DEPLOYMENTS_PATH = "/api/v2/engineering-insights/deployments"
EXIT_WITHIN_S = 30


def deployment_pages_served(sandbox) -> int:
    return sum(1 for record in sandbox.requests if record.path == DEPLOYMENTS_PATH)


async def spawn_etl(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "etl", *args,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def run_cli(args: list[str], env: dict[str, str]) -> int:
    return await (await spawn_etl(args, env)).wait()


async def until_pages_served(process: asyncio.subprocess.Process, sandbox, pages: int) -> None:
    """Wait until the sandbox has served `pages` more deployment pages to a running sync.

    The moment is tied to the run's progress, not to a wall clock, so it always lands mid-run
    (the run still needs more pages) however fast the machine is.
    """
    served_before = deployment_pages_served(sandbox)
    while deployment_pages_served(sandbox) - served_before < pages:
        assert process.returncode is None, "the run ended too early: it proved nothing"
        await asyncio.sleep(0.005)


async def run_cli_signalled_after(
    args: list[str], env: dict[str, str], sandbox, pages: int, signum: int = signal.SIGKILL
) -> int:
    """Run `etl sync` and signal it once the sandbox has served it `pages` deployment pages."""
    process = await spawn_etl(args, env)
    await until_pages_served(process, sandbox, pages)
    process.send_signal(signum)
    try:
        return await asyncio.wait_for(process.wait(), EXIT_WITHIN_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(
            f"the run did not exit within {EXIT_WITHIN_S}s of signal {signum}"
        ) from None
