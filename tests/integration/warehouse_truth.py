"""Compare a warehouse (a DuckDB file or a DuckLake) with the sandbox's ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import orjson

from etl.config import WarehouseSettings
from etl.normalize.schemas import ENVIRONMENT_SECRET_FIELDS
from etl.warehouse import duplicate_keys, open_reader


def _raw(conn: duckdb.DuckDBPyConnection, sql: str) -> dict[Any, Any]:
    return {
        tuple(key) if isinstance(key, list) else key: orjson.loads(raw)
        for key, raw in conn.execute(sql).fetchall()
    }


def _read_only(db: Path | str, settings: WarehouseSettings | None) -> duckdb.DuckDBPyConnection:
    if str(db).startswith("ducklake:"):
        return open_reader(db, settings)
    return duckdb.connect(str(db), read_only=True)


def warehouse_differences(
    db: Path | str, truth: Any, settings: WarehouseSettings | None = None
) -> list[str]:
    """Every way the warehouse differs from `truth` (empty when equal)."""
    problems: list[str] = []

    def compare(name: str, expected: dict[Any, Any], actual: dict[Any, Any]) -> None:
        missing = expected.keys() - actual.keys()
        extra = actual.keys() - expected.keys()
        changed = [k for k in expected.keys() & actual.keys() if expected[k] != actual[k]]
        if missing:
            problems.append(f"{name}: {len(missing)} missing, e.g. {sorted(missing)[:3]}")
        if extra:
            problems.append(f"{name}: {len(extra)} unexpected, e.g. {sorted(extra)[:3]}")
        if changed:
            k = sorted(changed)[0]
            problems.append(
                f"{name}: {len(changed)} differ, e.g. {k}: {actual[k]} != {expected[k]}"
            )

    conn = _read_only(db, settings)
    try:
        problems.extend(duplicate_keys(conn))
        compare(
            "projects",
            {p["key"]: p for p in truth.projects},
            _raw(conn, "SELECT project_key, _raw FROM projects WHERE _deleted_at IS NULL"),
        )
        compare(
            "environments",
            {
                (p, e["key"]): {k: v for k, v in e.items() if k not in ENVIRONMENT_SECRET_FIELDS}
                for p, envs in truth.environments.items()
                for e in envs
            },
            _raw(
                conn,
                "SELECT [project_key, environment_key], _raw FROM environments "
                "WHERE _deleted_at IS NULL",
            ),
        )
        expected_deployments = {
            d["id"]: d for deployments in truth.deployments.values() for d in deployments
        }
        compare(
            "deployments",
            expected_deployments,
            _raw(conn, "SELECT deployment_id, _raw FROM deployments"),
        )
        expected_scope = {d["id"]: [p, e] for (p, e), ds in truth.deployments.items() for d in ds}
        actual_scope = dict(
            conn.execute(
                "SELECT deployment_id, [project_key, environment_key] FROM deployments"
            ).fetchall()
        )
        compare("deployment scope", expected_scope, actual_scope)
        expected_prs = {
            pr["id"]: pr
            for d in expected_deployments.values()
            for pr in d.get("pullRequests", {}).get("items", [])
        }
        teams = truth.extras.get("teams")
        if teams is not None:
            listed = [pr for prs in teams.pull_requests.values() for pr in prs]
            expected_prs |= {pr["id"]: _without(pr, PR_EXPANSIONS) for pr in listed}
            problems.extend(_teams_differences(conn, teams, compare))
        compare(
            "pull_requests",
            expected_prs,
            _raw(conn, "SELECT pull_request_id, _raw FROM pull_requests"),
        )
        expected_links = {
            (d["id"], pr["id"]): True
            for d in expected_deployments.values()
            for pr in d.get("pullRequests", {}).get("items", [])
        }
        actual_links = dict.fromkeys(
            conn.execute(
                "SELECT deployment_id, pull_request_id FROM deployment_pull_requests"
            ).fetchall(),
            True,
        )
        compare("deployment_pull_requests", expected_links, actual_links)
        expected_refs = {
            (d["id"], r["projectKey"], r["flagKey"]): (r["referencesAdded"], r["referencesRemoved"])
            for d in expected_deployments.values()
            for r in d.get("flagReferences", {}).get("items", [])
        }
        actual_refs = {
            (a, b, c): (x, y)
            for a, b, c, x, y in conn.execute(
                "SELECT deployment_id, project_key, flag_key, references_added, "
                "references_removed FROM deployment_flag_references"
            ).fetchall()
        }
        compare("deployment_flag_references", expected_refs, actual_refs)
        compare(
            "release_pipelines",
            {(p, x["key"]): x for p, xs in truth.release_pipelines.items() for x in xs},
            _raw(
                conn,
                "SELECT [project_key, pipeline_key], _raw FROM release_pipelines "
                "WHERE _deleted_at IS NULL",
            ),
        )
        compare(
            "release_progressions",
            {
                (p, k, x["flagKey"], x["_createdAt"]): x
                for (p, k), xs in truth.release_progressions.items()
                for x in xs
            },
            {
                (p, k, f, c): orjson.loads(raw)
                for p, k, f, c, raw in conn.execute(
                    "SELECT project_key, pipeline_key, flag_key, epoch_ms(created_at), _raw "
                    "FROM release_progressions WHERE _deleted_at IS NULL"
                ).fetchall()
            },
        )
        compare(
            "release_policies",
            {(p, x["_id"]): x for p, xs in truth.release_policies.items() for x in xs},
            _raw(
                conn,
                "SELECT [project_key, policy_id], _raw FROM release_policies "
                "WHERE _deleted_at IS NULL",
            ),
        )
        flags_truth = truth.extras.get("flags")
        if flags_truth is not None:
            problems.extend(_flag_differences(conn, flags_truth, compare))
    finally:
        conn.close()
    return problems


def _flag_differences(conn: duckdb.DuckDBPyConnection, truth: Any, compare: Any) -> list[str]:
    """The flag streams' tables against the sandbox's flags truth (`etl.sandbox.flags`)."""
    compare(
        "flags",
        {(p, f["key"]): f for p, flags in truth.flags.items() for f in flags},
        _raw(conn, "SELECT [project_key, flag_key], _raw FROM flags WHERE _deleted_at IS NULL"),
    )
    compare(
        "flag_environments",
        {
            (p, f["key"], e): (c["on"], c["archived"], c["lastModified"], c["version"])
            for p, flags in truth.flags.items()
            for f in flags
            for e, c in f["environments"].items()
        },
        {
            (p, f, e): (on, archived, modified, version)
            for p, f, e, on, archived, modified, version in conn.execute(
                "SELECT project_key, flag_key, environment_key, is_on, archived, "
                "epoch_ms(last_modified), version FROM flag_environments"
            ).fetchall()
        },
    )
    compare(
        "flag_statuses",
        {
            (p, e, s["_links"]["parent"]["href"].rsplit("/", 1)[1]): s
            for (p, e), statuses in truth.statuses.items()
            for s in statuses
        },
        _raw(
            conn,
            "SELECT [project_key, environment_key, flag_key], _raw FROM flag_statuses "
            "WHERE _deleted_at IS NULL",
        ),
    )
    latest = {
        (p, e, f): status
        for p, e, f, status in conn.execute(
            "SELECT project_key, environment_key, flag_key, arg_max(status, observed_at) "
            "FROM flag_status_history GROUP BY ALL"
        ).fetchall()
    }
    compare(
        "flag_status_history (latest)",
        {
            (p, e, s["_links"]["parent"]["href"].rsplit("/", 1)[1]): s["name"]
            for (p, e), statuses in truth.statuses.items()
            for s in statuses
        },
        latest,
    )
    events = {x["id"]: x for xs in truth.events.values() for x in xs}
    compare("flag_events", events, _raw(conn, "SELECT event_id, _raw FROM flag_events"))
    compare(
        "flag event scope",
        {x["id"]: [p, e] for (p, e), xs in truth.events.items() for x in xs},
        dict(
            conn.execute(
                "SELECT event_id, [project_key, environment_key] FROM flag_events"
            ).fetchall()
        ),
    )
    compare(
        "flag_event_experiments",
        {
            (x["id"], m["key"]): (
                m["iteration"]["id"], m["iteration"]["status"], m["iteration"]["startedAt"],
                m["iteration"].get("endedAt"),
            )
            for x in events.values()
            for m in x.get("experiments", {}).get("items", [])
        },
        {
            (a, b): (c, d, e, f)
            for a, b, c, d, e, f in conn.execute(
                "SELECT event_id, experiment_key, iteration_id, iteration_status, "
                "epoch_ms(iteration_started_at), epoch_ms(iteration_ended_at) "
                "FROM flag_event_experiments"
            ).fetchall()
        },
    )  # fmt: skip
    return []


PR_EXPANSIONS = ("deployments", "flagReferences", "leadTime")
_LEAD_TIMES = (
    "codingDurationMs", "reviewDurationMs", "maxWaitDurationMs", "avgWaitDurationMs",
    "maxDeployDurationMs", "avgDeployDurationMs", "maxTotalLeadTimeMs", "avgTotalLeadTimeMs",
)  # fmt: skip


def _without(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in fields}


def _application(app: dict[str, Any]) -> dict[str, Any]:
    """An application as stored: a member maintainer reduced to their id."""
    member = app.get("_maintainer", {}).get("member")
    if member is None:
        return app
    return {**app, "_maintainer": {**app["_maintainer"], "member": {"_id": member["_id"]}}}


def _teams_differences(conn: duckdb.DuckDBPyConnection, teams: Any, compare: Any) -> list[str]:
    """The ownership and Insights tables against the teams family's truth."""
    compare(
        "applications",
        {a["key"]: _application(a) for a in teams.applications},
        _raw(conn, "SELECT application_key, _raw FROM applications WHERE _deleted_at IS NULL"),
    )
    compare(
        "teams",
        {t["key"]: _without(t, ("members", "maintainers")) for t in teams.teams},
        _raw(conn, "SELECT team_key, _raw FROM teams WHERE _deleted_at IS NULL"),
    )
    compare(
        "insight_groups",
        {g["key"]: g for g in teams.groups},
        _raw(conn, "SELECT group_key, _raw FROM insight_groups WHERE _deleted_at IS NULL"),
    )
    expected_scores = {}
    scopes = [
        ((p, e, None), body["period"], body["scores"]) for (p, e), body in teams.scores.items()
    ]
    scopes += [
        (
            (g["projectKey"], g["environmentKey"], g["key"]),
            g["scoreMetadata"]["period"],
            g["scores"],
        )
        for g in teams.groups
    ]
    for scope, period, scores in scopes:
        for metric, value in scores.items():
            expected_scores[(*scope, metric)] = (
                period["startTime"], period["endTime"], value["score"], value["indicator"],
                value["indicatorRange"]["min"], value["indicatorRange"]["max"],
                value.get("diffVsLastPeriod"), value.get("aggregateOf"),
            )  # fmt: skip
    compare(
        "insight_scores (each scope's latest run)",
        expected_scores,
        {
            tuple(row[:4]): tuple(row[4:])
            for row in conn.execute(
                "SELECT project_key, environment_key, group_key, metric, epoch_ms(period_start), "
                "epoch_ms(period_end), score, indicator, indicator_min, indicator_max, "
                "diff_vs_last_period, aggregate_of FROM insight_scores "
                "QUALIFY run_id = max(run_id) OVER (PARTITION BY project_key, environment_key, "
                "group_key)"
            ).fetchall()
        },
    )
    listed = [pr for prs in teams.pull_requests.values() for pr in prs]
    compare(
        "pull_request_lead_times",
        {pr["id"]: tuple(pr["leadTime"].get(f) for f in _LEAD_TIMES) for pr in listed},
        {
            row[0]: tuple(row[1:])
            for row in conn.execute(
                "SELECT pull_request_id, coding_duration_ms, review_duration_ms, "
                "max_wait_duration_ms, avg_wait_duration_ms, max_deploy_duration_ms, "
                "avg_deploy_duration_ms, max_total_lead_time_ms, avg_total_lead_time_ms "
                "FROM pull_request_lead_times"
            ).fetchall()
        },
    )
    compare(
        "pull_request_flag_references",
        {
            (pr["id"], r["projectKey"], r["flagKey"]): (
                r["referencesAdded"],
                r["referencesRemoved"],
            )
            for pr in listed
            for r in pr["flagReferences"]["items"]
        },
        {
            (a, b, c): (x, y)
            for a, b, c, x, y in conn.execute(
                "SELECT pull_request_id, project_key, flag_key, references_added, "
                "references_removed FROM pull_request_flag_references"
            ).fetchall()
        },
    )
    compare(
        "pull request projects",
        {pr["id"]: project for project, prs in teams.pull_requests.items() for pr in prs},
        dict(conn.execute("SELECT pull_request_id, project_key FROM pull_requests").fetchall()),
    )
    return []


