"""`etl demo`: the sandbox API, one full sync, a look at what landed, and the HTML report.

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
from etl.normalize.registry import TABLES
from etl.report import ReportResult, write_report
from etl.sandbox import SandboxConfig, running_sandbox
from etl.sync import sync
from etl.warehouse import open_reader

EXAMPLE_QUERIES = {
    "The four keys in production, last 28 days of data (dora_summary)": """
        SELECT project_key, application_key, deployments AS deploys,
               round(lead_time_p50_h, 1) AS lead_p50_h, launchdarkly_lead_time_tier AS ld_tier,
               dora_lead_time_tier AS dora_lead, round(100 * change_failure_rate, 1) AS cfr_pct,
               round(recovery_p50_h, 2) AS recovery_h
        FROM dora_summary WHERE environment_key = 'production' ORDER BY ALL LIMIT 8""",
    "Release funnel (release_funnel)": """
        SELECT project_key, pipeline_key, phase_index, phase_name, active_now, reached,
               round(100 * reached_share) AS reached_pct
        FROM release_funnel ORDER BY ALL LIMIT 8""",
    "Flags whose references in production are all gone (flag_cleanup_candidates)": """
        SELECT project_key, flag_key, CAST(reached_zero_at AS DATE) AS gone_on,
               in_active_release
        FROM flag_cleanup_candidates ORDER BY reached_zero_at DESC LIMIT 5""",
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
    page = write_report(db, db.parent / "report.html")
    _print_answers(console, page)
    console.print(f'explore: .venv/bin/etl sql --db {db} "SELECT * FROM dora_summary"')
    return report.exit_code


def _print_answers(console: Console, page: ReportResult) -> None:
    """The report's path and its headline answers."""
    h = page.headline
    console.print(f"\n[bold]report[/bold]: {page.path.resolve()}")
    if not h:
        return
    console.print(
        f"  {page.range_from} to {page.range_to}, {page.scope}: {h['deployments']:,} deployments"
    )
    console.print(
        f"  lead time: median {_hours(h['lead_time_p50_h'])} of {h['lead_time_n']} changes, "
        f"mean per pull request {_hours(h['lead_time_pr_weighted_mean_h'])} (LaunchDarkly: "
        f"{_tier(h['launchdarkly_lead_time_tier'])}, DORA: {_tier(h['dora_lead_time_tier'])})"
    )
    console.print(
        f"  change failure rate: {_percent(h['change_failure_rate'])} of "
        f"{h['change_deployments_ended']} changes (DORA: {_tier(h['dora_change_failure_tier'])})"
    )
    console.print(
        f"  LaunchDarkly's rate (rollbacks ÷ deployments): "
        f"{_percent(h['launchdarkly_failure_rate'])}"
    )
    bound = "at least " if h["recovery_lower_bound"] else ""
    console.print(
        f"  failed deployment recovery: median {bound}{_hours(h['recovery_p50_h'])} "
        f"(DORA: {_tier(h['dora_recovery_tier'])}), {h['unrecovered']} not recovered yet\n"
    )


def _tier(value: str | None) -> str:
    return "too few or no data" if value is None else value


def _hours(value: float | None) -> str:
    return "no data" if value is None else f"{value:.1f} h"


def _percent(value: float | None) -> str:
    return "no data" if value is None else f"{value:.1%}"
