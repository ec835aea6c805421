"""Migrations and views: the warehouse's schema, from the `sql/` directory."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from etl.errors import WarehouseError
from etl.resources import sql_dir
from etl.warehouse.ddl import render
from etl.warehouse.sqlutil import rollback

log = logging.getLogger(__name__)


def migrate(conn: duckdb.DuckDBPyConnection, directory: Path | None = None) -> list[str]:
    """Apply pending migrations, each in one transaction with its bookkeeping row; then views.

    Each migration is rendered for DuckDB first (`ddl.render`: its `{{placeholders}}`).

    Returns:
        The names of the migrations applied now.
    """
    root = directory or sql_dir()
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations").fetchall()}
    applied: list[str] = []
    for path in sorted((root / "migrations").glob("*.sql")):
        if path.stem in done:
            continue
        sql = render(path.read_text(encoding="utf-8"), "duckdb", path.name)
        try:
            conn.execute("BEGIN TRANSACTION")
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", [path.stem])
            conn.execute("COMMIT")
        except duckdb.Error as exc:
            rollback(conn)
            raise WarehouseError(f"migration {path.name} failed: {exc}") from None
        applied.append(path.stem)
        log.debug("applied migration %s", path.stem)
    if applied and done:
        # A new warehouse is no news; an existing one whose schema changed is.
        log.info("warehouse schema upgraded: applied %s", ", ".join(applied))
    for path in sorted((root / "views").glob("*.sql")):
        try:
            conn.execute(path.read_text(encoding="utf-8"))
        except duckdb.Error as exc:
            raise WarehouseError(f"view {path.name} failed: {exc}") from None
    return applied
