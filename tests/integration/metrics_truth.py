"""The metrics of docs/metrics.md computed in plain Python over the sandbox's truth.

Independent of the SQL views on purpose: the tests compare the two, so a view that groups,
filters or interpolates differently from the definitions fails.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

HOUR_MS = 3_600_000


def quantile_cont(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (DuckDB's quantile_cont); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Dep:
    """One deployment of the truth, as the metrics see it."""

    id: str
    project: str
    environment: str
    application: str
    version: str
    started_ms: int
    ended_ms: int | None
    status: str
    kind: str
    lead_time_ms: int
    pr_ids: tuple[str, ...]
    flags: tuple[tuple[str, str, int, int], ...]

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.project, self.environment, self.application)

    @property
    def day(self) -> date:
        return utc(self.started_ms).date()

    @property
    def week(self) -> date:
        return monday(self.day)

    @property
    def successful(self) -> bool:
        return self.status == "finished"

    @property
    def counts_for_lead_time(self) -> bool:
        return self.successful and self.kind != "rollback"


def metric_deployments(truth: Any) -> list[Dep]:
    """Every deployment the metrics count: the archived ones are left out."""
    out = []
    for (project, environment), reps in truth.deployments.items():
        for rep in reps:
            if rep["archived"]:
                continue
            out.append(
                Dep(
                    id=rep["id"],
                    project=project,
                    environment=environment,
                    application=rep["applicationKey"],
                    version=rep["applicationVersion"],
                    started_ms=rep["startedAt"],
                    ended_ms=rep.get("endedAt"),
                    status=rep["status"],
                    kind=rep["kind"],
                    lead_time_ms=rep["leadTime"],
                    pr_ids=tuple(pr["id"] for pr in rep["pullRequests"]["items"]),
                    flags=tuple(
                        (
                            f["projectKey"],
                            f["flagKey"],
                            f["referencesAdded"],
                            f["referencesRemoved"],
                        )
                        for f in rep["flagReferences"]["items"]
                    ),
                )
            )
    return out


def recovery(deps: Iterable[Dep]) -> dict[str, tuple[str | None, float | None]]:
    """Failed deployment id → (recovering deployment id, hours), by the DORA 2023 rule."""
    by_group: defaultdict[tuple[str, str, str], list[Dep]] = defaultdict(list)
    for dep in deps:
        by_group[dep.group].append(dep)
    out: dict[str, tuple[str | None, float | None]] = {}
    for members in by_group.values():
        successes = sorted((d for d in members if d.successful), key=lambda d: d.started_ms)
        for failed in (d for d in members if d.status == "failed"):
            after = [s for s in successes if s.started_ms > failed.started_ms]
            if not after:
                out[failed.id] = (None, None)
                continue
            first = after[0]
            assert first.ended_ms is not None
            out[failed.id] = (first.id, (first.ended_ms - failed.started_ms) / HOUR_MS)
    return out


def _lead_hours(deps: Iterable[Dep]) -> list[float]:
    return [d.lead_time_ms for d in deps if d.counts_for_lead_time]


def weekly(deps: list[Dep]) -> dict[tuple[str, str, str, date], dict[str, Any]]:
    """dora_weekly as Python: every week from a group's first to last, zeros included."""
    recovered = recovery(deps)
    by_group: defaultdict[tuple[str, str, str], list[Dep]] = defaultdict(list)
    for dep in deps:
        by_group[dep.group].append(dep)
    rows: dict[tuple[str, str, str, date], dict[str, Any]] = {}
    for group, members in by_group.items():
        week = min(d.week for d in members)
        last = max(d.week for d in members)
        while week <= last:
            these = [d for d in members if d.week == week]
            n = len(these)
            lead = _lead_hours(these)
            hours = [
                recovered[d.id][1]
                for d in these
                if d.status == "failed" and recovered[d.id][1] is not None
            ]
            rollbacks = sum(d.kind == "rollback" for d in these)
            failed = sum(d.status == "failed" for d in these)
            rows[(*group, week)] = {
                "deployments": n,
                "successful": sum(d.successful for d in these),
                "failed": failed,
                "rollbacks": rollbacks,
                "deploy_days": len({d.day for d in these if d.successful}),
                "failure_rate": rollbacks / n if n else None,
                "failed_rate": failed / n if n else None,
                "lead_time_n": len(lead),
                "lead_time_mean_h": _h(mean(lead)),
                **{
                    f"lead_time_p{int(q * 100)}_h": _h(quantile_cont(lead, q))
                    for q in (0.5, 0.75, 0.9, 0.95, 0.99)
                },
                "recovered": len(hours),
                "recovery_p50_h": quantile_cont(hours, 0.5),
            }
            week += timedelta(days=7)
    return rows


