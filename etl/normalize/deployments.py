"""Deployments (with `expand=pullRequests,flagReferences`) → six tables.

Example record (trimmed)::

    {"id": "7c9e…", "applicationKey": "billing-service", "startedAt": 1717785000000,
     "status": "finished", "leadTime": 183642000,
     "leadTimeStages": {"codingDurationMs": 86400000, …},
     "pullRequests": {"totalCount": 2, "items": [{"id": "3f1c…", "externalId": "1423", …}]},
     "flagReferences": {"totalCount": 1, "items": [{"projectKey": "default",
                                                    "flagKey": "new-checkout-flow", …}]}}

The same pull request appears under several deployments (staging, then production): it is
written once to `pull_requests` and linked through `deployment_pull_requests`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from etl.normalize import schemas
from etl.normalize.frame import Batch, decode_units, raw_column, require, utc_ms
from etl.rawjson import deployment_parts
from etl.records import Fetched


def _flag_references(frame: pl.DataFrame, owner: str) -> pl.DataFrame:
    """Explode `flagReferences.items` (FlagReferenceRep) into rows keyed by `owner`."""
    return (
        frame.select(
            pl.col(owner), pl.col("flagReferences").struct.field("items").alias("_ref"), "_run_id"
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
    )


def pull_request_columns() -> list[pl.Expr | str]:
    """The `pull_requests` columns from a frame of `PullRequestRep`s.

    Deployments embed pull requests and the Insights listing serves them: the row either
    writes must read the same. The frame holds `_raw`, `_run_id`, `_loaded_at` and
    `project_key` beside the API's fields.
    """
    return [
        pl.col("id").alias("pull_request_id"),
        pl.col("externalId").alias("external_id"),
        "title",
        "status",
        "author",
        utc_ms("createTime").alias("created_at"),
        utc_ms("mergeTime").alias("merged_at"),
        pl.col("mergeCommitKey").alias("merge_commit_key"),
        pl.col("baseCommitKey").alias("base_commit_key"),
        pl.col("headCommitKey").alias("head_commit_key"),
        pl.col("filesChanged").alias("files_changed"),
        pl.col("linesAdded").alias("lines_added"),
        pl.col("linesDeleted").alias("lines_deleted"),
        "url",
        "_raw",
        "_run_id",
        "_loaded_at",
        "project_key",
    ]


def normalize_deployments(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Flatten deployments, their pull requests, links and flag references."""
    frame = decode_units(units, batch, schemas.DEPLOYMENTS)
    parts = deployment_parts(unit.sliced for unit in units)
    pr_items = [pr for page in parts.pull_requests for pr in page.records]
    batch.unknown.note("deployments.pullRequests", pr_items, schemas.PULL_REQUEST_KNOWN)
    stages = pl.col("leadTimeStages").struct
    deployments = frame.select(
        pl.col("id").alias("deployment_id"),
        "project_key",
        pl.col("environmentKey").alias("environment_key"),
        pl.col("applicationKey").alias("application_key"),
        pl.col("applicationVersion").alias("application_version"),
        utc_ms("startedAt").alias("started_at"),
        utc_ms("endedAt").alias("ended_at"),
        pl.col("durationMs").alias("duration_ms"),
        "status",
        "kind",
        "active",
        "archived",
        pl.Series("metadata", parts.metadata, dtype=pl.String),
        pl.col("numberOfContributors").alias("number_of_contributors"),
        pl.col("numberOfPullRequests").alias("number_of_pull_requests"),
        pl.col("linesAdded").alias("lines_added"),
        pl.col("linesDeleted").alias("lines_deleted"),
        pl.col("leadTime").alias("lead_time_ms"),
        stages.field("codingDurationMs").alias("coding_duration_ms"),
        stages.field("reviewDurationMs").alias("review_duration_ms"),
        stages.field("waitDurationMs").alias("wait_duration_ms"),
        stages.field("deployDurationMs").alias("deploy_duration_ms"),
        stages.field("totalLeadTimeMs").alias("total_lead_time_ms"),
        "_raw",
        "_run_id",
        "_loaded_at",
    ).unique("deployment_id", keep="last", maintain_order=True)

    # Pull requests: one row per (deployment, PR), in the same order as `pr_items`.
    frame_prs = (
        frame.select(
            pl.col("id").alias("deployment_id"),
            pl.col("pullRequests").struct.field("items").alias("_pr"),
            "project_key",
            "_run_id",
            "_loaded_at",
        )
        .explode("_pr", empty_as_null=False, keep_nulls=False)
        .unnest("_pr")
    )
    if frame_prs.height == len(pr_items):
        frame_prs = frame_prs.with_columns(raw_column(parts.pull_requests))
    else:  # null list elements: re-encode the PRs from their decoded structs
        frame_prs = frame_prs.with_columns(
            pl.struct(pl.all().exclude("deployment_id", "project_key", "_run_id", "_loaded_at"))
            .struct.json_encode()
            .alias("_raw")
        )
    require(frame_prs, "deployments.pullRequests", "id", schemas.PULL_REQUEST_REQUIRED)
    links = frame_prs.select(
        "deployment_id", pl.col("id").alias("pull_request_id"), "_run_id"
    ).unique(maintain_order=True)
    pull_requests = frame_prs.unique("id", keep="last", maintain_order=True).select(
        pull_request_columns()
    )
    deployment_refs = _flag_references(frame, "id").rename({"id": "deployment_id"})
    pr_refs = _flag_references(
        frame_prs.filter(pl.col("flagReferences").is_not_null()).unique("id", keep="last"), "id"
    ).rename({"id": "pull_request_id"})
    tables = {
        "deployments": schemas.conform(deployments, "deployments"),
        "pull_requests": schemas.conform(pull_requests, "pull_requests"),
        "deployment_pull_requests": schemas.conform(links, "deployment_pull_requests"),
        "deployment_flag_references": schemas.conform(
            deployment_refs.unique(
                ["deployment_id", "project_key", "flag_key"], keep="last", maintain_order=True
            ),
            "deployment_flag_references",
        ),
        "pull_request_flag_references": schemas.conform(
            pr_refs.unique(
                ["pull_request_id", "project_key", "flag_key"], keep="last", maintain_order=True
            ),
            "pull_request_flag_references",
        ),
    }
    if frame_prs.is_empty() or frame_prs["flagReferences"].is_null().all():
        # Pull requests embedded without flag references say nothing about them: an empty
        # child frame would erase, with its parents, those the pull-request listing read
        # (`normalize/teams.py`). An embedded empty list still replaces them.
        del tables["pull_request_flag_references"]
    return tables
