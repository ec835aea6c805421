"""The report's team section: the four keys per team, and LaunchDarkly's scores beside ours.

Read from `dora_summary_by_team_between` and `insight_scores_vs_ours` (sql/views/5x_*.sql).
The comparison lists the disagreements first: where LaunchDarkly and we tier the same scope
differently is where a reader should look, and each row says both values, so the reader can
tell a different definition (what is counted, over which days) from a real difference.
"""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

import duckdb

Row = dict[str, Any]
Section = tuple[str, str, str]
"""(anchor id, title, HTML) as `report.render` lays sections out."""

_UNITS = {
    "deploymentFrequency": "deployment frequency",
    "deploymentFailureRate": "failure rate",
    "leadTime": "lead time",
}


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[Row]:
    result = conn.execute(sql, params)
    names = [d[0] for d in result.description or []]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def team_section(
    conn: duckdb.DuckDBPyConnection,
    first: date,
    last: date,
    pairs: frozenset[tuple[str, str]] | None,
) -> Section:
    """The section for [first, last], over the report's environments (`pairs`; None: all)."""
    teams = _rows(
        conn,
        """
        SELECT s.*, coalesce(t.name, s.team_key) AS team_name
        FROM dora_summary_by_team_between(?, ?) s
        LEFT JOIN teams t ON t.team_key = s.team_key AND t._deleted_at IS NULL
        ORDER BY s.team_key = '(no team)', s.team_key, s.environment_key""",
        [first, last],
    )
    if pairs is not None:
        environments = {environment for _, environment in pairs}
        teams = [row for row in teams if row["environment_key"] in environments]
    compared = _rows(
        conn,
        """
        SELECT * FROM insight_scores_vs_ours
        ORDER BY agrees, project_key, environment_key, group_key NULLS FIRST, metric""",
        [],
    )
    html = (
        "<h3>The four keys per team</h3>"
        '<p class="note">Each team pools the deployments of the applications it maintains '
        "now (an application that moved counts whole for its new team); applications "
        "maintained by a member or by nobody are <code>(no team)</code>.</p>"
        + _team_table(teams)
        + "<h3>LaunchDarkly says / we compute</h3>"
        + _comparison(compared)
    )
    return ("teams", "Teams, and LaunchDarkly's scores beside ours", html)


def _team_table(rows: list[Row]) -> str:
    from etl.report import _hours, _pct, _table, _tiers

    body = []
    for r in rows:
        tiers = _tiers(r)
        body.append(
            [
                f"<b>{escape(str(r['team_name']))}</b>",
                escape(str(r["environment_key"])),
                f"{r['deployments']:,}",
                f"{r['median_period_deploy_days'] or 0:g} days/week {tiers['frequency']}",
                f"{_hours(r['lead_time_p50_h'])} {tiers['lead_dora']}",
                f"{_pct(r['change_failure_rate'])} {tiers['cfr']}",
                f"{_hours(r['recovery_p50_h'])} {tiers['recovery']}",
            ]
        )
    headers = ["team", "environment", "deployments", "deployment frequency", "lead time (p50)",
               "change failure rate", "recovery (p50)"]  # fmt: skip
    return _table(headers, body, "No team maintains a deployed application yet.")


def _value(r: Row) -> str:
    from etl.report import _hours, _pct

    value = r["our_value"]
    if value is None:
        return "no data"
    if r["metric"] == "leadTime":
        return _hours(value)
    if r["metric"] == "deploymentFailureRate":
        return _pct(value)
    return f"{value:.2f} a day"


def _comparison(rows: list[Row]) -> str:
    from etl.report import MIN_LEAD_TIMES, _table, _tier

    if not rows:
        return '<p class="empty">No LaunchDarkly scores synced yet (stream insight_scores).</p>'
    disagreeing = sum(1 for r in rows if not r["agrees"])
    body = []
    for r in rows:
        minimum = MIN_LEAD_TIMES if r["metric"] == "leadTime" else 0
        scope = f"{r['project_key']} / {r['environment_key']}"
        if r["group_key"] is not None:
            scope += f" / group {r['group_key']}"
        theirs = (
            f"{_tier(r['launchdarkly_tier'], 'LaunchDarkly: ' + str(r['launchdarkly_indicator']))}"
            f" <small>score {r['launchdarkly_score']}</small>"
        )
        ours = (
            f"{_tier(r['our_tier'], 'ours, in LaunchDarkly’s scheme', r['our_samples'], minimum)} "
            f"<small>{escape(_value(r))} · {r['our_samples']} samples</small>"
        )
        verdict = "agree" if r["agrees"] else "<b>disagree</b>"
        metric = str(_UNITS.get(r["metric"], r["metric"]))
        body.append([escape(scope), escape(metric), theirs, ours,
                     verdict])  # fmt: skip
    period = f"{rows[0]['period_start']:%d %b} – {rows[0]['period_end']:%d %b %Y}"
    note = (
        f'<p class="note">{disagreeing} of {len(rows)} disagree, listed first. Both sides '
        f"cover LaunchDarkly's period ({escape(period)}, UTC days). A disagreement means the "
        "definitions differ for that scope — which deployments count, how lead time is "
        "averaged, how many samples a tier needs — or LaunchDarkly weighs something it does "
        "not publish: compare the two values before trusting either tier.</p>"
    )
    headers = ["scope", "metric", "LaunchDarkly says", "we compute", ""]
    disagree = [row for row, r in zip(body, rows, strict=True) if not r["agrees"]]
    agree = [row for row, r in zip(body, rows, strict=True) if r["agrees"]]
    folded = _table(headers, agree, "")
    agreeing = f"<details><summary>{len(agree)} that agree</summary>{folded}</details>"
    shown = _table(headers, disagree, "LaunchDarkly and we agree everywhere.")
    return note + shown + (agreeing if agree else "")
