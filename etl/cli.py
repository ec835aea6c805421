"""The `etl` command: parse flags, build `Settings`, call one function, print a result.

Every `EtlError` becomes one line on stderr and an exit code (sqlite-utils' CLI edge):
0 success · 1 run failed · 2 bad configuration or usage · 3 partial (some streams failed,
the rest was loaded).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from etl.config import Settings, Stream, WarehouseSettings, load_file_settings, load_settings
from etl.errors import ConfigError, EtlError
from etl.logs import configure_logging
from etl.secret import Secret

P = ParamSpec("P")
R = TypeVar("R")

EXIT_FAILED, EXIT_CONFIG, EXIT_PARTIAL = 1, 2, 3
DEFAULT_CONFIG = Path("config.toml")


def fail(message: str, code: int) -> None:
    """Print one line to stderr and exit."""
    click.echo(f"etl: error: {message}", err=True)
    sys.exit(code)


def errors_to_exit_codes(func: Callable[P, R]) -> Callable[P, R]:
    """Turn package errors into one line and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), EXIT_CONFIG)
        except EtlError as exc:
            fail(str(exc), EXIT_FAILED)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except asyncio.CancelledError:
            fail("terminated", 143)
        raise AssertionError("unreachable")

    return wrapper


async def _until_terminated(work: Coroutine[Any, Any, R]) -> R:
    """Run `work`, cancelling it on SIGTERM (a scheduler or `kill` stopping us).

    Cancellation unwinds through `sync`, which records the run as failed in the ledger
    before the process exits, instead of leaving it `running` until the next run.
    """
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await task
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _streams(values: tuple[str, ...]) -> list[str] | None:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    valid = {stream.value for stream in Stream}
    for name in names:
        if name not in valid:
            raise ConfigError(f"--stream: unknown stream {name!r} (one of: {', '.join(valid)})")
    return names or None


def _default_config(config: Path | None) -> Path | None:
    return DEFAULT_CONFIG if config is None and DEFAULT_CONFIG.is_file() else config


def warehouse_settings(db: Path | None) -> WarehouseSettings:
    """`[warehouse]` of `./config.toml` (or the defaults) with `--db`; no token needed."""
    overrides = {"warehouse.path": str(db) if db else None}
    return load_file_settings(_default_config(None), overrides).warehouse


def warehouse_secrets(settings: WarehouseSettings) -> list[Secret]:
    """A DuckLake catalog's password and S3 keys, from the environment: kept out of logs."""
    from etl.warehouse.ducklake_s3 import key_values

    values = [os.environ.get(settings.password_env, ""), *key_values()]
    return [Secret(value) for value in values if value]


def build_settings(
    config: Path | None,
    *,
    db: Path | None = None,
    data_path: str | None = None,
    base_url: str | None = None,
    since: str | None = None,
    until: str | None = None,
    streams: tuple[str, ...] = (),
    projects: tuple[str, ...] = (),
    log_format: str | None = None,
    progress: str | None = None,
) -> Settings:
    """Settings from the config file (default `./config.toml` when present) and the flags."""
    config = _default_config(config)
    overrides: dict[str, Any] = {
        "warehouse.path": str(db) if db else None,
        "warehouse.data_path": data_path,
        "api.base_url": base_url,
        "sync.streams": _streams(streams),
        "scope.projects": list(projects) or None,
        "log.format": log_format,
        "log.progress": progress,
    }
    return load_settings(config, overrides, os.environ, since=since, until=until)


