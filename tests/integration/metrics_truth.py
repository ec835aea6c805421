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
    lines: int = 0
    stages: tuple[int | None, int | None, int | None, int | None] = (None, None, None, None)

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
    def change(self) -> bool:
        return self.kind not in ("rollback", "redeployment")

    @property
    def ended(self) -> bool:
        return self.status in ("finished", "failed")

    @property
    def counts_for_lead_time(self) -> bool:
        return self.successful and self.change and len(self.pr_ids) > 0


def metric_deployments(truth: Any) -> list[Dep]:
    """Every deployment the metrics count: the archived ones are left out."""
    out = []
    for (project, environment), reps in truth.deployments.items():
        for rep in reps:
            if rep["archived"]:
                continue
            stages = rep.get("leadTimeStages") or {}
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
                    lines=rep["linesAdded"] + rep["linesDeleted"],
                    stages=(
                        stages.get("codingDurationMs"),
                        stages.get("reviewDurationMs"),
                        stages.get("waitDurationMs"),
                        stages.get("deployDurationMs"),
                    ),
                )
            )
    return out


def _by_group(deps: Iterable[Dep]) -> defaultdict[tuple[str, str, str], list[Dep]]:
    by_group: defaultdict[tuple[str, str, str], list[Dep]] = defaultdict(list)
    for dep in deps:
        by_group[dep.group].append(dep)
    return by_group


def rolled_back(deps: Iterable[Dep]) -> set[str]:
    """Ids of the deployments a successful rollback rolled back: the latest successful
    non-rollback of the same group that started before the rollback."""
    out = set()
    for members in _by_group(deps).values():
        targets = sorted(
            (d for d in members if d.successful and d.kind != "rollback"),
            key=lambda d: d.started_ms,
        )
        for rollback in (d for d in members if d.successful and d.kind == "rollback"):
            before = [t for t in targets if t.started_ms < rollback.started_ms]
            if before:
                out.add(before[-1].id)
    return out


def change_failures(deps: list[Dep]) -> set[str]:
    """Ids of the change deployments that failed or were rolled back."""
    back = rolled_back(deps)
    return {d.id for d in deps if d.change and (d.status == "failed" or d.id in back)}


def data_end_ms(deps: Iterable[Dep]) -> int:
    return max(d.started_ms for d in deps)


def recovery(deps: list[Dep]) -> dict[str, tuple[str | None, float | None, float]]:
    """Change failure id → (recovering deployment id, recovery hours, hours or age at the end).

    The recovering deployment: the successful one of the same group, not the failure itself,
    started no earlier and ended after it, that ended first.
    """
    failures = change_failures(deps)
    end = data_end_ms(deps)
    out: dict[str, tuple[str | None, float | None, float]] = {}
    for members in _by_group(deps).values():
        successes = [d for d in members if d.successful and d.ended_ms is not None]
        for failed in (d for d in members if d.id in failures):
            failed_end = failed.ended_ms if failed.ended_ms is not None else failed.started_ms
            after = [
                s
                for s in successes
                if s.id != failed.id
                and s.started_ms >= failed.started_ms
                and (s.ended_ms or 0) > failed_end
            ]
            if not after:
                out[failed.id] = (None, None, (end - failed.started_ms) / HOUR_MS)
                continue
            first = min(after, key=lambda s: (s.ended_ms or 0, s.started_ms, s.id))
            hours = ((first.ended_ms or 0) - failed.started_ms) / HOUR_MS
            out[failed.id] = (first.id, hours, hours)
    return out


def _lead_hours(deps: Iterable[Dep]) -> list[float]:
    return [d.lead_time_ms for d in deps if d.counts_for_lead_time]


