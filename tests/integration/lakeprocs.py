"""`etl` processes for the lake tests, each as a separate machine would run it.

A worker gets a working directory of its own (its config.toml, its DuckDB extension cache and
temporary files): nothing on local disk is shared, only the catalog over TCP and, on S3, the
bucket over HTTP.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

EXIT_WITHIN_S = 180
CONFIG = """
[limits]
requests_per_second = 2000
[sync]
batch_records = {batch}
"""


class Proc:
    """One `etl` process, its output kept in files in its directory."""

    def __init__(self, process: asyncio.subprocess.Process, home: Path) -> None:
        self.process, self.home = process, home

    async def wait(self) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), EXIT_WITHIN_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"{self.home.name} did not end within {EXIT_WITHIN_S}s") from None

    def output(self) -> str:
        return (self.home / "out.txt").read_text() + (self.home / "err.txt").read_text()


def machine(root: Path, name: str, lake: Any, *warehouse_keys: str, batch: int = 300) -> Path:
    """A working directory for one process: config.toml with the lake's settings.

    `warehouse_keys`: more `[warehouse]` lines ("outage_retry_s = 2").
    """
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(CONFIG.format(batch=batch) + lake.config(*warehouse_keys))
    return home


async def start(home: Path, args: list[str], env: dict[str, str]) -> Proc:
    """`python -m etl <args>` in `home`, with its own cache and temporary directory."""
    (home / "tmp").mkdir(exist_ok=True)
    own = {"XDG_CACHE_HOME": str(home / "cache"), "TMPDIR": str(home / "tmp")}
    with (home / "out.txt").open("wb") as out, (home / "err.txt").open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "etl", *args, cwd=home, env={**env, **own},
            stdout=out, stderr=err,
        )  # fmt: skip
    return Proc(process, home)


def sync_args(lake: Any, sandbox: Any, *more: str) -> list[str]:
    return [
        "sync", "--config", "config.toml", "--db", lake.target, "--data-path", lake.data,
        "--base-url", sandbox.url, "-q", *more,
    ]  # fmt: skip


def environment(lake: Any, sandbox: Any) -> dict[str, str]:
    return {**lake.env, "LD_API_TOKEN": sandbox.config.token}