def table_fingerprint(
    db: Path | str, settings: WarehouseSettings | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """All rows of the data tables, without our per-run metadata columns."""
    from etl.normalize.registry import TABLES

    conn = _read_only(db, settings)
    try:
        out = {}
        for table, schema in TABLES.items():
            if table in ("release_progression_snapshots", "flag_status_history", "insight_scores"):
                continue  # a row (set) per run, by design
            columns = [c for c in schema if c not in ("_run_id", "_loaded_at")]
            out[table] = conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} ORDER BY ALL"
            ).fetchall()
        return out
    finally:
        conn.close()


def committed_state_differences(db: Path, truth: Any) -> list[str]:
    """What an interrupted run's warehouse gets wrong: doubled keys, or a deployment window
    marked done whose deployments are not all there (state ahead of data)."""
    conn = duckdb.connect(str(db), read_only=True)
    try:
        problems = duplicate_keys(conn)
        windows = conn.execute(
            "SELECT stream, project_key, environment_key, epoch_ms(from_at), epoch_ms(to_at) "
            "FROM sync_windows WHERE done_run_id IS NOT NULL"
        ).fetchall()
        loaded = {
            row[0] for row in conn.execute("SELECT deployment_id FROM deployments").fetchall()
        } | {row[0] for row in conn.execute("SELECT event_id FROM flag_events").fetchall()}
    finally:
        conn.close()
    records = {
        "deployments": {pair: [(d["id"], d["startedAt"]) for d in ds]
                        for pair, ds in truth.deployments.items()},
        "flag_events": {pair: [(x["id"], x["eventTime"]) for x in xs]
                        for pair, xs in truth.extras["flags"].events.items()},
    }  # fmt: skip
    for stream, project, environment, from_ms, to_ms in windows:
        expected = {
            record_id
            for record_id, at in records[stream].get((project, environment), [])
            if from_ms <= at < to_ms
        }
        if expected - loaded:
            problems.append(
                f"{stream} window {project}/{environment} [{from_ms}, {to_ms}) is marked done "
                f"but {len(expected - loaded)} of its records are missing"
            )
    return problems
