"""Tiny hand-built warehouses for the metric views: insert a deployment, read one row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)
M = timedelta(minutes=1)


def deploy(
    warehouse: duckdb.DuckDBPyConnection,
    deployment_id: str,
    started: datetime,
    *,
    status: str = "finished",
    kind: str = "deployment",
    archived: bool = False,
    lead_hours: float = 2.0,
    prs: int = 1,
    ended: datetime | None = None,
    environment: str = "production",
    application: str = "api",
    project: str = "p",
    version: str = "v1",
    lines: tuple[int, int] = (0, 0),
    stages_h: tuple[float, float, float, float] | None = None,
) -> None:
    """One deployment; it runs 10 minutes unless `ended` says otherwise."""
    if ended is None and status != "started":
        ended = started + 10 * M
    coding, review, wait, run = (int(h * 3_600_000) for h in stages_h or (0, 0, 0, 0))
    warehouse.execute(
        "INSERT INTO deployments (deployment_id, project_key, environment_key, application_key,"
        " application_version, started_at, ended_at, status, kind, active, archived,"
        " number_of_contributors, number_of_pull_requests, lines_added, lines_deleted,"
        " lead_time_ms, coding_duration_ms, review_duration_ms, wait_duration_ms,"
        " deploy_duration_ms, _raw, _run_id, _loaded_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, true, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, '{}', 'r', now())",
        [deployment_id, project, environment, application, version, started, ended, status,
         kind, archived, prs, lines[0], lines[1], int(lead_hours * 3_600_000), coding, review,
         wait, run],
    )  # fmt: skip


def environment(
    warehouse: duckdb.DuckDBPyConnection, key: str, *, critical: bool, project: str = "p"
) -> None:
    warehouse.execute(
        "INSERT INTO environments (project_key, environment_key, environment_id, name, critical,"
        " _raw, _run_id, _loaded_at) VALUES (?, ?, ?, ?, ?, '{}', 'r', now())",
        [project, key, f"id-{key}", key, critical],
    )


def flag_reference(
    warehouse: duckdb.DuckDBPyConnection, deployment_id: str, flag: str, added: int, removed: int
) -> None:
    warehouse.execute(
        "INSERT INTO deployment_flag_references VALUES (?, 'p', ?, ?, ?, 'r')",
        [deployment_id, flag, added, removed],
    )


def rows(warehouse: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    result = warehouse.execute(sql)
    columns = [d[0] for d in result.description or []]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def one(warehouse: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    found = rows(warehouse, sql)
    assert len(found) == 1, found
    return found[0]
