"""Ownership and Insights: applications, teams, groups, scores, and the pull-request listing.

Example application (trimmed)::

    {"key": "billing-service", "name": "Billing Service", "kind": "server", "autoAdded": true,
     "creationDate": 1755388800000, "_maintainer": {"team": {"key": "payments-team", …}}}

People's data is not kept: a member maintainer is stored as their id (`_raw` keeps only
`_maintainer.member._id`), and a team's `members`/`maintainers`, should a response carry
them, are dropped before anything is written, `_raw` included.

Insights scores come from two listings: the scores endpoint per (project, environment), and
the groups listing (`expand=scores`) for groups. Each becomes one row per metric, stamped with
the run: LaunchDarkly shows only the current period, so the history is the runs'.

Pull requests from the Insights listing go to `pull_requests` like those deployments carry:
the row written last wins (both endpoints serve a pull request's current state, so the last
read is the latest state). Their flag references and lead time are what only this listing
has.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from etl.config import Stream
from etl.normalize import schemas
from etl.normalize.deployments import pull_request_columns
from etl.normalize.family import Family
from etl.normalize.frame import Batch, decode_units, utc_ms
from etl.normalize.schemas import (
    FLAG_REFERENCES,
    PULL_REQUEST,
    PULL_REQUEST_REQUIRED,
    SOFT_DELETED,
    STRS,
    TS,
    B,
    I,
    RecordSpec,
    S,
    Table,
)
from etl.rawjson import RawRecord, decode, encode
from etl.records import Fetched

# ---- input -----------------------------------------------------------------------------------

APPLICATION = pl.Struct(
    {
        "key": S,
        "name": S,
        "kind": S,
        "description": S,
        "creationDate": I,
        "autoAdded": B,
        "_maintainer": pl.Struct(
            {"member": pl.Struct({"_id": S}), "team": pl.Struct({"key": S, "name": S})}
        ),
    }
)
APPLICATIONS = RecordSpec(
    "applications",
    APPLICATION,
    frozenset({*APPLICATION.to_schema(), "_links", "_access", "_version", "flags"}),
    ("key", "name", "kind", "autoAdded"),
    "key",
    (),
)

TEAM = pl.Struct({"key": S, "name": S, "description": S, "_creationDate": I})
TEAMS = RecordSpec(
    "teams",
    TEAM,
    frozenset({*TEAM.to_schema(), "_access", "_links", "_lastModified", "_version", "_idpSynced",
               "roleAttributes", "roles", "members", "projects", "maintainers"}),
    ("key",),
    "key",
    (),
)  # fmt: skip
TEAM_PEOPLE_FIELDS = ("members", "maintainers")
"""Who is in a team: never stored, not even in `_raw`."""

METRIC_SCORE = pl.Struct(
    {
        "score": I,
        "indicator": S,
        "indicatorRange": pl.Struct({"min": I, "max": I}),
        "diffVsLastPeriod": I,
        "aggregateOf": STRS,
    }
)
METRICS = (
    "overall", "deploymentFrequency", "deploymentFailureRate", "leadTime", "impactSize",
    "experimentationCoverage", "flagHealth", "velocity", "risk", "efficiency", "creationRatio",
)  # fmt: skip
GROUP_SCORES = pl.Struct(dict.fromkeys(METRICS, METRIC_SCORE))
PERIOD = pl.Struct({"startTime": I, "endTime": I})
SCORES = RecordSpec(
    "insight_scores",
    pl.Struct({"period": PERIOD, "lastPeriod": PERIOD, "scores": GROUP_SCORES}),
    frozenset({"period", "lastPeriod", "scores", "_links"}),
    ("period", "scores"),
    "period",
    ("project_key", "environment_key"),
)
INSIGHT_GROUP = pl.Struct(
    {
        "key": S,
        "name": S,
        "projectKey": S,
        "environmentKey": S,
        "applicationKeys": STRS,
        "createdAt": I,
        "scores": GROUP_SCORES,
        "scoreMetadata": pl.Struct({"period": PERIOD, "lastPeriod": PERIOD}),
    }
)
INSIGHT_GROUPS = RecordSpec(
    "insight_groups",
    INSIGHT_GROUP,
    frozenset({*INSIGHT_GROUP.to_schema(), "environment"}),
    ("key", "name", "projectKey", "environmentKey", "createdAt"),
    "key",
    (),
)
LEAD_TIME = pl.Struct(
    {
        "codingDurationMs": I,
        "reviewDurationMs": I,
        "maxWaitDurationMs": I,
        "avgWaitDurationMs": I,
        "maxDeployDurationMs": I,
        "avgDeployDurationMs": I,
        "maxTotalLeadTimeMs": I,
        "avgTotalLeadTimeMs": I,
    }
)
LISTED_PULL_REQUEST = pl.Struct(
    {**PULL_REQUEST.to_schema(), "flagReferences": FLAG_REFERENCES, "leadTime": LEAD_TIME}
)
PULL_REQUESTS = RecordSpec(
    "pull_requests",
    LISTED_PULL_REQUEST,
    frozenset({*LISTED_PULL_REQUEST.to_schema(), "deployments"}),
    tuple(PULL_REQUEST_REQUIRED),
    "id",
    ("project_key",),
)

# ---- output ----------------------------------------------------------------------------------

APPLICATIONS_TABLE = Table(
    "applications",
    {
        "application_key": S, "name": S, "kind": S, "description": S, "creation_date": TS,
        "auto_added": B, "maintainer_member_id": S, "maintainer_team_key": S, **SOFT_DELETED,
    },
    ("application_key",),
    swept_by=Stream.APPLICATIONS,
)  # fmt: skip
TEAMS_TABLE = Table(
    "teams",
    {"team_key": S, "name": S, "description": S, "creation_date": TS, **SOFT_DELETED},
    ("team_key",),
    swept_by=Stream.TEAMS,
)
GROUPS_TABLE = Table(
    "insight_groups",
    {
        "group_key": S, "project_key": S, "environment_key": S, "name": S, "created_at": TS,
        "application_keys": STRS, **SOFT_DELETED,
    },
    ("group_key",),
    swept_by=Stream.INSIGHT_GROUPS,
)  # fmt: skip
SCORES_TABLE = Table(
    "insight_scores",
    {
        "run_id": S, "project_key": S, "environment_key": S, "group_key": S, "metric": S,
        "period_start": TS, "period_end": TS, "score": I, "indicator": S, "indicator_min": I,
        "indicator_max": I, "diff_vs_last_period": I, "aggregate_of": STRS, "_loaded_at": TS,
    },
    ("run_id", "project_key", "environment_key", "group_key", "metric"),
)  # fmt: skip
LEAD_TIMES_TABLE = Table(
    "pull_request_lead_times",
    {
        "pull_request_id": S, "coding_duration_ms": I, "review_duration_ms": I,
        "max_wait_duration_ms": I, "avg_wait_duration_ms": I, "max_deploy_duration_ms": I,
        "avg_deploy_duration_ms": I, "max_total_lead_time_ms": I, "avg_total_lead_time_ms": I,
        "_run_id": S,
    },
    ("pull_request_id",),
)  # fmt: skip


def _application_without_people(item: RawRecord) -> RawRecord:
    """The application with its member maintainer reduced to their id."""
    record = decode(item)
    if not isinstance(record, dict):
        return item  # not an object: decoding names it
    maintainer = record.get("_maintainer")
    member = maintainer.get("member") if isinstance(maintainer, dict) else None
    if not isinstance(maintainer, dict) or not isinstance(member, dict):
        return item
    return encode({**record, "_maintainer": {**maintainer, "member": {"_id": member.get("_id")}}})


def _team_without_people(item: RawRecord) -> RawRecord:
    record = decode(item)
    if not isinstance(record, dict) or not any(f in record for f in TEAM_PEOPLE_FIELDS):
        return item
    return encode({k: v for k, v in record.items() if k not in TEAM_PEOPLE_FIELDS})


def normalize_applications(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Applications and their maintainer (a member's id or a team's key)."""
    raws = [_application_without_people(item) for unit in units for item in unit.items]
    maintainer = pl.col("_maintainer").struct
    frame = decode_units(units, batch, APPLICATIONS, raws).select(
        pl.col("key").alias("application_key"),
        "name",
        "kind",
        "description",
        utc_ms("creationDate").alias("creation_date"),
        pl.col("autoAdded").alias("auto_added"),
        maintainer.field("member").struct.field("_id").alias("maintainer_member_id"),
        maintainer.field("team").struct.field("key").alias("maintainer_team_key"),
        "_raw",
        "_run_id",
        "_loaded_at",
        pl.lit(None).alias("_deleted_at"),
    )
    frame = frame.unique("application_key", keep="last", maintain_order=True)
    return {"applications": schemas.conform(frame, APPLICATIONS_TABLE)}


