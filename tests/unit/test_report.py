"""`etl report` on hand-built warehouses: escaping, no data, the command's errors."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hand_built import H, deploy

from etl.report import write_report
from etl.warehouse.duckdb_file import connect
from etl.warehouse.migrate import migrate

HOSTILE = '<script>alert("x")</script>&<img src=http://evil.test/x.png>'
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


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


def _hand_built(path: Path, build) -> Path:
    conn = connect(path)
    try:
        migrate(conn)
        build(conn)
    finally:
        conn.close()
    return path


def _page(tmp_path: Path, build, **kwargs) -> tuple[str, dict]:
    db = _hand_built(tmp_path / "w.duckdb", build)
    result = write_report(db, tmp_path / "r.html", **kwargs)
    return result.path.read_text(encoding="utf-8"), result.headline


def test_a_tier_with_less_data_than_it_needs_says_too_few(tmp_path):
    def build(conn):
        for n in range(3):  # 3 lead times and 3 ended changes: under both minimums of 5
            deploy(conn, f"d{n}", T0 + n * H)

    page, headline = _page(tmp_path, build)
    assert (headline["lead_time_n"], headline["dora_lead_time_tier"]) == (3, None)
    # LaunchDarkly's lead-time, DORA's lead-time and change-failure badges, on the card and
    # on the application's row (no recovery: no failure is "no data", not "too few"); the
    # team table repeats the row's two DORA badges for `(no team)`
    before_teams, teams = page.split('<section id="teams">')
    assert before_teams.count(">too few</span>") == 6
    assert teams.split("</table>")[0].count(">too few</span>") == 2


def test_the_cards_compare_with_the_previous_period_of_equal_length(tmp_path):
    def build(conn):
        deploy(conn, "before", T0 - 10 * DAY)  # in the 7 days before the range
        for n in range(3):
            deploy(conn, f"now{n}", T0 + n * H)

    page, headline = _page(tmp_path, build, since=T0.date(), until=(T0 + 6 * DAY).date())
    assert (headline["deployments"], headline["deployments_prev"]) == (3, 0)
    assert "▲ 3 vs previous" in page


def test_open_failures_are_listed_with_their_age_at_the_data_end(tmp_path):
    def build(conn):
        deploy(conn, "broken", T0, status="failed")
        deploy(conn, "other", T0 + 2 * DAY, application="other")

    page, headline = _page(tmp_path, build)
    assert (headline["unrecovered"], headline["recovery_lower_bound"]) == (1, True)
    section = page.split('id="recovery"', 1)[1].split("</section>", 1)[0]
    assert "2.0 d" in section and "failed" in section
    assert "≥ 2.0 d" in page  # the recovery card's median is a lower bound


def test_projects_get_roll_up_cards_and_partial_weeks_are_shaded(tmp_path):
    def build(conn):
        deploy(conn, "a", T0, project="shop")
        deploy(conn, "b", T0 + 9 * DAY, project="bank")

    page, _ = _page(tmp_path, build)
    assert "Per project" in page
    assert "<h3>shop</h3>" in page and "<h3>bank</h3>" in page
    assert 'class="partial"' in page  # the first and the last week are partial
