from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from etl.config import Settings, load_settings
from etl.sandbox import REQUEST_LOG, RESPONSE_HOOK, Dataset, SandboxConfig, make_app


@dataclass
class Sandbox:
    url: str
    dataset: Any
    app: Any
    config: SandboxConfig

    @property
    def requests(self) -> list[Any]:
        return self.app[REQUEST_LOG]


@asynccontextmanager
async def serve(config: SandboxConfig, hook: Any = None) -> AsyncIterator[Sandbox]:
    now_ms = config.now_ms or int(time.time() // 60 * 60_000)
    dataset = Dataset.generate(config.seed, config.scale, now_ms)
    app = make_app(dataset, config)
    app[RESPONSE_HOOK] = hook
    async with TestServer(app, host="127.0.0.1") as server:
        yield Sandbox(str(server.make_url("")).rstrip("/"), dataset, app, config)


@pytest.fixture
def sandbox_factory() -> Callable[..., Any]:
    """`async with sandbox_factory(scale="tiny", fault_rate=0.05, hook=f) as sandbox: ...`

    `hook(request, body) -> body | bytes` rewrites successful API bodies (bad input tests).
    """

    def factory(hook: Any = None, **knobs: Any) -> Any:
        return serve(SandboxConfig(**{"scale": "tiny", **knobs}), hook)

    return factory


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    """Settings pointing at a sandbox and a fresh DuckDB file in tmp_path."""

    def make(sandbox: Sandbox, **overrides: Any) -> Settings:
        values = {
            "api.base_url": sandbox.url,
            "warehouse.path": str(tmp_path / "warehouse.duckdb"),
            "limits.requests_per_second": 2000.0,
            "limits.max_in_flight": 8,
            "sync.window_days": 30.0,
            "sync.batch_records": 2000,
            **overrides,
        }
        return load_settings(None, values, {"LD_API_TOKEN": sandbox.config.token})

    return make
