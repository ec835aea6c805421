"""Running the sandbox: `etl sandbox` (blocking) and `running_sandbox()` (in-process).

`etl/cli.py` registers `sandbox_command` on the main group; the demo and benchmark use
`running_sandbox` to get a real socket without a subprocess.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import get_args

import click
from aiohttp import web

from etl.sandbox.app import make_app
from etl.sandbox.config import FAULT_KINDS, SANDBOX_TOKEN, NextHref, SandboxConfig, ScaleName
from etl.sandbox.data import Dataset


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox listening on a real port.

    Attributes:
        url: Base URL, e.g. `http://127.0.0.1:54321` (no trailing slash).
        dataset: The served dataset (call `truth()` / `advance()` on it).
        app: The aiohttp application (for `app[REQUEST_LOG]`).
    """

    url: str
    dataset: Dataset
    app: web.Application


def build(config: SandboxConfig) -> tuple[Dataset, web.Application]:
    """Generate the config's dataset and the app serving it."""
    dataset = Dataset.generate(config.seed, config.scale, config.anchor_ms())
    return dataset, make_app(dataset, config)


@asynccontextmanager
async def running_sandbox(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSandbox]:
    """Serve a sandbox on `host:port` (0 = any free port) for the duration of the block.

    The dataset is generated in a worker thread so a large scale does not stall the loop.
    """
    config = config or SandboxConfig()
    dataset, app = await asyncio.to_thread(build, config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        yield RunningSandbox(f"http://{host}:{bound_port}", dataset, app)
    finally:
        await runner.cleanup()


def serve(config: SandboxConfig, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Generate the dataset and serve it until interrupted (blocking)."""
    started = time.perf_counter()
    dataset, app = build(config)
    counts = dataset.counts()
    click.echo(
        f"sandbox: seed={config.seed} scale={config.scale} "
        f"{counts['deployments']} deployments, {counts['release_progressions']} releases "
        f"(generated in {time.perf_counter() - started:.2f}s)"
    )
    click.echo(f"sandbox: http://{host}:{port}  Authorization: {config.token}")
    click.echo(f"try: curl -H 'Authorization: {config.token}' http://{host}:{port}/api/v2/projects")
    try:
        web.run_app(app, host=host, port=port, print=None, access_log=None)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0: any free port.",
)
@click.option(
    "--seed", default=42, show_default=True, type=int, help="Same seed, same data, same bytes."
)
@click.option(
    "--scale",
    default="small",
    show_default=True,
    type=click.Choice(get_args(ScaleName)),
    help="tiny ≈ 80, small ≈ 1k, medium ≈ 10k, large ≈ 100k deployments.",
)
@click.option(
    "--token",
    default=SANDBOX_TOKEN,
    show_default=True,
    help="The token clients must send (export LD_API_TOKEN=<it> for etl sync).",
)
@click.option("--rate", type=float, default=None, help="Allowed requests/s (global).")
@click.option(
    "--rate-window",
    "rate_window_s",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds per rate-limit window (LaunchDarkly: 10).",
)
@click.option("--route-rate", type=float, default=None, help="Allowed requests/s per route.")
@click.option(
    "--latency-ms", type=float, default=0.0, show_default=True, help="Added to every response."
)
@click.option(
    "--fault-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of API requests answered with a fault (0–1).",
)
@click.option(
    "--fault-kinds",
    default=",".join(FAULT_KINDS),
    show_default=True,
    help="Comma list drawn from when a fault fires.",
)
@click.option(
    "--next-href",
    default="full",
    show_default=True,
    type=click.Choice(get_args(NextHref)),
    help="after-only: next links carry only the cursor, as LaunchDarkly's example does.",
)
@click.option(
    "--listing-total-count",
    type=click.IntRange(min=0),
    default=None,
    help="Serve this totalCount on every offset listing, whatever its items (a wrong count).",
)
@click.option("--now-ms", type=int, default=None, help="Data anchor (default: now).")
def sandbox_command(
    host: str,
    port: int,
    seed: int,
    scale: ScaleName,
    token: str,
    rate: float | None,
    rate_window_s: float,
    route_rate: float | None,
    latency_ms: float,
    fault_rate: float,
    fault_kinds: str,
    next_href: NextHref,
    listing_total_count: int | None,
    now_ms: int | None,
) -> None:
    """Serve a fake LaunchDarkly REST API with deterministic data, for trying the ETL.

    It prints the token it accepts (`--token` sets another).

    \b
    Example:
      etl sandbox --scale medium --port 8765 &
      LD_API_TOKEN=api-5a4db0c5-0e7f-4c1d-9a2b-3c4d5e6f7a8b \\
        etl sync --base-url http://127.0.0.1:8765
    """
    try:
        config = SandboxConfig(
            seed=seed,
            scale=scale,
            token=token,
            rate=rate,
            rate_window_s=rate_window_s,
            route_rate=route_rate,
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            fault_kinds=tuple(kind for kind in fault_kinds.split(",") if kind),
            next_href=next_href,
            listing_total_count=listing_total_count,
            now_ms=now_ms,
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    serve(config, host, port)
