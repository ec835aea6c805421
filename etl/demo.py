"""`etl demo`: the sandbox API, one full sync, and a look at what landed.

Runs the sandbox in this process on a free loopback port with its own token, so the demo
needs no LaunchDarkly account and touches no network.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from etl.config import load_settings
from etl.console import print_report
from etl.logs import configure_logging
from etl.normalize.schemas import TABLES
from etl.sandbox import SandboxConfig, running_sandbox
from etl.sync import sync
from etl.warehouse import open_reader

EXAMPLE_QUERIES = {
    "Deployments per environment, last 30 days": """
        SELECT project_key, environment_key, sum(deployments) AS deployments,
               sum(failed) AS failed, sum(rollbacks) AS rollbacks
        FROM deployment_frequency WHERE day >= current_date - 30
        GROUP BY ALL ORDER BY deployments DESC LIMIT 8""",
    "Median lead time (hours) to production, by application": """
        SELECT project_key, application_key, count(*) AS deployments,
               round(median(lead_time_hours), 1) AS median_lead_time_h,
               round(median(review_hours), 1) AS median_review_h
        FROM deployment_lead_times WHERE environment_key = 'production'
        GROUP BY ALL ORDER BY median_lead_time_h DESC LIMIT 8""",
    "Active releases per pipeline phase": """
        SELECT project_key, pipeline_key, phase_index, phase_name, active_releases
        FROM release_pipeline_progress ORDER BY ALL LIMIT 10""",
}


async def run_demo(db: Path, scale: str, seed: int) -> int:
    """Serve the sandbox, sync it into `db`, print a summary; return the sync's exit code."""
    console = Console()
    sandbox_config = SandboxConfig(seed=seed, scale=scale)  # type: ignore[arg-type]
    configure_logging("WARNING")
    async with running_sandbox(sandbox_config) as sandbox:
        console.print(f"sandbox API on {sandbox.url} (scale {scale}, seed {seed})")
        settings = load_settings(
            None,
            {
                "api.base_url": sandbox.url,
                "warehouse.path": str(db),
                "limits.requests_per_second": 500.0,
            },
            {**os.environ, "LD_API_TOKEN": sandbox_config.token},
        )
        report = await sync(settings)
    print_report(report)
    conn = open_reader(db)
    try:
        console.print(f"\nwarehouse {db}:")
        for table in TABLES:
            (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
            console.print(f"  {table:<32} {count:>9,} rows")
        for title, query in EXAMPLE_QUERIES.items():
            console.print(f"\n[bold]{title}[/bold]")
            print(conn.sql(query))
    finally:
        conn.close()
    console.print(f'\nexplore: .venv/bin/etl sql --db {db} "SELECT * FROM deployment_frequency"')
    return report.exit_code
