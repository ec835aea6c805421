from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from etl.records import WindowDone, WindowProgress
from etl.resources import sql_dir
from etl.state import ABANDON_AFTER, SETTLE, Window, plan_windows, start_run
from etl.warehouse.duckdb_file import connect
from etl.warehouse.merge import merge_batch
from etl.warehouse.migrate import migrate

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=180)
LOOKBACK = timedelta(days=8)
WEEK = timedelta(days=7)


def plan(warehouse, partitions, *, end=END, force=False, reverify=WEEK, page_size=100):
    return plan_windows(
        warehouse, partitions, run_id=f"run-{end:%j%H%M%S}", backfill_start=START, end=end,
        lookback=LOOKBACK, force_start=force, reverify=reverify, page_size=page_size,
    )  # fmt: skip


def finish(warehouse, windows):
    marks = [WindowDone(w.project_key, w.environment_key, w.from_at, w.to_at) for w in windows]
    merge_batch(warehouse, {}, marks, run_id="done", now=END)


def add_deployments(warehouse, started, *, project="p", env="prod", running=()):
    for number, at in enumerate(started):
        ended = None if at in running else at + timedelta(minutes=5)
        warehouse.execute(
            "INSERT INTO deployments (deployment_id, project_key, environment_key, application_key,"
            " application_version, started_at, ended_at, status, kind, active, archived,"
            " number_of_contributors, number_of_pull_requests, lines_added, lines_deleted,"
            " lead_time_ms, _raw, _run_id, _loaded_at) VALUES (?, ?, ?, 'a', 'v', ?, ?, 's', 'k',"
            " true, false, 0, 0, 0, 0, 0, '{}', 'r', now())",
            [f"{project}-{env}-{at.isoformat()}-{number}", project, env, at, ended],
        )


def test_a_first_run_reads_each_partition_as_one_window_however_long_the_range(warehouse):
    windows = plan(warehouse, [("p", "prod"), ("p", "test")])
    assert [(w.environment_key, w.from_at, w.to_at) for w in windows] == [
        ("prod", START, END),
        ("test", START, END),
    ]


def test_an_unfinished_window_resumes_below_the_oldest_committed_deployment(warehouse):
    (window,) = plan(warehouse, [("p", "prod")])
    oldest = START + timedelta(days=100)
    progress = WindowProgress("p", "prod", window.from_at, window.to_at, oldest)
    merge_batch(warehouse, {}, [progress], run_id="r", now=END)
    resumed = plan(warehouse, [("p", "prod")], end=END + timedelta(hours=1))
    assert resumed[0] == Window("p", "prod", START, END, read_to=oldest)
    assert resumed[0].unread_to == oldest


def test_progress_only_ever_shrinks_a_window(warehouse):
    (window,) = plan(warehouse, [("p", "prod")])
    key = (window.project_key, window.environment_key, window.from_at, window.to_at)
    early, late = START + timedelta(days=50), START + timedelta(days=150)
    merge_batch(warehouse, {}, [WindowProgress(*key, early)], run_id="r", now=END)
    merge_batch(warehouse, {}, [WindowProgress(*key, late)], run_id="r", now=END)
    (remaining,) = warehouse.execute("SELECT remaining_to FROM sync_windows").fetchone()
    assert remaining == early


def test_a_later_run_starts_at_the_oldest_deployment_still_running(warehouse):
    finish(warehouse, plan(warehouse, [("p", "prod")]))
    running = END - timedelta(hours=30)
    add_deployments(warehouse, [END - timedelta(days=3), running, END - timedelta(hours=2)],
                    running={running})  # fmt: skip
    later = END + timedelta(hours=1)
    windows = plan(warehouse, [("p", "prod")], end=later, reverify=timedelta(0))
    assert [(w.from_at, w.to_at) for w in windows] == [(running, later)]


def test_without_running_deployments_a_later_run_reads_from_shortly_before_the_last_end(
    warehouse,
):
    finish(warehouse, plan(warehouse, [("p", "prod")]))
    later = END + timedelta(hours=1)
    windows = plan(warehouse, [("p", "prod")], end=later, reverify=timedelta(0))
    assert [(w.from_at, w.to_at) for w in windows] == [(END - SETTLE, later)]


def test_a_deployment_running_for_longer_than_the_lookback_is_left_to_the_sweep(warehouse):
    finish(warehouse, plan(warehouse, [("p", "prod")]))
    stuck = END - LOOKBACK - timedelta(days=1)
    add_deployments(warehouse, [stuck], running={stuck})
    later = END + timedelta(hours=1)
    windows = plan(warehouse, [("p", "prod")], end=later, reverify=timedelta(0))
    assert [w.from_at for w in windows] == [END - SETTLE]