def _h(ms: float | None) -> float | None:
    return None if ms is None else ms / HOUR_MS


def lead_time_tier_launchdarkly(mean_h: float | None) -> str | None:
    if mean_h is None:
        return None
    return (
        "Excellent" if mean_h < 24 else "Good" if mean_h <= 168 else "Fair"
        if mean_h <= 672 else "Needs attention"
    )  # fmt: skip


def frequency_tier_dora(median_days: float | None, per_30: float) -> str | None:
    if median_days is None:
        return None
    if median_days >= 5:
        return "elite"
    if median_days >= 1:
        return "high"
    return "medium" if per_30 >= 1 else "low"


def below_tier(
    value: float | None, limits: tuple[float, float, float], inclusive: bool
) -> str | None:
    """DORA tier of a value that is better when lower: elite, high, medium under each limit."""
    if value is None:
        return None
    for name, limit in zip(("elite", "high", "medium"), limits, strict=True):
        if value < limit or (inclusive and value == limit):
            return name
    return "low"


def summary(deps: list[Dep], first: date, last: date) -> dict[tuple[str, str, str], dict[str, Any]]:
    """dora_summary_between(first, last) as Python."""
    recovered = recovery(deps)
    picked = [d for d in deps if first <= d.day <= last]
    by_group: defaultdict[tuple[str, str, str], list[Dep]] = defaultdict(list)
    for dep in picked:
        by_group[dep.group].append(dep)
    days = (last - first).days + 1
    periods = (last - first).days // 7 + 1
    rows = {}
    for group, members in by_group.items():
        n = len(members)
        successful = sum(d.successful for d in members)
        rollbacks = sum(d.kind == "rollback" for d in members)
        failed = [d for d in members if d.status == "failed"]
        per_period = [
            len({d.day for d in members if d.successful and (d.day - first).days // 7 == p})
            for p in range(periods)
        ]
        median_days = quantile_cont(per_period, 0.5)
        per_30 = successful * 30 / days
        lead = _lead_hours(members)
        hours = [recovered[d.id][1] for d in failed if recovered[d.id][1] is not None]
        p50 = _h(quantile_cont(lead, 0.5))
        recovery_p50 = quantile_cont(hours, 0.5)
        rate = rollbacks / n
        rows[group] = {
            "deployments": n,
            "successful": successful,
            "failed": len(failed),
            "rollbacks": rollbacks,
            "deploy_days": len({d.day for d in members if d.successful}),
            "periods": periods,
            "median_period_deploy_days": median_days,
            "successful_per_30_days": per_30,
            "failure_rate": rate,
            "failed_rate": len(failed) / n,
            "lead_time_n": len(lead),
            "lead_time_mean_h": _h(mean(lead)),
            "lead_time_p50_h": p50,
            "lead_time_p90_h": _h(quantile_cont(lead, 0.9)),
            "recovered": len(hours),
            "unrecovered": len(failed) - len(hours),
            "recovery_p50_h": recovery_p50,
            "dora_deployment_frequency_tier": frequency_tier_dora(median_days, per_30),
            "dora_lead_time_tier": below_tier(p50, (24, 168, 720), inclusive=False),
            "dora_change_failure_tier": below_tier(rate, (0.05, 0.10, 0.15), inclusive=True),
            "dora_recovery_tier": below_tier(recovery_p50, (1, 24, 168), inclusive=False),
            "launchdarkly_lead_time_tier": lead_time_tier_launchdarkly(_h(mean(lead))),
        }
    return rows
