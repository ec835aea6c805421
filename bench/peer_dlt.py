"""The peer: the same LaunchDarkly extract written the idiomatic dlt way, into DuckDB.

This is what a competent dlt user would write from dlt's `rest_api` documentation: one
declarative source, dlt's own paginators, parent resources `resolve`d into child paths and
params, `write_disposition="merge"` on primary keys, dlt's requests client (which retries 429
and 5xx and honours `Retry-After`), and DuckDB as the destination. Nothing here is tuned to
lose: no per-row Python beyond what dlt itself does, defaults everywhere else.

    python -m bench.peer_dlt --base-url http://127.0.0.1:8765 --token T --db peer.duckdb

Prints one JSON line on stdout: rows per table and the load info summary. Run as its own
process by the benchmark so its wall time and peak RSS are measured like `etl sync`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DAY_MS = 24 * 3_600_000

# The LaunchDarkly paths (ld-api.md). Beta routes need `LD-API-Version: beta`; sending it on
# every call is harmless, so it goes in the client headers as a dlt user would do.
DEPLOYMENTS = "api/v2/engineering-insights/deployments"


def source_config(base_url: str, token: str, backfill_days: int, page_size: int) -> Any:
    """The `rest_api` source configuration (a `RESTAPIConfig` dict)."""
    now_ms = int(time.time() * 1000)
    offset = {"type": "offset", "limit": page_size, "total_path": "totalCount"}
    discovery_offset = {"type": "offset", "limit": 20, "total_path": "totalCount"}
    return {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            "headers": {"Authorization": token, "LD-API-Version": "beta"},
        },
        "resource_defaults": {
            "write_disposition": "merge",
            "endpoint": {"data_selector": "items"},
        },
        "resources": [
            {
                "name": "projects",
                "primary_key": "key",
                "endpoint": {"path": "api/v2/projects", "paginator": discovery_offset},
            },
            {
                "name": "environments",
                "primary_key": ["_projects_key", "key"],
                "include_from_parent": ["key"],
                "endpoint": {
                    "path": "api/v2/projects/{resources.projects.key}/environments",
                    "paginator": discovery_offset,
                },
            },
            {
                # Cursor paging: follow `_links.next.href` (it carries every original param
                # plus `after`) until it is absent.
                "name": "deployments",
                "primary_key": "id",
                "endpoint": {
                    "path": DEPLOYMENTS,
                    "params": {
                        "projectKey": "{resources.environments._projects_key}",
                        "environmentKey": "{resources.environments.key}",
                        "from": now_ms - backfill_days * DAY_MS,
                        "to": now_ms,
                        "limit": page_size,
                        "expand": "pullRequests,flagReferences",
                    },
                    "paginator": {"type": "json_link", "next_url_path": "_links.next.href"},
                },
            },
            {
                "name": "release_pipelines",
                "primary_key": ["_projects_key", "key"],
                "include_from_parent": ["key"],
                "endpoint": {
                    "path": "api/v2/projects/{resources.projects.key}/release-pipelines",
                    "paginator": offset,
                },
            },
            {
                "name": "release_progressions",
                "primary_key": [
                    "_release_pipelines__projects_key",
                    "_release_pipelines_key",
                    "flagKey",
                ],
                "include_from_parent": ["key", "_projects_key"],
                "endpoint": {
                    "path": (
                        "api/v2/projects/{resources.release_pipelines._projects_key}"
                        "/release-pipelines/{resources.release_pipelines.key}/releases"
                    ),
                    "paginator": offset,
                },
            },
            {
                "name": "release_policies",
                "primary_key": "_id",
                "include_from_parent": ["key"],
                "endpoint": {
                    "path": "api/v2/projects/{resources.projects.key}/release-policies",
                    "paginator": "single_page",
                },
            },
        ],
    }


def run(
    base_url: str, token: str, db: Path, workdir: Path, backfill_days: int, page_size: int
) -> dict[str, Any]:
    """Run the pipeline once into `db` and return row counts per table."""
    # dlt keeps pipeline state and telemetry under DLT_DATA_DIR; keep them out of ~/.dlt.
    os.environ.setdefault("DLT_DATA_DIR", str(workdir / "dlt-data"))
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

    import dlt
    from dlt.sources.rest_api import rest_api_source

    config = source_config(base_url, token, backfill_days, page_size)
    source = rest_api_source(config, name="launchdarkly")
    pipeline = dlt.pipeline(
        pipeline_name="ld_peer",
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name="launchdarkly",
        pipelines_dir=str(workdir / "pipelines"),
    )
    info = pipeline.run(source)
    info.raise_on_failed_jobs()
    trace = pipeline.last_trace
    normalized = trace.last_normalize_info if trace is not None else None
    row_counts = (normalized.row_counts if normalized is not None else None) or {}
    counts = {
        table: int(count) for table, count in row_counts.items() if not table.startswith("_dlt")
    }
    return {"row_counts": counts, "loads": len(info.loads_ids)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_dlt", description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", default=os.environ.get("LD_API_TOKEN", ""))
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--backfill-days", type=int, default=180)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dlt-peer-") as tmp:
        workdir = args.workdir or Path(tmp)
        started = time.perf_counter()
        result = run(
            args.base_url, args.token, args.db, workdir, args.backfill_days, args.page_size
        )
        result["seconds"] = round(time.perf_counter() - started, 3)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