def normalize_teams(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Teams: key, name, description, creation date; never who is in them."""
    raws = [_team_without_people(item) for unit in units for item in unit.items]
    frame = decode_units(units, batch, TEAMS, raws).select(
        pl.col("key").alias("team_key"),
        "name",
        "description",
        utc_ms("_creationDate").alias("creation_date"),
        "_raw",
        "_run_id",
        "_loaded_at",
        pl.lit(None).alias("_deleted_at"),
    )
    frame = frame.unique("team_key", keep="last", maintain_order=True)
    return {"teams": schemas.conform(frame, TEAMS_TABLE)}


def _score_rows(frame: pl.DataFrame, period: pl.Expr, group_key: pl.Expr) -> pl.DataFrame:
    """One row per (scope, metric) of a frame with `scores`, `project_key`, `environment_key`."""
    parts = []
    for metric in METRICS:
        value = pl.col("scores").struct.field(metric)
        parts.append(
            frame.select(
                pl.col("_run_id").alias("run_id"),
                "project_key",
                "environment_key",
                group_key.alias("group_key"),
                pl.lit(metric).alias("metric"),
                utc_ms_expr(period.struct.field("startTime")).alias("period_start"),
                utc_ms_expr(period.struct.field("endTime")).alias("period_end"),
                value.struct.field("score").alias("score"),
                value.struct.field("indicator").alias("indicator"),
                value.struct.field("indicatorRange").struct.field("min").alias("indicator_min"),
                value.struct.field("indicatorRange").struct.field("max").alias("indicator_max"),
                value.struct.field("diffVsLastPeriod").alias("diff_vs_last_period"),
                value.struct.field("aggregateOf").alias("aggregate_of"),
                "_loaded_at",
            ).filter(pl.col("score").is_not_null())
        )
    rows = pl.concat(parts)
    return schemas.conform(rows, SCORES_TABLE).unique(
        ["run_id", "project_key", "environment_key", "group_key", "metric"],
        keep="last",
        maintain_order=True,
    )


def utc_ms_expr(expr: pl.Expr) -> pl.Expr:
    """Unix milliseconds → TIMESTAMPTZ (UTC), for a nested field."""
    return pl.from_epoch(expr, time_unit="ms").dt.replace_time_zone("UTC")


def normalize_scores(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """A (project, environment)'s scores: one row per metric, for this run."""
    frame = decode_units(units, batch, SCORES)
    rows = _score_rows(frame, pl.col("period"), pl.lit(None, dtype=pl.String))
    return {"insight_scores": rows}


def normalize_groups(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Insights groups, and their scores (`expand=scores`) as this run's group rows."""
    frame = decode_units(units, batch, INSIGHT_GROUPS).unique(
        "key", keep="last", maintain_order=True
    )
    groups = frame.select(
        pl.col("key").alias("group_key"),
        pl.col("projectKey").alias("project_key"),
        pl.col("environmentKey").alias("environment_key"),
        "name",
        utc_ms("createdAt").alias("created_at"),
        pl.col("applicationKeys").alias("application_keys"),
        "_raw",
        "_run_id",
        "_loaded_at",
        pl.lit(None).alias("_deleted_at"),
    )
    scored = frame.filter(pl.col("scores").is_not_null()).rename(
        {"projectKey": "project_key", "environmentKey": "environment_key"}
    )
    period = pl.col("scoreMetadata").struct.field("period")
    return {
        "insight_groups": schemas.conform(groups, GROUPS_TABLE),
        "insight_scores": _score_rows(scored, period, pl.col("key")),
    }


EXPANSIONS = ("deployments", "flagReferences", "leadTime")
"""What the pull-request listing expands: kept in their own tables, not in `_raw`."""


def _without_expansions(item: RawRecord) -> RawRecord:
    """The pull request as deployments embed it, so `_raw` is the same from either endpoint."""
    record = decode(item)
    if not isinstance(record, dict):
        return item  # not an object: decoding names it
    return encode({key: value for key, value in record.items() if key not in EXPANSIONS})


def normalize_pull_requests(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """The Insights listing's pull requests, their flag references and lead times.

    `_raw` is the pull request without its expansions: deployments embed it that way, and
    the row either endpoint wrote last must read the same.
    """
    decoded = decode_units(units, batch, PULL_REQUESTS)
    stripped = [_without_expansions(item) for unit in units for item in unit.items]
    frame = decoded.with_columns(pl.Series("_raw", [bytes(r).decode() for r in stripped]))
    frame = frame.unique("id", keep="last", maintain_order=True)
    pull_requests = frame.select(pull_request_columns())
    refs = (
        frame.filter(pl.col("flagReferences").is_not_null())
        .select(
            pl.col("id").alias("pull_request_id"),
            pl.col("flagReferences").struct.field("items").alias("_ref"),
            "_run_id",
        )
        .explode("_ref", empty_as_null=False, keep_nulls=False)
        .unnest("_ref")
        .rename(
            {
                "projectKey": "project_key",
                "flagKey": "flag_key",
                "referencesAdded": "references_added",
                "referencesRemoved": "references_removed",
            }
        )
        .unique(["pull_request_id", "project_key", "flag_key"], keep="last", maintain_order=True)
    )
    lead = pl.col("leadTime").struct
    lead_times = frame.filter(pl.col("leadTime").is_not_null()).select(
        pl.col("id").alias("pull_request_id"),
        lead.field("codingDurationMs").alias("coding_duration_ms"),
        lead.field("reviewDurationMs").alias("review_duration_ms"),
        lead.field("maxWaitDurationMs").alias("max_wait_duration_ms"),
        lead.field("avgWaitDurationMs").alias("avg_wait_duration_ms"),
        lead.field("maxDeployDurationMs").alias("max_deploy_duration_ms"),
        lead.field("avgDeployDurationMs").alias("avg_deploy_duration_ms"),
        lead.field("maxTotalLeadTimeMs").alias("max_total_lead_time_ms"),
        lead.field("avgTotalLeadTimeMs").alias("avg_total_lead_time_ms"),
        "_run_id",
    )
    tables = {
        "pull_requests": schemas.conform(pull_requests, "pull_requests"),
        "pull_request_lead_times": schemas.conform(lead_times, LEAD_TIMES_TABLE),
    }
    if not refs.is_empty() or frame.select(pl.col("flagReferences").is_not_null().any()).item():
        # The listing expanded flag references: they replace the pull requests' old ones.
        tables["pull_request_flag_references"] = schemas.conform(
            refs, "pull_request_flag_references"
        )
    return tables


FAMILY = Family(
    "teams",
    (APPLICATIONS_TABLE, TEAMS_TABLE, GROUPS_TABLE, SCORES_TABLE, LEAD_TIMES_TABLE),
    {
        Stream.APPLICATIONS: normalize_applications,
        Stream.TEAMS: normalize_teams,
        Stream.INSIGHT_GROUPS: normalize_groups,
        Stream.INSIGHT_SCORES: normalize_scores,
        Stream.PULL_REQUESTS: normalize_pull_requests,
    },
)
