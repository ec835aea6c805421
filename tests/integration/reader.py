"""A BI tool's connection as its own process: `python -m tests.integration.reader DB MODE OUT`.

`hold`: one read-only connection opened at start and queried in a loop (a dashboard's pool);
`reopen`: a new read-only connection for every query (a notebook re-running a cell). Each
query appends one JSON line to OUT: `{"state": [deployments, runs]}` or `{"error": "..."}`.
It stops when the file `OUT.stop` exists.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

STATE = "SELECT (SELECT count(*) FROM deployments), (SELECT count(*) FROM etl_runs)"


def main(db: str, mode: str, out: Path) -> None:
    stop = out.with_name(out.name + ".stop")
    held = duckdb.connect(db, read_only=True) if mode == "hold" else None
    with out.open("a", encoding="utf-8") as lines:
        while not stop.exists():
            try:
                if held is not None:
                    state = held.execute(STATE).fetchone()
                else:
                    with duckdb.connect(db, read_only=True) as conn:
                        state = conn.execute(STATE).fetchone()
                lines.write(json.dumps({"state": list(state or ())}) + "\n")
            except duckdb.Error as exc:
                lines.write(json.dumps({"error": str(exc)}) + "\n")
            lines.flush()
            time.sleep(0.01)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
