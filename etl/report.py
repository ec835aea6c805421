"""`etl report`: one self-contained HTML page of the warehouse's answers.

Everything the page shows comes from the metric views (docs/metrics.md) read through one
read-only connection, and everything it needs is inside the file: CSS inline, charts as SVG
drawn in Python (`etl.charts`), no script, font, image or other request, so it opens offline,
attaches to an email and survives a strict Content-Security-Policy. Every value from the
warehouse is escaped: keys and names come from an API.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import duckdb
import orjson

from etl import charts, report_flags, report_teams
from etl.charts import Series
from etl.config import WarehouseSettings
from etl.errors import ConfigError, WarehouseError
from etl.warehouse import open_reader

SUMMARY_DAYS = 28
TREND_WEEKS = 26
# The minimum samples of a tier: sql/views/12_tiers.sql (dora_min_*), for "too few".
MIN_LEAD_TIMES, MIN_CHANGES, MIN_FAILURES = 5, 5, 1
OK, BAD, ROLLBACK, OTHER = "#2f9e6e", "#d64545", "#e8a33d", "#aab1bf"
TIER_CLASS = {
    "elite": "t1", "Excellent": "t1", "high": "t2", "Good": "t2",
    "medium": "t3", "Fair": "t3", "low": "t4", "Needs attention": "t4",
}  # fmt: skip
Row = dict[str, Any]


@dataclass(frozen=True)
class ReportResult:
    """What was written and a few answers for a caller to print."""

    path: Path
    range_from: date | None
    range_to: date | None
    headline: Row = field(default_factory=dict)
    scope: str = "all environments"


def parse_day(value: str | None, flag: str) -> date | None:
    """An ISO date (or datetime, whose UTC date is taken) from a command-line flag."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ConfigError(f"{flag}: {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[Row]:
    result = conn.execute(sql, params or [])
    columns = [d[0] for d in result.description or []]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def _one(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Row:
    rows = _rows(conn, sql, params)
    return rows[0] if rows else {}


# --------------------------------------------------------------------------- queries


@dataclass
class ReportData:
    """Every figure on the page, read in one go from the warehouse."""

    source: str
    generated_at: datetime
    range_from: date | None = None
    range_to: date | None = None
    scope: str = "all environments"
    scope_pairs: frozenset[tuple[str, str]] | None = None
    headline: Row = field(default_factory=dict)
    projects: list[Row] = field(default_factory=list)
    summary: list[Row] = field(default_factory=list)
    weeks: list[Row] = field(default_factory=list)
    unrecovered: list[Row] = field(default_factory=list)
    funnel: list[Row] = field(default_factory=list)
    phase_stats: list[Row] = field(default_factory=list)
    stalled: list[Row] = field(default_factory=list)
    churn_weeks: list[Row] = field(default_factory=list)
    top_flags: list[Row] = field(default_factory=list)
    cleanup: list[Row] = field(default_factory=list)
    runs: list[Row] = field(default_factory=list)
    sections: list[tuple[str, str, str]] = field(default_factory=list)  # (id, title, html)


def read_report(conn: duckdb.DuckDBPyConnection, source: str, since: date | None,
                until: date | None) -> ReportData:  # fmt: skip
    """Query the views for the range [since, until] (default: the last 28 days of data)."""
    data = ReportData(source=source, generated_at=datetime.now(UTC))
    data.sections.append(report_flags.section(conn))
    data.runs = _rows(conn, """
        SELECT run_id, status, started_at, ended_at, requests, rate_limited, streams, error
        FROM etl_runs ORDER BY started_at DESC LIMIT 8""")  # fmt: skip
    bounds = _one(conn, "SELECT min(day) AS first, max(day) AS last FROM metric_deployments")
    last = until or bounds.get("last")
    if last is None or bounds.get("first") is None:
        _read_releases(conn, data)
        return data
    first = since or last - timedelta(days=SUMMARY_DAYS - 1)
    if first > last:
        raise ConfigError(f"--since {first} is after --until {last}")
    data.range_from, data.range_to = first, last
    span = [first, last]
    data.scope, data.scope_pairs = _scope_headline(conn)
    _snapshot_facts(conn)
    # The cards pool every deployment of the scope (the organisation) and of each project,
    # through the same aggregation as every DORA view (sql/views/13_dora_aggregate.sql).
    data.headline = _one(
        conn,
        """
        SELECT * EXCLUDE (scope_key) FROM dora_summary_scoped('report_scope', ?, ?)""",
        span,
    )
    data.projects = _rows(conn, """
        SELECT * FROM (
            SELECT unnest(scope_key), * EXCLUDE (scope_key)
            FROM dora_summary_scoped('report_project_scope', ?, ?)
        ) ORDER BY project_key""", span)  # fmt: skip
    data.summary = _rows(conn, """
        SELECT * FROM dora_summary_between(?, ?)
        ORDER BY project_key, environment_key, application_key""", span)  # fmt: skip
    trend_from = max(min(first, last - timedelta(weeks=TREND_WEEKS - 1)), bounds["first"])
    weeks = [trend_from - timedelta(days=trend_from.weekday()), last - timedelta(last.weekday())]
    data.weeks = _rows(conn, """
        SELECT * EXCLUDE (scope_key) FROM dora_weekly_scoped('report_scope')
        WHERE week_start BETWEEN ? AND ? ORDER BY week_start""", weeks)  # fmt: skip
    data.unrecovered = _rows(conn, """
        SELECT f.project_key, f.environment_key, f.application_key, f.application_version,
            f.started_at, f.failed, f.age_h
        FROM failed_deployment_recovery f JOIN report_scope USING (deployment_id)
        WHERE NOT f.recovered AND f.day <= ?
        ORDER BY f.started_at LIMIT 12""", [last])  # fmt: skip
    data.churn_weeks = _rows(conn, """
        SELECT week_start, sum(references_added) AS added, sum(references_removed) AS removed
        FROM flag_reference_churn WHERE week_start BETWEEN ? AND ?
        GROUP BY week_start""", weeks)  # fmt: skip
    data.top_flags = _rows(conn, """
        SELECT flag_project_key, flag_key, sum(deployments) AS deployments,
            sum(versions) AS versions, sum(references_added) AS added,
            sum(references_removed) AS removed
        FROM flag_reference_churn WHERE week_start BETWEEN ? AND ?
        GROUP BY ALL ORDER BY added + removed DESC, flag_key LIMIT 10""",
        [first - timedelta(days=first.weekday()), last])  # fmt: skip
    data.cleanup = _rows(conn, """
        SELECT * FROM flag_cleanup_candidates
        ORDER BY reached_zero_at DESC, flag_key LIMIT 12""")  # fmt: skip
    data.sections.append(report_teams.team_section(conn, first, last, data.scope_pairs))
    _read_releases(conn, data)
    return data


def _scope_headline(
    conn: duckdb.DuckDBPyConnection,
) -> tuple[str, frozenset[tuple[str, str]] | None]:
    """Scope the headline and the weekly trends to the critical environments, if any.

    Summed over development, staging and production, a deployment frequency counts every
    version two or three times and a lead time mixes environments: DORA's keys are about
    production. LaunchDarkly marks production-like environments `critical`; without any,
    every environment counts (and the page says so). The scope is a pair of scope views for
    the DORA macros (the whole scope; each project in it). Temporary views: the connection
    is read-only, and they vanish with it.
    """
    critical = """
        SELECT project_key, environment_key FROM environments
        WHERE critical AND _deleted_at IS NULL"""
    (names,) = conn.execute(
        f"SELECT string_agg(DISTINCT environment_key, ', ' ORDER BY environment_key) "
        f"FROM ({critical}) JOIN (SELECT DISTINCT project_key, environment_key "
        f"FROM metric_deployments) USING (project_key, environment_key)"
    ).fetchone() or (None,)
    where = f"WHERE (project_key, environment_key) IN ({critical})" if names else ""
    conn.execute(
        "CREATE TEMP VIEW report_scope AS SELECT deployment_id, {'scope': 'all'} AS scope_key "
        f"FROM metric_deployments {where}"
    )
    conn.execute(
        "CREATE TEMP VIEW report_project_scope AS SELECT deployment_id, "
        f"{{'project_key': project_key}} AS scope_key FROM metric_deployments {where}"
    )
    if not names:
        return "all environments", None
    pairs = frozenset((p, e) for p, e in conn.execute(critical).fetchall())
    return f"critical environments ({names})", pairs


def _snapshot_facts(conn: duckdb.DuckDBPyConnection) -> None:
    """Compute deployment_facts once for the whole page, as a temporary table of that name.

    Every DORA view and macro reads deployment_facts, and the page asks them a dozen times
    (cards, previous period, projects, table, weeks, open failures): a temporary table
    shadows the view for this connection only, so each section aggregates the same rows and
    the recovery joins run once instead of once per section.
    """
    conn.execute("CREATE TEMP TABLE deployment_facts AS SELECT * FROM deployment_facts")


def _read_releases(conn: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    data.funnel = _rows(conn, "SELECT * FROM release_funnel ORDER BY ALL")
    data.phase_stats = _rows(conn, """
        SELECT * FROM release_phase_duration_stats
        ORDER BY project_key, pipeline_key, phase_index""")  # fmt: skip
    data.stalled = _rows(conn, """
        SELECT * FROM stalled_releases ORDER BY in_phase_so_far_h DESC LIMIT 12""")  # fmt: skip


# --------------------------------------------------------------------------- rendering


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _hours(value: float | None, prefix: str = "") -> str:
    if value is None:
        return '<span class="none">no data</span>'
    if value < 1:
        return f"{prefix}{value * 60:.0f} min"
    if value < 48:
        return f"{prefix}{value:.1f} h"
    return f"{prefix}{value / 24:.1f} d"


def _pct(value: float | None) -> str:
    return '<span class="none">no data</span>' if value is None else f"{value:.1%}"


def _tier(value: str | None, scheme: str, samples: int = 0, minimum: int = 0) -> str:
    """A tier badge; "too few" when there is data but less than the tier's minimum samples."""
    if value is None and 0 < samples < minimum:
        title = f"{samples} of the {minimum} samples a tier needs"
        return f'<span class="tier none" title="{escape(title)}">too few</span>'
    if value is None:
        return '<span class="tier none" title="no data">—</span>'
    return (
        f'<span class="tier {TIER_CLASS.get(value, "")}" title="{escape(scheme)}">'
        f"{escape(value)}</span>"
    )


def _tiers(r: Row) -> dict[str, str]:
    """The five tier badges of a summary row, each with its minimum samples."""
    return {
        "frequency": _tier(r["dora_deployment_frequency_tier"],
                           "DORA 2023: deploy days of the median week"),
        "lead_ld": _tier(r["launchdarkly_lead_time_tier"], "LaunchDarkly: PR-weighted mean",
                         r["lead_time_n"], MIN_LEAD_TIMES),
        "lead_dora": _tier(r["dora_lead_time_tier"], "DORA 2023: median lead time",
                           r["lead_time_n"], MIN_LEAD_TIMES),
        "cfr": _tier(r["dora_change_failure_tier"], "DORA 2023: change failure rate",
                     r["change_deployments_ended"], MIN_CHANGES),
        "recovery": _tier(r["dora_recovery_tier"], "DORA 2023: median recovery",
                          r["change_failures"], MIN_FAILURES),
    }  # fmt: skip


def _change(value: float | None, previous: float | None, fmt: str, *, lower_is_better: bool) -> str:
    """This range against the previous one: an arrow, the difference, better or worse."""
    if value is None or previous is None:
        return '<small class="delta">no earlier figure</small>'
    diff = value - previous
    if diff == 0:
        return '<small class="delta">= previous period</small>'
    better = (diff < 0) == lower_is_better
    shown = (
        _hours(abs(diff))
        if fmt == "h"
        else f"{abs(diff) * 100:.1f} pts"
        if fmt == "pct"
        else (f"{abs(diff):,.3g}")
    )
    arrow = "▲" if diff > 0 else "▼"
    return (
        f'<small class="delta {"good" if better else "bad"}" title="against the previous '
        f'period of equal length">{arrow} {shown} vs previous</small>'
    )


def _table(
    headers: list[str], rows: list[list[str]], empty: str, *, collapse_after: int | None = None
) -> str:
    """A table; folded into a <details> (no script needed) past `collapse_after` rows."""
    if not rows:
        return f'<p class="empty">{escape(empty)}</p>'
    if collapse_after is not None and len(rows) > collapse_after:
        table = _table(headers, rows, empty)
        return f"<details><summary>{len(rows)} rows</summary>{table}</details>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _card(title: str, value: str, note: str) -> str:
    heading = f"<h3>{escape(title)}</h3>"
    return f'<div class="card">{heading}<p class="big">{value}</p><p>{note}</p></div>'


def _headline(data: ReportData) -> str:
    h = data.headline
    scope = (
        f'<p class="note">Cards: the organisation, {escape(data.scope)} pooled; projects below; '
        "the table per application, other environments under it.</p>"
        if data.scope_pairs
        else f'<p class="note">Cards: the organisation, {escape(data.scope)} pooled.</p>'
    )
    tiers = _tiers(h)
    bound = _bound(h)
    more = {
        "deployments": _change(h["deployments"], h["deployments_prev"], "n", lower_is_better=False),
        "lead": _change(h["lead_time_p50_h"], h["lead_time_p50_h_prev"], "h", lower_is_better=True),
        "cfr": _change(
            h["change_failure_rate"], h["change_failure_rate_prev"], "pct", lower_is_better=True
        ),
        "recovery": _change(
            h["recovery_p50_h"], h["recovery_p50_h_prev"], "h", lower_is_better=True
        ),
    }
    return scope + '<div class="cards">' + "".join(
        [
            _card("Deployments", f"{h['deployments']:,}",
                  f"{more['deployments']}"
                  f"<br>{h['successful']:,} successful · {h['deploy_days']} deploy days · "
                  f"{h['median_period_deploy_days']:g} in the median week<br>"
                  f"{tiers['frequency']} <small>DORA</small>"),
            _card("Lead time", _hours(h["lead_time_p50_h"]),
                  f"{more['lead']}"
                  f"<br>median of {h['lead_time_n']} changes with a PR · mean per PR "
                  f"{_hours(h['lead_time_pr_weighted_mean_h'])} · p90 "
                  f"{_hours(h['lead_time_p90_h'])}<br>"
                  f"{tiers['lead_ld']} <small>LaunchDarkly</small> "
                  f"{tiers['lead_dora']} <small>DORA</small>"),
            _card("Change failure rate", _pct(h["change_failure_rate"]),
                  f"{more['cfr']}"
                  f"<br>{h['change_failures']} failed or rolled back of "
                  f"{h['change_deployments_ended']} changes · LaunchDarkly's rate (rollbacks ÷ "
                  f"deployments) {_pct(h['launchdarkly_failure_rate'])}<br>"
                  f"{tiers['cfr']} <small>DORA</small>"),
            _card("Failed deployment recovery",
                  _hours(h["recovery_p50_h"], prefix=bound),
                  f"{more['recovery']}"
                  f"<br>median, failure start → the success that ended it · "
                  f"{h['unrecovered']} open (counted at their age: a lower bound)<br>"
                  f"{tiers['recovery']} <small>DORA</small>"),
        ]
    ) + "</div>" + _projects(data.projects)  # fmt: skip


def _bound(r: Row) -> str:
    """The mark before a recovery median that counts open failures at their age: a lower bound."""
    return "≥ " if r["recovery_lower_bound"] else ""


def _projects(rows: list[Row]) -> str:
    """One small card per project: its deployments pooled (never its applications averaged)."""
    if len(rows) < 2:
        return ""
    cards = []
    for r in rows:
        t = _tiers(r)
        cards.append(
            f'<div class="card small"><h3>{_e(r["project_key"])}</h3>'
            f"<p>{r['deployments']:,} deployments "
            f"{_change(r['deployments'], r['deployments_prev'], 'n', lower_is_better=False)}</p>"
            f"<p>lead {_hours(r['lead_time_p50_h'])} {t['lead_dora']}</p>"
            f"<p>CFR {_pct(r['change_failure_rate'])} {t['cfr']}</p>"
            f"<p>recovery {_hours(r['recovery_p50_h'], prefix=_bound(r))} {t['recovery']}</p>"
            "</div>"
        )  # fmt: skip
    return '<h3>Per project <small>its deployments pooled</small></h3><div class="cards">' + (
        "".join(cards) + "</div>"
    )


def _summary(data: ReportData) -> str:
    """The critical environments' rows in view, the other environments' folded below."""
    pairs = data.scope_pairs
    shown = [
        r
        for r in data.summary
        if pairs is None or (r["project_key"], r["environment_key"]) in pairs
    ]
    others = [r for r in data.summary if r not in shown]
    html = _summary_table(shown, collapse=pairs is None)
    if others:
        html += (
            f"<details><summary>Other environments: {len(others)} rows</summary>"
            f"{_summary_table(others, collapse=False)}</details>"
        )
    return html


def _summary_table(rows: list[Row], *, collapse: bool) -> str:
    body = []
    for r in rows:
        t = _tiers(r)
        body.append([
            _e(r["project_key"]), _e(r["environment_key"]), _e(r["application_key"]),
            f"{r['deployments']}", f"{r['median_period_deploy_days']:g}", t["frequency"],
            _hours(r["lead_time_p50_h"]), _hours(r["lead_time_pr_weighted_mean_h"]),
            t["lead_ld"], t["lead_dora"], _pct(r["change_failure_rate"]), t["cfr"],
            _hours(r["recovery_p50_h"], prefix=_bound(r)),
            t["recovery"],
        ])  # fmt: skip
    headers = ["project", "environment", "application", "deploys", "deploy days/wk",
               "DORA freq.", "lead p50", "lead mean/PR", "LD lead", "DORA lead",
               "change failure rate", "DORA CFR", "recovery p50", "DORA recovery"]  # fmt: skip
    return _table(
        headers, body, "No deployments in this range.", collapse_after=24 if collapse else None
    )


def _trends(data: ReportData) -> str:
    if not data.weeks:
        return '<p class="empty">No deployments yet.</p>'
    labels = [f"{w['week_start']:%b %d}" for w in data.weeks]
    partial = [bool(w["partial_week"]) for w in data.weeks]
    outcome = [
        Series("successful", [w["successful"] for w in data.weeks], OK),
        Series("failed", [w["failed"] for w in data.weeks], BAD),
        Series(
            "running",
            [w["deployments"] - w["successful"] - w["failed"] for w in data.weeks],
            OTHER,
        ),
    ]
    lead = [
        Series("p50", [w["lead_time_p50_h"] for w in data.weeks], "#3b6fd8"),
        Series("p90", [w["lead_time_p90_h"] for w in data.weeks], "#9db7ee"),
    ]
    rates = [
        Series("change failure rate", [_times100(w["change_failure_rate"]) for w in data.weeks],
               BAD),
        Series("LaunchDarkly's rate (rollbacks ÷ deployments)",
               [_times100(w["launchdarkly_failure_rate"]) for w in data.weeks], ROLLBACK),
    ]  # fmt: skip
    recovery = [Series("recovery p50", [w["recovery_p50_h"] for w in data.weeks], "#7b4fc9")]
    note = (
        '<p class="note">Shaded weeks are partial: not wholly inside the data (its first and '
        "last weeks), so their counts are not a full week's.</p>"
        if any(partial)
        else ""
    )
    return note + (
        '<div class="grid">'
        f"<figure><figcaption>Deployments per week</figcaption>{charts.legend(outcome)}"
        f"{charts.stacked_bars(labels, outcome, label='Deployments per week', shade=partial)}"
        "</figure>"
        f"<figure><figcaption>Lead time per week (hours, successful changes with a pull request)"
        f"</figcaption>{charts.legend(lead)}"
        f"{charts.lines(labels, lead, label='Lead time per week', unit='h', shade=partial)}"
        "</figure>"
        f"<figure><figcaption>Failure rates per week (%)</figcaption>{charts.legend(rates)}"
        f"{charts.lines(labels, rates, label='Failure rates per week', unit='%', shade=partial)}"
        "</figure>"
        f"<figure><figcaption>Failed deployment recovery, median per week (hours; open failures "
        f"at their age)</figcaption>{charts.legend(recovery)}"
        f"{charts.lines(labels, recovery, label='Recovery per week', unit='h', shade=partial)}"
        "</figure></div>"
    )


def _times100(value: float | None) -> float | None:
    return None if value is None else value * 100


def _unrecovered(rows: list[Row]) -> str:
    body = [
        [_e(r["project_key"]), _e(r["environment_key"]), _e(r["application_key"]),
         _e(r["application_version"]), f"{r['started_at']:%Y-%m-%d %H:%M}",
         "failed" if r["failed"] else "rolled back", _hours(r["age_h"])]
        for r in rows
    ]  # fmt: skip
    return _table(["project", "environment", "application", "version", "started (UTC)", "how",
                   "open for"], body,
                  "Every change failure has been recovered.")  # fmt: skip


def _funnels(data: ReportData) -> str:
    pipelines: defaultdict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in data.funnel:
        pipelines[(row["project_key"], row["pipeline_key"])].append(row)
    if not pipelines:
        return '<p class="empty">No release pipelines.</p>'
    parts = []
    for (project, _pipeline), phases in pipelines.items():
        total = phases[0]["releases"]
        svg = charts.funnel(
            [p["phase_name"] for p in phases], [p["reached"] for p in phases],
            [p["active_now"] for p in phases], total, label=f"{phases[0]['pipeline_name']} funnel",
        )  # fmt: skip
        parts.append(
            f"<figure><figcaption>{_e(project)} · {_e(phases[0]['pipeline_name'])} "
            f"<small>{total} releases, {phases[0]['completed']} completed</small></figcaption>"
            f"{svg}</figure>"
        )
    key = charts.legend([Series("reached (in it, later or completed)", [], "#7c9cf5"),
                         Series("active in it now", [], "#2947a9")])  # fmt: skip
    return key + '<div class="grid">' + "".join(parts) + "</div>"


def _phases(data: ReportData) -> str:
    interval = next((r["sync_interval_h"] for r in data.phase_stats), None)
    note = (
        f"Times are sightings by the syncs: resolution about {_hours(interval)} "
        "(the median interval between syncs)."
        if interval is not None
        else "One sync so far: phase times need at least two."
    )
    rows = [
        [_e(r["project_key"]), _e(r["pipeline_key"]), _e(r["phase_name"]), f"{r['stays_ended']}",
         f"{r['stays_current']}", _hours(r["duration_p50_h"]), _hours(r["duration_p90_h"])]
        for r in data.phase_stats
    ]  # fmt: skip
    stalled = [
        [_e(r["project_key"]), _e(r["pipeline_key"]), _e(r["flag_key"]), _e(r["phase_name"]),
         _hours(r["in_phase_so_far_h"]), _hours(r["threshold_h"])]
        for r in data.stalled
    ]  # fmt: skip
    return (
        f'<p class="note">{note}</p>'
        + _table(["project", "pipeline", "phase", "stays ended", "in it now", "p50", "p90"], rows,
                 "No release phase history yet.", collapse_after=20)
        + "<h3>Stalled releases <small>in their phase longer than its p90</small></h3>"
        + _table(["project", "pipeline", "flag", "phase", "in phase", "p90"], stalled,
                 "No release is stalled.")
    )  # fmt: skip


def _flags(data: ReportData) -> str:
    by_week = {r["week_start"]: r for r in data.churn_weeks}
    labels = [f"{w['week_start']:%b %d}" for w in data.weeks]
    weeks = [w["week_start"] for w in data.weeks]
    added = Series("references added", [_n(by_week, w, "added") for w in weeks], OK)
    removed = Series("references removed", [_n(by_week, w, "removed") for w in weeks], BAD)
    chart = (
        f"<figure><figcaption>Flag references per week (a version counted once)</figcaption>"
        f"{charts.legend([added, removed])}"
        f"{charts.diverging_bars(labels, added, removed, label='Flag references per week')}"
        "</figure>"
        if data.weeks
        else ""
    )
    top = [
        [_e(r["flag_project_key"]), _e(r["flag_key"]), f"{r['deployments']}", f"{r['versions']}",
         f"+{r['added']}", f"−{r['removed']}"]
        for r in data.top_flags
    ]  # fmt: skip
    cleanup = [
        [_e(r["project_key"]), _e(r["flag_key"]), f"{r['reached_zero_at']:%Y-%m-%d}",
         "—" if r["last_added_at"] is None else f"{r['last_added_at']:%Y-%m-%d}",
         "yes" if r["in_active_release"] else "no"]
        for r in data.cleanup
    ]  # fmt: skip
    return (
        '<div class="grid">'
        + chart
        + "<div><h3>Most churned flags in the range</h3>"
        + _table(["project", "flag", "deploys", "versions", "added", "removed"], top,
                 "No flag references in this range.")
        + "</div></div>"
        + "<h3>Cleanup candidates <small>net references in production back to 0, none added "
        "since</small></h3>"
        + _table(["project", "flag", "references gone", "last addition", "in an active release"],
                 cleanup, "No flag looks ready for cleanup.")
    )  # fmt: skip


def _n(by_week: dict[Any, Row], week: Any, key: str) -> float | None:
    row = by_week.get(week)
    return None if row is None else float(row[key])


def _runs(data: ReportData) -> str:
    rows = []
    for r in data.runs:
        streams = orjson.loads(r["streams"] or "{}")
        records = sum(s.get("records", 0) for s in streams.values())
        took = (
            f"{(r['ended_at'] - r['started_at']).total_seconds():.1f} s" if r["ended_at"] else "—"
        )
        rows.append(
            [_e(r["run_id"]), f'<span class="status {_e(r["status"])}">{_e(r["status"])}</span>',
             f"{r['started_at']:%Y-%m-%d %H:%M}", took, f"{records:,}", f"{r['requests'] or 0:,}",
             f"{r['rate_limited'] or 0}", _e((r["error"] or "")[:120])]
        )  # fmt: skip
    return _table(["run", "status", "started (UTC)", "took", "records", "requests", "429s",
                   "error"], rows, "No runs yet.")  # fmt: skip


def render(data: ReportData) -> str:
    """The page as one HTML string."""
    if data.range_from and data.range_to:
        scope = f"{data.range_from:%d %b %Y} – {data.range_to:%d %b %Y} (UTC)"
        dora = _headline(data) + _summary(data)
        recovery = _unrecovered(data.unrecovered)
    else:
        scope = "no deployments yet"
        dora = recovery = '<p class="empty">No deployments in the warehouse yet.</p>'
    sections = [
        ("dora", "The four keys", f"{dora}"),
        ("trends", f"Week by week · {data.scope}", _trends(data)),
        ("recovery", "Open failures, with their age at the data's end", recovery),
        ("funnel", "Release funnel", _funnels(data)),
        ("phases", "Time in release phases", _phases(data)),
        ("flags", "Flag reference churn", _flags(data) if data.range_from else ""),
        *data.sections,
        ("runs", "Latest runs", _runs(data)),
    ]
    body = "".join(
        f'<section id="{sid}"><h2>{escape(title)}</h2>{html}</section>'
        for sid, title, html in sections
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>Engineering insights · {escape(scope)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>Engineering insights</h1><p>{escape(scope)} · from "
        f"<code>{escape(data.source)}</code> · generated {data.generated_at:%Y-%m-%d %H:%M} UTC"
        '</p><p class="note">Deployments belong to the UTC day and week (Monday) of their '
        "start; archived ones are left out. Tiers are labelled with their scheme: LaunchDarkly "
        "(lead time, on the mean per pull request) and DORA 2023 (on the median). “no data” "
        "is never a zero; “too few” is a tier with less data than it needs."
        f"</p></header><main>{body}</main></body></html>"
    )


_CSS = """
:root{--ink:#1f2430;--muted:#6b7280;--line:#e6e8ee;--bg:#f6f7fb;--card:#fff}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#1d2540;color:#fff;padding:22px 32px}
header h1{margin:0 0 4px;font-size:22px;font-weight:650}
header p{margin:2px 0;color:#c9d1e8}header code{color:#fff}
header .note{font-size:12.5px;max-width:980px}
main{max-width:1480px;margin:0 auto;padding:8px 28px 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:16px 20px 18px;margin:18px 0}
h2{font-size:17px;margin:0 0 12px}h3{font-size:14px;margin:16px 0 8px}
small{color:var(--muted);font-weight:400}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:12px;
margin-bottom:14px}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:#fbfcfe}
.card h3{margin:0;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.card .big{font-size:28px;font-weight:650;margin:4px 0}.card p{margin:2px 0;color:#4b5563}
.card.small p{font-size:13px}.delta{color:var(--muted)}.delta.good{color:#17643f}
.delta.bad{color:#9b1c1c}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px}
figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}
.chart{width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:#4b5563;margin:2px 0 4px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;font-weight:600;color:var(--muted);border-bottom:1px solid var(--line);
padding:6px 8px;white-space:nowrap}
td{border-bottom:1px solid #f0f1f5;padding:5px 8px;white-space:nowrap}
tbody tr:hover{background:#f8f9fc}
.tier{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.t1{background:#dcf5e8;color:#17643f}.t2{background:#e3ecfd;color:#1f4fb0}
.t3{background:#fdf0d9;color:#8a5a06}.t4{background:#fde2e2;color:#9b1c1c}
.tier.none,.none{color:#9ca3af}
.status{font-weight:600}.status.succeeded{color:#17643f}.status.failed{color:#9b1c1c}
.status.partial{color:#8a5a06}
details{margin:8px 0}summary{cursor:pointer;color:#2947a9;font-weight:600;padding:4px 0}
.empty{color:var(--muted);font-style:italic}.note{color:var(--muted);font-size:12.5px}
"""


def write_report(
    target: str | Path,
    out: Path,
    since: date | None = None,
    until: date | None = None,
    settings: WarehouseSettings | None = None,
) -> ReportResult:
    """Read the warehouse at `target` read-only and write the page to `out` (atomically)."""
    conn = open_reader(target, settings)
    try:
        try:
            data = read_report(conn, str(target), since, until)
        except duckdb.Error as exc:
            raise WarehouseError(f"report: reading the warehouse failed: {exc}") from None
    finally:
        conn.close()
    page = render(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp's 0600 would hide the page from others
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return ReportResult(out, data.range_from, data.range_to, data.headline, data.scope)
