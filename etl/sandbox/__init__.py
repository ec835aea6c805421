"""A deterministic local fake of LaunchDarkly's REST API, served with aiohttp.

The tests, the demo and the benchmark talk to it over real HTTP, and `etl sandbox` serves it
so users can try the ETL without a LaunchDarkly account.

Usage:
    dataset = Dataset.generate(seed=42, scale="tiny", now_ms=1_767_225_600_000)
    app = make_app(dataset, SandboxConfig(scale="tiny"))
    async with running_sandbox(SandboxConfig(scale="tiny")) as sandbox:
        ...  # sandbox.url, sandbox.dataset.truth(), sandbox.app[REQUEST_LOG]
"""

from __future__ import annotations

from etl.sandbox.app import make_app
from etl.sandbox.cli import RunningSandbox, running_sandbox, sandbox_command, serve
from etl.sandbox.config import FAULT_KINDS, SANDBOX_TOKEN, SCALES, SandboxConfig
from etl.sandbox.data import Dataset, Truth
from etl.sandbox.pipelines import GO_RELEASE_METHODS, PY_RELEASE_METHODS
from etl.sandbox.requestlog import REQUEST_LOG, RequestRecord
from etl.sandbox.serving import CONFIG, DATASET, RESPONSE_HOOK, ResponseHook

__all__ = [
    "CONFIG",
    "DATASET",
    "FAULT_KINDS",
    "GO_RELEASE_METHODS",
    "PY_RELEASE_METHODS",
    "REQUEST_LOG",
    "RESPONSE_HOOK",
    "SANDBOX_TOKEN",
    "SCALES",
    "Dataset",
    "RequestRecord",
    "ResponseHook",
    "RunningSandbox",
    "SandboxConfig",
    "Truth",
    "make_app",
    "running_sandbox",
    "sandbox_command",
    "serve",
]
