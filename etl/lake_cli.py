"""`etl lake …`: the commands that only make sense on a DuckLake (etl/lake.py does the work)."""

from __future__ import annotations

from pathlib import Path

import click


def _settings(config: Path | None, db: Path | None, keep_days: float | None = None) -> object:
    from etl.cli import _default_config
    from etl.config import load_file_settings

    overrides = {
        "warehouse.path": str(db) if db else None,
        "lake.keep_snapshots_days": keep_days,
    }
    return load_file_settings(_default_config(config), overrides)


@click.group("lake")
def lake() -> None:
    """Commands for a DuckLake warehouse (warehouse.path = ducklake:postgres:…).

    \b
    Example:
      etl lake snapshot              # what readers see: snapshot id, time, run
      etl lake maintain              # merge files, expire snapshots, delete old files
    """


@lake.command()
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Config file.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="The DuckLake.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)  # fmt: skip
def snapshot(config: Path | None, db: Path | None, fmt: str) -> None:
    """Print the snapshot readers see: id, time, and the run that recorded it.

    `etl sql`, `report`, `export` and `status` attach the lake at this snapshot, the latest
    at which no run was in progress. A BI tool that attaches by itself pins it with
    ATTACH 'ducklake:postgres:…' AS ld (SNAPSHOT_VERSION <id>).

    \b
    Example:
      etl lake snapshot --format json
    """
    from etl.cli import errors_to_exit_codes
    from etl.config import FileSettings
    from etl.console import print_json
    from etl.lake import snapshot as read_snapshot

    def run() -> None:
        settings = _settings(config, db)
        assert isinstance(settings, FileSettings)
        pin = read_snapshot(settings.warehouse)
        if pin is None:
            click.echo(
                "no pinned snapshot: the lake's runs predate pinning; readers see the latest"
            )
            return
        made = pin.made_at.isoformat() if pin.made_at else None
        if fmt == "json":
            print_json({"snapshot_id": pin.snapshot_id, "made_at": made, "run_id": pin.run_id})
        else:
            click.echo(f"snapshot {pin.snapshot_id}  made {made}  by run {pin.run_id}")

    errors_to_exit_codes(run)()


@lake.command()
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Config file.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="The DuckLake.")
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0),
    help="Expire snapshots older than this (default: [lake] keep_snapshots_days).",
)
def maintain(config: Path | None, db: Path | None, keep_days: float | None) -> None:
    """Merge small files, expire old snapshots, delete files nothing needs any more.

    Safe while workers sync (each step is serialized with their batches); never expires the
    snapshot readers are pinned to, nor one a run in progress started from. Run it from one
    place, e.g. a daily cron job.

    \b
    Example:
      etl lake maintain --keep-days 7
    """
    from etl.cli import errors_to_exit_codes
    from etl.config import FileSettings
    from etl.lake import maintain as run_maintain

    def run() -> None:
        settings = _settings(config, db, keep_days)
        assert isinstance(settings, FileSettings)
        done = run_maintain(settings.warehouse, settings.lake)
        click.echo(done.describe())

    errors_to_exit_codes(run)()
