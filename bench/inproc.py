"""Normalize and load throughput, measured in-process over pages captured once.

The end-to-end figure mixes HTTP, JSON parsing, Polars and DuckDB; this one separates the
two CPU stages the ETL owns after a page arrives. Deployment pages (the bulk of any sync:
nested pull requests and flag references) are fetched from the sandbox once with aiohttp and
kept as bytes; each timed pass then parses them batch by batch (untimed), runs the ETL's own
deployments normalizer (timed) and `merge_batch` into a fresh DuckDB file opened as `etl
sync` opens it (timed), with the batch size the ETL uses (`sync.batch_records`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import orjson

from etl.config import Stream, SyncSettings, WarehouseSettings
from etl.normalize import NORMALIZERS, Batch, UnknownFields
from etl.rawjson import split_page
from etl.records import Fetched
from etl.warehouse import open_warehouse
from etl.warehouse.merge import stage

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"


@dataclass(frozen=True)
class CapturedPage:
    project_key: str
    environment_key: str
    body: bytes


async def _get(session: aiohttp.ClientSession, url: str, params: Any = None) -> bytes:
    async with session.get(url, params=params) as response:
        response.raise_for_status()
        return await response.read()


async def _listing(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        body = orjson.loads(await _get(session, url, {"limit": 20, "offset": len(items)}))
        items += body["items"]
        if not body["items"] or len(items) >= body["totalCount"]:
            return items


async def _chain(
    session: aiohttp.ClientSession, base: str, project: str, env: str, from_ms: int, to_ms: int
) -> list[CapturedPage]:
    params: dict[str, str] = {
        "projectKey": project, "environmentKey": env, "from": str(from_ms), "to": str(to_ms),
        "limit": "100", "expand": "pullRequests,flagReferences",
    }  # fmt: skip
    pages: list[CapturedPage] = []
    while True:
        raw = await _get(session, base + DEPLOYMENTS, params)
        pages.append(CapturedPage(project, env, raw))
        following = orjson.loads(raw).get("_links", {}).get("next", {}).get("href")
        if not following:
            return pages
        params = {**params, **dict(parse_qsl(urlsplit(following).query))}


async def _capture(base: str, token: str, backfill_days: int) -> list[CapturedPage]:
    headers = {"Authorization": token, "LD-API-Version": "beta"}
    to_ms = int(time.time() * 1000)
    from_ms = to_ms - backfill_days * 86_400_000
    async with aiohttp.ClientSession(headers=headers) as session:
        projects = await _listing(session, base + "/api/v2/projects")
        pairs: list[tuple[str, str]] = []
        for project in projects:
            envs = await _listing(session, f"{base}/api/v2/projects/{project['key']}/environments")
            pairs += [(project["key"], env["key"]) for env in envs]
        chains = await asyncio.gather(
            *(_chain(session, base, p, e, from_ms, to_ms) for p, e in pairs)
        )
    return [page for chain in chains for page in chain]


def capture_deployment_pages(base: str, token: str, backfill_days: int = 180) -> list[CapturedPage]:
    """Every deployment page (100 per page, expanded) of every project and environment."""
    return asyncio.run(_capture(base, token, backfill_days))


@dataclass(frozen=True)
class StageTimes:
    records: int
    rows: int
    batches: int
    normalize_s: float
    load_s: float

    @property
    def normalize_records_per_s(self) -> float:
        return self.records / self.normalize_s if self.normalize_s else 0.0

    @property
    def load_rows_per_s(self) -> float:
        return self.rows / self.load_s if self.load_s else 0.0


def time_stages(
    pages: list[CapturedPage], db: Path, batch_records: int | None = None
) -> StageTimes:
    """Normalize and load every captured page in ETL-sized batches; time each stage."""
    batch_records = batch_records or SyncSettings().batch_records
    normalizer = NORMALIZERS[Stream.DEPLOYMENTS]
    unknown = UnknownFields()
    run_id = f"bench-{int(time.time())}"
    writer = open_warehouse(db, WarehouseSettings(path=db)).writer()  # as `etl sync` opens it
    records = rows = batches = 0
    normalize_s = load_s = 0.0
    try:
        writer.migrate()
        index = 0
        while index < len(pages):
            units: list[Fetched] = []
            count = 0
            while index < len(pages) and count < batch_records:
                page = pages[index]
                items, _ = split_page(page.body)
                assert items is not None
                context = {"project_key": page.project_key, "environment_key": page.environment_key}
                units.append(Fetched(Stream.DEPLOYMENTS, context, items, source=page.body))
                count += len(items)
                index += 1
            now = datetime.now(UTC)
            started = time.perf_counter()
            frames = normalizer(units, Batch(run_id, now, unknown))
            normalized = time.perf_counter()
            writer.merge_batch(stage(frames), [], run_id=run_id, now=now)
            loaded = time.perf_counter()
            normalize_s += normalized - started
            load_s += loaded - normalized
            records += count
            rows += sum(frame.height for frame in frames.values())
            batches += 1
    finally:
        writer.close()
    return StageTimes(records, rows, batches, normalize_s, load_s)