def test_since_reads_the_whole_range_again_as_one_window(warehouse):
    finish(warehouse, plan(warehouse, [("p", "prod")]))
    later = END + timedelta(hours=1)
    windows = plan(warehouse, [("p", "prod")], end=later, force=True)
    assert [(w.from_at, w.to_at) for w in windows] == [(START, later)]


def test_the_sweep_re_reads_all_history_within_the_period_a_full_page_at_a_time(warehouse):
    finish(warehouse, plan(warehouse, [("p", "prod")]))
    history = [START + timedelta(hours=6 * n) for n in range(700)]  # 700 over 175 days
    add_deployments(warehouse, history)
    run = END
    covered: set[datetime] = set()
    slices = []
    for _ in range(7 * 12):  # a run every two hours, for one period
        run += timedelta(hours=2)
        windows = plan(warehouse, [("p", "prod")], end=run)
        finish(warehouse, windows)
        read = {at for at in history if any(w.from_at <= at < w.to_at for w in windows)}
        if read:
            slices.append(len(read))
        covered |= read
    assert covered == set(history)
    # Full pages only: the floor of the history (7 pages) per period; the 8th starts again.
    assert slices == [100] * 8


def test_after_a_gap_longer_than_the_period_everything_is_re_read(warehouse):
    finish(warehouse, plan(warehouse, [("p", "prod")]))
    add_deployments(warehouse, [START + timedelta(days=n) for n in range(170)])
    later = END + WEEK + timedelta(hours=1)
    windows = plan(warehouse, [("p", "prod")], end=later)
    assert [(w.from_at, w.to_at) for w in windows] == [(START, later)]


def test_an_older_warehouse_keeps_its_windows_and_resumes_them_whole(tmp_path):
    earlier = tmp_path / "sql"
    (earlier / "migrations").mkdir(parents=True)
    (earlier / "views").mkdir()
    for path in sorted((sql_dir() / "migrations").glob("*.sql")):
        if path.name < "0006":
            (earlier / "migrations" / path.name).write_text(path.read_text())
    conn = connect(tmp_path / "w.duckdb")
    try:
        migrate(conn, earlier)
        conn.execute(
            "INSERT INTO sync_windows VALUES ('p', 'prod', ?, ?, 'old', 'old'), "
            "('p', 'prod', ?, ?, 'old', NULL)",
            [START, START + timedelta(days=90), START + timedelta(days=90), END],
        )
        assert migrate(conn)[0] == "0006_sync_resume"  # and any later ones
        rows = conn.execute("SELECT count(*), count(remaining_to) FROM sync_windows").fetchone()
        assert rows == (2, 0)
        windows = plan(conn, [("p", "prod")], end=END + timedelta(hours=1))
        assert windows[0] == Window("p", "prod", START + timedelta(days=90), END)
    finally:
        conn.close()


def ledger_row(warehouse, run_id, *, host, pid, started_at=START):
    warehouse.execute(
        "INSERT INTO etl_runs (run_id, started_at, status, host, pid) "
        "VALUES (?, ?, 'running', ?, ?)",
        [run_id, started_at, host, pid],
    )


def statuses(warehouse):
    return dict(warehouse.execute("SELECT run_id, status FROM etl_runs").fetchall())


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_starting_run_abandons_a_run_whose_process_on_this_host_is_gone(warehouse):
    ledger_row(warehouse, "killed", host=socket.gethostname(), pid=dead_pid())
    start_run(warehouse, "new", START + timedelta(minutes=1), {})
    assert statuses(warehouse) == {"killed": "abandoned", "new": "running"}


def test_a_starting_run_leaves_a_live_neighbour_running(warehouse):
    ledger_row(warehouse, "neighbour", host=socket.gethostname(), pid=os.getpid())
    ledger_row(warehouse, "elsewhere", host="another-host", pid=1)
    start_run(warehouse, "new", START + timedelta(minutes=1), {})
    assert statuses(warehouse) == {"neighbour": "running", "elsewhere": "running", "new": "running"}


def test_a_run_on_another_host_is_abandoned_once_it_is_older_than_the_lease(warehouse):
    ledger_row(warehouse, "lost", host="another-host", pid=1)
    start_run(warehouse, "new", START + ABANDON_AFTER + timedelta(seconds=1), {})
    assert statuses(warehouse)["lost"] == "abandoned"