def _metrics(these: list[Dep], recovered: dict[str, Any]) -> dict[str, Any]:
    """The metrics of one period of one group (dora_period_metrics)."""
    n = len(these)
    lead_deps = [d for d in these if d.counts_for_lead_time]
    lead = [float(d.lead_time_ms) for d in lead_deps]
    prs = sum(len(d.pr_ids) for d in lead_deps)
    ended = [d for d in these if d.change and d.ended]
    failures = [d for d in these if d.id in recovered]
    hours = [recovered[d.id][2] for d in failures]
    stages = [
        _h(quantile_cont([d.stages[i] for d in lead_deps if d.stages[i] is not None], 0.5))
        for i in range(4)
    ]
    rollbacks = sum(d.kind == "rollback" for d in these)
    return {
        "deployments": n,
        "successful": sum(d.successful for d in these),
        "failed": sum(d.status == "failed" for d in these),
        "rollbacks": rollbacks,
        "deploy_days": len({d.day for d in these if d.successful}),
        "change_deployments": sum(d.change for d in these),
        "change_deployments_ended": len(ended),
        "change_failures": len(failures),
        "change_failure_rate": len(failures) / len(ended) if ended else None,
        "launchdarkly_failure_rate": rollbacks / n if n else None,
        "lead_time_n": len(lead),
        "lead_time_pull_requests": prs,
        "lead_time_mean_h": _h(mean(lead)),
        "lead_time_pr_weighted_mean_h": _h(
            sum(d.lead_time_ms * len(d.pr_ids) for d in lead_deps) / prs if prs else None
        ),
        **{
            f"lead_time_p{int(q * 100)}_h": _h(quantile_cont(lead, q))
            for q in (0.5, 0.75, 0.9, 0.95, 0.99)
        },
        "coding_p50_h": stages[0],
        "review_p50_h": stages[1],
        "wait_p50_h": stages[2],
        "deploy_p50_h": stages[3],
        "change_size_p50_lines": quantile_cont([d.lines for d in lead_deps], 0.5),
        "recovered": sum(recovered[d.id][0] is not None for d in failures),
        "unrecovered": sum(recovered[d.id][0] is None for d in failures),
        "recovery_p50_h": quantile_cont(hours, 0.5),
    }


def weekly(deps: list[Dep]) -> dict[tuple[str, str, str, date], dict[str, Any]]:
    """dora_weekly as Python: every week from a group's first to the data's end, zeros too."""
    recovered = recovery(deps)
    first = utc(min(d.started_ms for d in deps))
    end = utc(data_end_ms(deps))
    last = monday(end.date())
    rows: dict[tuple[str, str, str, date], dict[str, Any]] = {}
    for group, members in _by_group(deps).items():
        week = min(d.week for d in members)
        while week <= last:
            starts = datetime(week.year, week.month, week.day, tzinfo=UTC)
            metrics = _metrics([d for d in members if d.week == week], recovered)
            rows[(*group, week)] = metrics | {
                "partial_week": starts < first or starts + timedelta(days=7) > end
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
    """dora_summary_between(first, last) as Python: every group with any deployment at all."""
    recovered = recovery(deps)
    days = (last - first).days + 1
    rows = {}
    for group, members in _by_group(deps).items():
        ranges = {}
        for name, start in (("", first), ("_prev", first - timedelta(days=days))):
            end = start + timedelta(days=days - 1)
            picked = [d for d in members if start <= d.day <= end]
            metrics = _metrics(picked, recovered)
            per_period = [
                len({d.day for d in picked if d.successful and (d.day - start).days // 7 == p})
                for p in range((days - 1) // 7 + 1)
            ]
            median_days = quantile_cont(per_period, 0.5)
            per_30 = metrics["successful"] * 30 / days
            enough_lead = metrics["lead_time_n"] >= 5
            ranges[name] = metrics | {
                "periods": len(per_period),
                "median_period_deploy_days": median_days,
                "successful_per_30_days": per_30,
                "dora_deployment_frequency_tier": frequency_tier_dora(median_days, per_30),
                "dora_lead_time_tier": below_tier(
                    metrics["lead_time_p50_h"], (24, 168, 720), inclusive=False
                )
                if enough_lead
                else None,
                "dora_change_failure_tier": below_tier(
                    metrics["change_failure_rate"], (0.05, 0.10, 0.15), inclusive=True
                )
                if metrics["change_deployments_ended"] >= 5
                else None,
                "dora_recovery_tier": below_tier(
                    metrics["recovery_p50_h"], (1, 24, 168), inclusive=False
                )
                if metrics["change_failures"] >= 1
                else None,
                "launchdarkly_lead_time_tier": lead_time_tier_launchdarkly(
                    metrics["lead_time_pr_weighted_mean_h"]
                )
                if enough_lead
                else None,
            }
        row = ranges[""]
        for key in ("deployments", "lead_time_p50_h", "change_failure_rate", "recovery_p50_h",
                    "dora_lead_time_tier", "dora_change_failure_tier"):  # fmt: skip
            row[f"{key}_prev"] = ranges["_prev"][key]
        rows[group] = row
    return rows