class _Commands(click.Group):
    """The command group; `sandbox` is imported only when asked for.

    The sandbox pulls in the aiohttp server and the data generator, which would add to the
    start-up of every `etl sync` (a scheduled job pays it on each run).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), "sandbox"])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "sandbox":
            from etl.sandbox.cli import sandbox_command

            return sandbox_command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ld-insights-etl")
def cli() -> None:
    """Pull LaunchDarkly engineering data into a DuckDB warehouse.

    The API token is read from the environment (LD_API_TOKEN unless config.toml names
    another variable); it is never accepted as a flag.

    \b
    Example:
      export LD_API_TOKEN=api-...      # an access token with read access
      etl doctor                       # check config, token, API and warehouse
      etl sync                         # one run, as config.toml says
      etl status --max-age 2h          # fresh enough? (exit 4 if not)
    """


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: ./config.toml if present).",
)
db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Warehouse: a DuckDB file, or ducklake:postgres:<conninfo> (password from PGPASSWORD).",
)
data_path_option = click.option(
    "--data-path", help="Where a DuckLake keeps its Parquet files (a directory or s3://…)."
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or JSON for monitoring.",
)
log_format_option = click.option(
    "--log-format",
    type=click.Choice(["text", "json", "auto"]),
    help="Log lines on stderr: text, json (one object per line), auto (json off a terminal). "
    "Default: [log] format.",
)


@cli.command()
@config_option
@db_option
@data_path_option
@click.option("--base-url", help="API base URL (e.g. the sandbox's http://127.0.0.1:8765).")
@click.option("--since", help="Backfill start, ISO date or datetime (UTC); forces a re-read.")
@click.option("--until", help="End of the range, ISO date or datetime (UTC); default now.")
@click.option(
    "--stream",
    "streams",
    multiple=True,
    metavar="NAME",
    help=f"Only these streams (repeat or comma-separate): {', '.join(s.value for s in Stream)}.",
)
@click.option("--project", "projects", multiple=True, metavar="KEY", help="Only these projects.")
@click.option("--quiet", "-q", is_flag=True, help="No summary table.")
@log_format_option
@click.option(
    "--progress",
    type=click.Choice(["auto", "live", "lines", "off"]),
    help="auto: a live table on a terminal, a line every 30 s elsewhere; live; lines; off. "
    "Default: [log] progress.",
)
@errors_to_exit_codes
def sync(
    config: Path | None,
    db: Path | None,
    data_path: str | None,
    base_url: str | None,
    since: str | None,
    until: str | None,
    streams: tuple[str, ...],
    projects: tuple[str, ...],
    quiet: bool,
    log_format: str | None,
    progress: str | None,
) -> None:
    """Run one sync: every selected stream from the API into the warehouse.

    Exit codes: 0 success, 1 failed, 2 bad configuration, 3 partial (some streams failed,
    the rest was loaded; see `etl status`). SIGTERM lets the batch being written commit,
    records the run as failed and exits 143; the next run resumes.

    \b
    Example:
      etl sync                                     # as config.toml says
      etl sync --since 2026-01-01 --stream deployments --log-format json
    """
    from etl.console import print_report
    from etl.progress import progress_for
    from etl.sync import sync as run_sync

    settings = build_settings(
        config, db=db, data_path=data_path, base_url=base_url, since=since, until=until,
        streams=streams, projects=projects, log_format=log_format, progress=progress,
    )  # fmt: skip
    configure_logging(
        settings.log.level, settings.token, settings.log.format,
        warehouse_secrets(settings.warehouse),
    )  # fmt: skip
    observer, display = progress_for(settings.log.progress)
    with display:
        report = asyncio.run(_until_terminated(run_sync(settings, observer)))
    if not quiet:
        print_report(report)
    if report.exit_code:
        fail(f"run {report.run_id} {report.status}: {report.error}", report.exit_code)


@cli.command()
@config_option
@db_option
@data_path_option
@click.option("--base-url", help="API base URL.")
@click.option(
    "--every",
    "every_minutes",
    type=click.FloatRange(min=0.1),
    help="Minutes between runs (at least 0.1); overrides [schedule].",
)
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    help="Stop after this many runs (default: run until stopped).",
)
@log_format_option
@errors_to_exit_codes
def schedule(
    config: Path | None,
    db: Path | None,
    data_path: str | None,
    base_url: str | None,
    every_minutes: float | None,
    runs: int | None,
    log_format: str | None,
) -> None:
    """Sync on the [schedule] of config.toml (cron, UTC, or every N minutes), one run at a time.

    With an interval the first run starts at once; with cron, at its first time. A time
    that comes while a run is still going is skipped; times missed by up to
    [schedule] misfire_grace_s are made up with one run. SIGTERM or Ctrl-C lets the batch
    being written commit, records the run as interrupted and stops (exit 143 / 130).

    \b
    Example (config.toml):
      [schedule]
      cron = "*/30 * * * *"        # every 30 minutes, UTC
      [lake]
      maintain_cron = "0 3 * * *"  # on a DuckLake: `etl lake maintain` daily at 03:00
    \b
      etl schedule                   # or: etl schedule --every 15
    """
    from etl.schedule import maintenance_trigger_for, run_schedule, trigger_for

    settings = build_settings(
        config, db=db, data_path=data_path, base_url=base_url, log_format=log_format
    )
    configure_logging(
        settings.log.level, settings.token, settings.log.format,
        warehouse_secrets(settings.warehouse),
    )  # fmt: skip
    trigger = trigger_for(settings.schedule, every_minutes)
    run_now = every_minutes is not None or settings.schedule.cron is None
    maintenance = maintenance_trigger_for(settings)
    code = asyncio.run(
        run_schedule(settings, trigger, runs, run_now=run_now, maintenance=maintenance)
    )
    if code:
        sys.exit(code)


@cli.command()
@config_option
@db_option
@click.option("--limit", default=5, show_default=True, help="How many runs to show.")
@click.option(
    "--max-age",
    metavar="AGE",
    help="Exit 4 when a stream's data is older than this (e.g. 90m, 6h, 2d).",
)
@format_option
@errors_to_exit_codes
def status(config: Path | None, db: Path | None, limit: int, max_age: str | None, fmt: str) -> None:
    """Show each stream's freshness and the last runs (requests and 429s per stream).

    Exit codes, for monitoring: 0 fine, 1 the last run failed or was killed, 3 it was
    partial, 4 a stream's data is older than --max-age (or was never loaded). Needs no token.

    \b
    Example:
      etl status --max-age 6h || alert "LaunchDarkly data is stale"
    """
    from datetime import UTC, datetime

    from etl.console import print_json, print_status
    from etl.status import parse_age, read_status

    age = parse_age(max_age) if max_age else None
    overrides = {"warehouse.path": str(db) if db else None}
    file = load_file_settings(_default_config(config), overrides)
    path = file.warehouse.path
    streams = [stream.value for stream in file.sync.streams]
    report = read_status(
        path, streams, datetime.now(UTC), limit=limit, max_age=age, settings=file.warehouse
    )
    if fmt == "json":
        print_json(report)
    else:
        print_status(report, path)
    if report.exit_code:
        sys.exit(report.exit_code)


@cli.command()
@config_option
@db_option
@click.option("--base-url", help="API base URL.")
@format_option
@errors_to_exit_codes
def doctor(config: Path | None, db: Path | None, base_url: str | None, fmt: str) -> None:
    """Check what a sync needs: config, token, API access, warehouse, disk space.

    One cheap request per API check (projects, each configured project, each beta route
    the configured streams use), within the rate limit. The token is never printed.
    Exit 1 when a check fails; each failure comes with a fix.

    \b
    Example:
      LD_API_TOKEN=api-... etl doctor --config /etc/etl/config.toml
    """
    from etl.console import print_checks, print_json
    from etl.doctor import failed, run_doctor

    rows = asyncio.run(run_doctor(_default_config(config), os.environ, db=db, base_url=base_url))
    if fmt == "json":
        print_json(rows)
    else:
        print_checks(rows)
    if failed(rows):
        fail("doctor: some checks failed (see the fix column)", EXIT_FAILED)


@cli.command()
@db_option
@click.argument("query")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
    show_default=True,
)  # fmt: skip
@errors_to_exit_codes
def sql(db: Path | None, query: str, fmt: str) -> None:
    """Run a read-only SQL query against the warehouse and print the result.

    \b
    Example:
      etl sql "SELECT * FROM dora_summary WHERE environment_key = 'production'"
      etl sql --format csv "SELECT * FROM deployment_lead_times" > lead_times.csv
    """
    from etl.console import run_query

    settings = warehouse_settings(db)
    run_query(settings.path, query, fmt, settings)


@cli.command()
@db_option
@click.option(
    "--format", "fmt", type=click.Choice(["parquet"]), default="parquet", show_default=True
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="Directory to (re)place with the export; swapped in whole when complete.",
)  # fmt: skip
@click.option(
    "--table", "tables", multiple=True, metavar="NAME", help="Only these tables or views."
)
@errors_to_exit_codes
def export(db: Path | None, fmt: str, out: Path, tables: tuple[str, ...]) -> None:
    """Write every table and view of the warehouse as Parquet files, with a manifest.

    zstd-compressed; deployments split by month (deployments/month=YYYY-MM/). A reader of
    --out sees the previous complete export or the new one, never a half-written one;
    manifest.json lists tables, row counts, column types and the run they came from.

    \b
    Example:
      etl export --out exports/ld
      etl export --out exports/lead --table deployment_lead_times --table deployments
    """
    from etl.export import export_parquet

    settings = warehouse_settings(db)
    manifest = export_parquet(settings.path, out, tables, settings)
    rows = sum(entry["rows"] for entry in manifest["tables"].values())
    run = manifest["run"]["run_id"] if manifest["run"] else "no completed run"
    count = len(manifest["tables"])
    click.echo(f"exported {count} tables and views, {rows:,} rows, to {out} ({run})")


@cli.command()
@db_option
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
    show_default=True, help="The HTML file to write.",
)  # fmt: skip
@click.option("--since", help="First UTC day of the summary (default: 27 days before --until).")
@click.option("--until", help="Last UTC day of the summary (default: the newest deployment's).")
@errors_to_exit_codes
def report(db: Path | None, out: Path, since: str | None, until: str | None) -> None:
    """Write one self-contained HTML page of the metrics (no network needed to view it).

    The four keys with their tiers over the range (default: the last 28 days of data, not of
    the clock), weekly trends, release funnels and phase times, flag churn, the latest runs.

    \b
    Example:
      etl report --since 2026-01-01 --until 2026-03-31 --out q1.html
    """
    from etl.report import parse_day, write_report

    settings = warehouse_settings(db)
    result = write_report(
        settings.path, out, parse_day(since, "--since"), parse_day(until, "--until"), settings
    )
    click.echo(f"report written to {result.path}")


@cli.command()
@db_option
@click.option(
    "--scale", type=click.Choice(["tiny", "small", "medium", "large"]), default="small",
    show_default=True,
)  # fmt: skip
@click.option("--seed", default=42, show_default=True)
@errors_to_exit_codes
def demo(db: Path | None, scale: str, seed: int) -> None:
    """Start the built-in sandbox API, sync it into a warehouse and show what landed.

    No LaunchDarkly account and no network needed.

    \b
    Example:
      etl demo --scale medium --db /tmp/demo.duckdb
    """
    from etl.demo import run_demo

    code = asyncio.run(run_demo(db or Path("warehouse.duckdb"), scale, seed))
    if code:
        sys.exit(code)


def _lake_commands() -> None:
    from etl.lake_cli import lake

    cli.add_command(lake)


_lake_commands()


def main() -> None:
    """Console entry point.

    A lake writer keeps the DuckDB instances that DuckDB invalidated (a catalog that went
    away mid-statement) instead of closing them; destroying one at interpreter exit can
    abort the process after its error line was printed (exit -6 instead of 1). So a process
    holding one leaves without destroying anything, once its output is flushed.
    """
    try:
        cli(prog_name="etl")
    except SystemExit as exc:
        from etl.warehouse.ducklake import holds_invalidated_instances

        if holds_invalidated_instances():
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        raise
