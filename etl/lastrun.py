"""The outcome of the latest run, where `etl status` can read it without opening the sync's files.

A DuckDB-file warehouse publishes only runs that succeeded or were partial (readers see
end-of-run states), so the published ledger never shows a failed run, and the sync's own
working copy, which holds the whole ledger, is locked while a sync runs. The sync therefore
also writes its ledger row as JSON to `<warehouse>.sync/last-run.json` (replaced atomically):
`running`, with its process id, when it starts, and the outcome when it ends. A run that
was killed leaves `running` behind with a process that is gone.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import orjson

from etl.warehouse import open_warehouse
from etl.warehouse.duckdb_file import DuckDBFile

log = logging.getLogger(__name__)

NAME = "last-run.json"


def last_run_path(target: str | Path) -> Path | None:
    """Where the latest run's outcome is kept (None: the backend's ledger is always current)."""
    warehouse = open_warehouse(target)
    return warehouse.sync_dir / NAME if isinstance(warehouse, DuckDBFile) else None


def record_last_run(target: str | Path, row: dict[str, Any]) -> None:
    """Replace the record with `row` (plus this process); a failure to write only warns."""
    path = last_run_path(target)
    if path is None:
        return
    row = {**row, "pid": os.getpid(), "host": socket.gethostname()}
    temp = path.with_name(f".{NAME}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(orjson.dumps(row, default=str))
        os.replace(temp, path)
    except OSError as exc:
        log.warning("could not record the run's outcome in %s: %s", path, exc.strerror)


def read_last_run(target: str | Path) -> dict[str, Any] | None:
    """The latest run's record; a `running` one whose process is gone reads as `abandoned`."""
    path = last_run_path(target)
    if path is None or not path.is_file():
        return None
    try:
        row: dict[str, Any] = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if row.get("status") == "running" and row.get("host") == socket.gethostname():
        try:
            os.kill(int(row.get("pid", 0)), 0)
        except ProcessLookupError:
            row["status"] = "abandoned"
            row["error"] = "the process ended before the run finished (killed or crashed)"
        except (PermissionError, ValueError):
            pass
    return row
