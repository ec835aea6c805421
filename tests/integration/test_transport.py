"""The TLS rule end to end: https verified (with a CA bundle for a TLS proxy), http only
to loopback unless explicitly allowed, and a refusal before any connection."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from aiohttp.test_utils import TestServer

from etl.sandbox import Dataset, SandboxConfig, make_app
from etl.sync import sync
from tests.integration.conftest import Sandbox
from tests.integration.warehouse_truth import warehouse_differences


@asynccontextmanager
async def serve_on(host: str, tls: ssl.SSLContext | None = None) -> AsyncIterator[Sandbox]:
    config = SandboxConfig(scale="tiny", now_ms=int(time.time() // 60 * 60_000))
    dataset = Dataset.generate(config.seed, config.scale, config.anchor_ms())
    app = make_app(dataset, config)
    server = TestServer(app, host=host)
    await server.start_server(ssl=tls)
    try:
        yield Sandbox(str(server.make_url("")).rstrip("/"), dataset, app, config)
    finally:
        await server.close()


@pytest.fixture(scope="module")
def private_ca() -> trustme.CA:
    """A CA no system trusts, like a corporate TLS proxy's."""
    return trustme.CA()


@pytest.fixture
def https_context(private_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    private_ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def machine_address() -> str:
    """An address of this machine that is not loopback (skips the test when there is none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.254", 9))  # no packet is sent: only a route is chosen
            address = probe.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    if address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to serve on")
    return address


async def etl(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "etl", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, (out + err).decode()


async def test_plain_http_to_a_remote_host_is_refused_before_any_connection(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    env = {**os.environ, "LD_API_TOKEN": "api-canary0-1111-2222-3333-444444444444"}
    code, output = await etl(
        "sync", "--db", str(db), "--base-url", "http://ld.example.com", env=env
    )
    assert code == 2
    assert output.splitlines() == [
        "etl: error: api.base_url: http://ld.example.com is plain http to another machine, "
        "which would send the token unencrypted; use https (or set api.allow_insecure_http = true)"
    ]
    assert not db.exists()  # refused before the warehouse was even opened


async def test_allow_insecure_http_syncs_with_a_warning(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[api]\nallow_insecure_http = true\n")
    db = tmp_path / "warehouse.duckdb"
    async with serve_on(machine_address()) as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        args = ["sync", "-q", "--config", str(config), "--db", str(db), "--base-url", sandbox.url]
        code, output = await etl(*args, env=env)
    assert code == 0, output
    assert (
        f"INSECURE: api.allow_insecure_http = true: the token goes unencrypted to {sandbox.url}"
        in output
    )


async def test_https_with_a_certificate_from_an_unknown_ca_fails_naming_ca_bundle(
    https_context, settings_for
):
    async with serve_on("127.0.0.1", https_context) as sandbox:
        assert sandbox.url.startswith("https://")
        report = await sync(settings_for(sandbox))
    assert (report.status, report.exit_code) == ("failed", 1)
    assert "TLS certificate failed verification" in report.error
    assert "set api.ca_bundle to its CA file" in report.error


async def test_https_through_a_ca_bundle_syncs_everything(
    https_context, private_ca, settings_for, tmp_path
):
    bundle = tmp_path / "proxy-ca.pem"
    private_ca.cert_pem.write_to_path(str(bundle))
    async with serve_on("127.0.0.1", https_context) as sandbox:
        settings = settings_for(sandbox, **{"api.ca_bundle": str(bundle)})
        report = await sync(settings)
        assert report.status == "succeeded", report.error
        assert warehouse_differences(Path(settings.warehouse.path), sandbox.dataset.truth()) == []
