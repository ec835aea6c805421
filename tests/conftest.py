"""Shared fixtures: a sandbox on a real socket and an HTTP session, both closed per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from etl.sandbox import RESPONSE_HOOK, Dataset, ResponseHook, SandboxConfig, make_app

NOW_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z: a fixed data anchor, so every run serves the same bytes."""


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox: its server, app, dataset and config."""

    server: TestServer
    app: web.Application
    dataset: Dataset
    config: SandboxConfig

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


StartSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def start_sandbox() -> AsyncIterator[StartSandbox]:
    """Factory: `await start_sandbox(SandboxConfig(...), hook=...)`; servers close at teardown.

    The default config is the tiny scale anchored at `NOW_MS`.
    """
    servers: list[TestServer] = []

    async def start(config: SandboxConfig | None = None, *, hook: ResponseHook | None = None):
        config = config or SandboxConfig(scale="tiny", now_ms=NOW_MS)
        dataset = Dataset.generate(config.seed, config.scale, config.anchor_ms())
        app = make_app(dataset, config)
        app[RESPONSE_HOOK] = hook
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return Sandbox(server, app, dataset, config)

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def sandbox(start_sandbox: StartSandbox) -> Sandbox:
    """The default tiny sandbox."""
    return await start_sandbox()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session, closed after the test (unclosed sessions fail under -W error)."""
    async with aiohttp.ClientSession() as session:
        yield session
