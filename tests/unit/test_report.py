"""`etl report` on hand-built warehouses: escaping, no data, the command's errors."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from etl.report import write_report
from etl.warehouse.duckdb_file import connect
from etl.warehouse.migrate import migrate

HOSTILE = '<script>alert("x")</script>&<img src=http://evil.test/x.png>'
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _warehouse(path: Path, *, application: str | None = None) -> Path:
    conn = connect(path)
    try:
        migrate(conn)
        if application is not None:
            for n, status in enumerate(("finished", "failed", "finished")):
                conn.execute(
                    "INSERT INTO deployments (deployment_id, project_key, environment_key,"
                    " application_key, application_version, started_at, ended_at, status, kind,"
                    " active, archived, number_of_contributors, number_of_pull_requests,"
                    " lines_added, lines_deleted, lead_time_ms, _raw, _run_id, _loaded_at)"
                    " VALUES (?, ?, 'production', ?, ?, ?, ?, ?, 'deployment', true, false,"
                    " 0, 0, 0, 0, 7200000, '{}', 'r', now())",
                    [f"d{n}", HOSTILE, application, HOSTILE, T0 + timedelta(days=n),
                     T0 + timedelta(days=n, minutes=10), status],
                )  # fmt: skip
    finally:
        conn.close()
    return path


def test_values_from_the_api_are_escaped(tmp_path):
    db = _warehouse(tmp_path / "w.duckdb", application=HOSTILE)
    page = write_report(db, tmp_path / "r.html").path.read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;img" in page


def test_a_warehouse_without_deployments_says_no_data(tmp_path):
    db = _warehouse(tmp_path / "w.duckdb")
    result = write_report(db, tmp_path / "r.html")
    page = result.path.read_text(encoding="utf-8")
    assert result.range_from is None
    assert "No deployments in the warehouse yet." in page


def test_the_range_defaults_to_the_last_28_days_of_data(tmp_path):
    db = _warehouse(tmp_path / "w.duckdb", application="api")
    result = write_report(db, tmp_path / "r.html")
    assert (result.range_from, result.range_to) == (
        (T0 + timedelta(days=2 - 27)).date(),
        (T0 + timedelta(days=2)).date(),
    )
    assert result.headline["deployments"] == 3
    assert result.headline["failed_rate"] == 1 / 3


def _etl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etl", *args], capture_output=True, text=True, check=False
    )


def test_the_command_writes_the_page_and_names_it(tmp_path):
    db = _warehouse(tmp_path / "w.duckdb", application="api")
    out = tmp_path / "out" / "page.html"
    done = _etl("report", "--db", str(db), "--out", str(out), "--since", "2026-03-01")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report written to {out}"
    assert "01 Mar 2026 – 04 Mar 2026" in out.read_text(encoding="utf-8")


def test_the_command_fails_in_one_line(tmp_path):
    missing = _etl("report", "--db", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0
    assert missing.stderr.startswith("etl: error: ") and "no warehouse here yet" in missing.stderr
    db = _warehouse(tmp_path / "w.duckdb", application="api")
    bad = _etl("report", "--db", str(db), "--since", "last tuesday")
    assert (bad.returncode, bad.stderr.strip()) == (
        2,
        "etl: error: --since: 'last tuesday' is not an ISO date (YYYY-MM-DD)",
    )


def _execute(db: Path, *statements: tuple[str, list[object]]) -> None:
    conn = connect(db)
    try:
        for sql, params in statements:
            conn.execute(sql, params)
    finally:
        conn.close()


def test_the_headline_counts_the_critical_environments_when_there_are_any(tmp_path):
    db = _warehouse(tmp_path / "w.duckdb", application="api")
    _execute(db, (
        "INSERT INTO deployments SELECT * REPLACE ('d-staging' AS deployment_id,"
        " 'staging' AS environment_key) FROM deployments WHERE deployment_id = 'd0'", [],
    ))  # fmt: skip
    assert write_report(db, tmp_path / "a.html").headline["deployments"] == 4
    add_environment = (
        "INSERT INTO environments (project_key, environment_key, environment_id, name, critical,"
        " _raw, _run_id, _loaded_at) VALUES (?, ?, ?, ?, ?, '{}', 'r', now())"
    )
    _execute(
        db,
        (add_environment, [HOSTILE, "production", "p", "Production", True]),
        (add_environment, [HOSTILE, "staging", "s", "Staging", False]),
    )
    result = write_report(db, tmp_path / "b.html")
    assert result.scope == "critical environments (production)"
    assert result.headline["deployments"] == 3
