"""A stand-in for LaunchDarkly's Insights scores (LaunchDarkly does not publish its formula).

Scope: one project and environment, optionally narrowed to some applications (a group).
Period: the 7 whole UTC days before the day of the dataset's anchor; `lastPeriod` the 7 before.
Over the deployments of the scope that started in the period (archived ones left out):

* deploymentFrequency = deployments per day (every status and kind: LaunchDarkly counts
  deployments, not successes): excellent ≥ 1 · good ≥ 1/7 · fair ≥ 1/30 · needsAttention;
* deploymentFailureRate = rollbacks ÷ deployments: excellent ≤ 5 % · good ≤ 10 % ·
  fair ≤ 15 % · needsAttention;
* leadTime = mean `leadTime` of finished non-rollback deployments, in hours: excellent < 24 ·
  good ≤ 168 · fair ≤ 672 · needsAttention (LaunchDarkly's published lead-time tiers).

The score is placed linearly inside its band (excellent 90–100, good 70–89, fair 40–69,
needsAttention 0–39: LaunchDarkly's published bands). A metric without data is
`notCalculated`, score 0, range 0–0. The other metrics (impact size, flag health,
experimentation, creation ratio) are fixed draws per scope; velocity, risk, efficiency and
overall are means of their parts and say so in `aggregateOf`.

**Disagreement on purpose:** in one scope of three (by a hash of its key) one of the three
DORA metrics is reported one band lower than the formula gives, standing in for LaunchDarkly
weightings nobody outside can see, so `insight_scores_vs_ours` has disagreements to show.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence

from etl.sandbox.records import JSON, Deployment

DAY = 86_400_000
PERIOD = 7 * DAY

BANDS: tuple[tuple[str, int, int], ...] = (
    ("excellent", 90, 100),
    ("good", 70, 89),
    ("fair", 40, 69),
    ("needsAttention", 0, 39),
)
"""Indicator, score range; best first."""

DORA_METRICS = ("deploymentFrequency", "deploymentFailureRate", "leadTime")
_FIXED = ("impactSize", "experimentationCoverage", "flagHealth", "creationRatio")
_AGGREGATES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("velocity", ("deploymentFrequency", "leadTime")),
    ("risk", ("deploymentFailureRate", "impactSize")),
    ("efficiency", ("flagHealth", "experimentationCoverage")),
)


def periods(anchor_ms: int) -> tuple[JSON, JSON]:
    """(`period`, `lastPeriod`): the 7 whole UTC days before the anchor's day, and the 7 before."""
    end = anchor_ms - anchor_ms % DAY
    return (
        {"startTime": end - PERIOD, "endTime": end},
        {"startTime": end - 2 * PERIOD, "endTime": end - PERIOD},
    )


def band(indicator: str) -> tuple[int, int]:
    """The score range of an indicator."""
    return next((low, high) for name, low, high in BANDS if name == indicator)


def _placed(position: int, fraction: float) -> JSON:
    """A score in band `position` (0 = excellent), `fraction` of the way from its bottom."""
    name, low, high = BANDS[position]
    score = low + round((high - low) * min(1.0, max(0.0, fraction)))
    return {"score": score, "indicator": name, "indicatorRange": {"min": low, "max": high}}


def _not_calculated() -> JSON:
    return {"score": 0, "indicator": "notCalculated", "indicatorRange": {"min": 0, "max": 0}}


def _higher_better(value: float, limits: Sequence[float]) -> JSON:
    """Bands for a value where more is better; `limits` are the bottoms of the first three."""
    for position, bottom in enumerate(limits):
        if value >= bottom:
            top = limits[position - 1] if position else bottom * 2
            return _placed(position, (value - bottom) / (top - bottom))
    return _placed(3, value / limits[-1])


def _lower_better(value: float, limits: Sequence[float], *, strict_first: bool) -> JSON:
    """Bands for a value where less is better; `limits` are the tops of the first three."""
    for position, top in enumerate(limits):
        inside = value < top if (strict_first and position == 0) else value <= top
        if inside:
            bottom = limits[position - 1] if position else 0.0
            return _placed(position, 1 - (value - bottom) / (top - bottom))
    return _placed(3, max(0.0, 1 - (value - limits[-1]) / (limits[-1] * 3)))


def dora_scores(deployments: Sequence[Deployment], start: int, end: int) -> dict[str, JSON]:
    """The three DORA metrics' scores over the deployments that started in [start, end)."""
    picked = [d for d in deployments if start <= d.started_at < end and not d.archived]
    if not picked:
        return {name: _not_calculated() for name in DORA_METRICS}
    days = (end - start) / DAY
    rollbacks = sum(d.kind == "rollback" for d in picked)
    lead = [d.lead_time for d in picked if d.status == "finished" and d.kind != "rollback"]
    scores = {
        "deploymentFrequency": _higher_better(len(picked) / days, (1.0, 1 / 7, 1 / 30)),
        "deploymentFailureRate": _lower_better(
            rollbacks / len(picked), (0.05, 0.10, 0.15), strict_first=False
        ),
    }
    if lead:
        mean_h = sum(lead) / len(lead) / 3_600_000
        scores["leadTime"] = _lower_better(mean_h, (24.0, 168.0, 672.0), strict_first=True)
    else:
        scores["leadTime"] = _not_calculated()
    return scores


def _skewed(score: JSON) -> JSON:
    """The same metric one band lower (needsAttention stays, at its bottom)."""
    names = [name for name, _, _ in BANDS]
    if score["indicator"] not in names:
        return score
    position = min(3, names.index(score["indicator"]) + 1)
    return _placed(position, 0.5)


def insight_scores(
    scope: str, deployments: Sequence[Deployment], anchor_ms: int
) -> tuple[JSON, JSON, JSON]:
    """(`period`, `lastPeriod`, `InsightGroupScores`) for one scope named `scope`."""
    period, last_period = periods(anchor_ms)
    current = dora_scores(deployments, period["startTime"], period["endTime"])
    previous = dora_scores(deployments, last_period["startTime"], last_period["endTime"])
    digest = zlib.crc32(scope.encode())
    if digest % 3 == 0:
        skewed = DORA_METRICS[digest // 3 % 3]
        current[skewed] = _skewed(current[skewed])
        previous[skewed] = _skewed(previous[skewed])
    rng = random.Random(f"scores/{scope}")
    for name in _FIXED:
        current[name] = _placed(rng.randint(0, 3), rng.random())
    for name, parts in _AGGREGATES:
        current[name] = _aggregate(current, parts)
    current["overall"] = _aggregate(current, tuple(name for name, _ in _AGGREGATES))
    for name in DORA_METRICS:
        if current[name]["indicator"] != "notCalculated" and previous[name]["indicator"] != (
            "notCalculated"
        ):
            current[name]["diffVsLastPeriod"] = current[name]["score"] - previous[name]["score"]
    order = ("overall", *DORA_METRICS, *_FIXED[:3], "velocity", "risk", "efficiency", _FIXED[3])
    return period, last_period, {name: current[name] for name in order}


def _aggregate(scores: dict[str, JSON], parts: tuple[str, ...]) -> JSON:
    """The mean score of `parts` in the band it falls in, naming the parts."""
    values = [scores[part]["score"] for part in parts]
    mean = round(sum(values) / len(values))
    name, low, high = next(b for b in BANDS if b[1] <= mean)
    return {
        "score": mean,
        "indicator": name,
        "indicatorRange": {"min": low, "max": high},
        "aggregateOf": list(parts),
    }
