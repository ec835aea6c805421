"""Logs of a real sync: JSON for machines, line by line, and never the token."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import orjson

from etl.logs import configure_logging
from etl.sync import sync


async def etl_split(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "etl", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_json_logs_parse_line_by_line_name_the_run_and_never_the_token(
    sandbox_factory, tmp_path
):
    config = tmp_path / "c.toml"
    config.write_text('[log]\nlevel = "DEBUG"\n[limits]\nrequests_per_second = 2000\n')
    async with sandbox_factory() as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        code, _, err = await etl_split(
            "sync", "--config", str(config), "--db", str(tmp_path / "w.duckdb"),
            "--base-url", sandbox.url, "-q", "--log-format", "json", env=env,
        )  # fmt: skip
    assert code == 0, err
    assert sandbox.config.token not in err
    records = [orjson.loads(line) for line in err.splitlines()]
    by_event = {record["event"]: record for record in records}
    started, finished = by_event["run_started"], by_event["run_finished"]
    assert started["run_id"] and started["run_id"] == finished["run_id"]
    assert finished["counts"]["status"] == "succeeded"
    assert finished["counts"]["requests"] > 0 and finished["counts"]["records"] > 0
    assert finished["streams"]["deployments"]["records"] > 0
    streams = {r["stream"] for r in records if r["event"] == "stream_finished"}
    assert "deployments" in streams


async def test_migrations_are_logged_at_debug_not_info(sandbox_factory, tmp_path):
    async with sandbox_factory() as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        code, _, err = await etl_split(
            "sync", "--db", str(tmp_path / "w.duckdb"), "--base-url", sandbox.url, "-q", env=env
        )
    assert code == 0, err
    assert "applied migration" not in err
    assert "run started" in err


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_the_token_never_reaches_a_log_record(sandbox_factory, settings_for):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    keep = _Keep()
    try:
        async with sandbox_factory(fault_rate=0.05) as sandbox:
            settings = settings_for(sandbox)
            configure_logging("DEBUG", None)  # no redaction: what reaches a record is seen
            root.addHandler(keep)
            await sync(settings)
    finally:
        root.handlers[:], root.level = handlers, level
    assert keep.records
    token = sandbox.config.token
    for record in keep.records:
        assert token not in record.getMessage()
        assert token not in repr(record.__dict__)
