"""Explicit Polars dtypes: what the API sends (input) and what each warehouse table holds.

Input dtypes follow `ld-api.md` (LaunchDarkly's own models). Free-form objects (`metadata`,
`Phase.configuration`, `_access`) are not decoded into columns; they stay in `_raw`.
Output schemas must equal the DDL in `sql/migrations` (a test compares them). The tables of
the first streams are declared here; a later stream family declares its own in its module, and
`normalize/registry.py` gathers them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from etl.config import Stream


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """How one stream's records are decoded and checked.

    Attributes:
        stream: name used in messages (`deployments`, …).
        dtype: the record's explicit Polars dtype (fields outside it stay in `_raw`).
        known: every top-level field we expect; others are reported once per run.
        required: fields the API marks required; a record without one is rejected by name.
        id_field: the field that names a record in error messages.
        context: scope columns added beside the record (`project_key`, …).
    """

    stream: str
    dtype: pl.Struct
    known: frozenset[str]
    required: tuple[str, ...]
    id_field: str
    context: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """One warehouse table: its columns (must equal the DDL) and how the merge treats it.

    Attributes:
        name: the table's name in the warehouse.
        columns: the columns in DDL order, with their Polars dtypes.
        key: the upsert identity (declared in the DDL as a `-- key: (…)` comment).
        parent: the table whose rows own these (a deployment's pull-request links): a batch
            holding a parent row replaces all its children, joined on the parent's key.
        swept_by: the stream whose completed listing soft-deletes the rows of its scope that
            the run did not see (the table then has `_deleted_at`).
        deleted_with: the table whose soft-deleted rows soft-delete these too, joined on
            that table's key (the environments of a deleted project).
    """

    name: str
    columns: Mapping[str, pl.DataType]
    key: tuple[str, ...]
    parent: str | None = None
    swept_by: Stream | None = None
    deleted_with: str | None = None


S = pl.String()
I = pl.Int64()  # noqa: E741 - one-letter aliases keep the schema tables readable
B = pl.Boolean()
TS = pl.Datetime("us", "UTC")
STRS = pl.List(S)

# ---- input: LaunchDarkly representations ---------------------------------------------------

FLAG_REFERENCE = pl.Struct(
    {"projectKey": S, "flagKey": S, "referencesAdded": I, "referencesRemoved": I}
)
FLAG_REFERENCES = pl.Struct({"totalCount": I, "items": pl.List(FLAG_REFERENCE)})

PULL_REQUEST = pl.Struct(
    {
        "id": S,
        "externalId": S,
        "title": S,
        "status": S,
        "author": S,
        "createTime": I,
        "mergeTime": I,
        "mergeCommitKey": S,
        "baseCommitKey": S,
        "headCommitKey": S,
        "filesChanged": I,
        "linesAdded": I,
        "linesDeleted": I,
        "url": S,
        "flagReferences": FLAG_REFERENCES,
    }
)
PULL_REQUEST_KNOWN = {*PULL_REQUEST.to_schema(), "deployments", "leadTime"}

LEAD_TIME_STAGES = pl.Struct(
    {
        "codingDurationMs": I,
        "reviewDurationMs": I,
        "waitDurationMs": I,
        "deployDurationMs": I,
        "totalLeadTimeMs": I,
    }
)

DEPLOYMENT = pl.Struct(
    {
        "id": S,
        "applicationKey": S,
        "applicationVersion": S,
        "startedAt": I,
        "endedAt": I,
        "durationMs": I,
        "status": S,
        "kind": S,
        "active": B,
        "archived": B,
        "environmentKey": S,
        "numberOfContributors": I,
        "numberOfPullRequests": I,
        "linesAdded": I,
        "linesDeleted": I,
        "leadTime": I,
        "pullRequests": pl.Struct({"totalCount": I, "items": pl.List(PULL_REQUEST)}),
        "flagReferences": FLAG_REFERENCES,
        "leadTimeStages": LEAD_TIME_STAGES,
    }
)
DEPLOYMENTS = RecordSpec(
    "deployments",
    DEPLOYMENT,
    frozenset({*DEPLOYMENT.to_schema(), "metadata"}),
    (
        "id", "applicationKey", "applicationVersion", "startedAt", "status", "kind", "active",
        "archived", "environmentKey", "numberOfContributors", "numberOfPullRequests",
        "linesAdded", "linesDeleted", "leadTime",
    ),
    "id",
    ("project_key",),
)  # fmt: skip
PULL_REQUEST_REQUIRED = [
    "id", "externalId", "title", "status", "author", "createTime", "baseCommitKey",
    "headCommitKey", "filesChanged", "linesAdded", "linesDeleted", "url",
]  # fmt: skip

PROJECT = pl.Struct(
    {
        "_id": S,
        "key": S,
        "name": S,
        "tags": STRS,
        "includeInSnippetByDefault": B,
        "defaultReleasePipelineKey": S,
    }
)
PROJECTS = RecordSpec(
    "projects",
    PROJECT,
    frozenset({*PROJECT.to_schema(), "_links", "_access", "defaultClientSideAvailability",
               "environments"}),
    ("_id", "key", "name"),
    "key",
    (),
)  # fmt: skip

ENVIRONMENT = pl.Struct(
    {
        "_id": S,
        "key": S,
        "name": S,
        "color": S,
        "tags": STRS,
        "critical": B,
        "defaultTtl": I,
        "secureMode": B,
        "defaultTrackEvents": B,
        "requireComments": B,
        "confirmChanges": B,
    }
)
ENVIRONMENTS = RecordSpec(
    "environments",
    ENVIRONMENT,
    frozenset({*ENVIRONMENT.to_schema(), "_links", "_access", "apiKey", "mobileKey",
               "approvalSettings", "resourceApprovalSettings"}),
    ("_id", "key", "name"),
    "key",
    ("project_key",),
)  # fmt: skip
# SDK and mobile keys are secrets of the customer's apps: never stored, not even in _raw.
ENVIRONMENT_SECRET_FIELDS = ("apiKey", "mobileKey")

AUDIENCE = pl.Struct(
    {
        "name": S,
        "environment": pl.Struct({"key": S, "name": S, "color": S}),
        "configuration": pl.Struct(
            {
                "releaseStrategy": S,
                "requireApproval": B,
                "notifyMemberIds": STRS,
                "notifyTeamKeys": STRS,
                "releaseGuardianConfiguration": pl.Struct(
                    {
                        "monitoringWindowMilliseconds": I,
                        "rolloutWeight": I,
                        "rollbackOnRegression": B,
                        "randomizationUnit": S,
                    }
                ),
            }
        ),
        "segmentKeys": STRS,
    }
)
PHASE = pl.Struct({"id": S, "name": S, "audiences": pl.List(AUDIENCE)})
RELEASE_PIPELINE = pl.Struct(
    {
        "key": S,
        "name": S,
        "description": S,
        "createdAt": S,
        "tags": STRS,
        "_version": I,
        "isProjectDefault": B,
        "_isLegacy": B,
        "phases": pl.List(PHASE),
    }
)
RELEASE_PIPELINES = RecordSpec(
    "release_pipelines",
    RELEASE_PIPELINE,
    frozenset({*RELEASE_PIPELINE.to_schema(), "_access"}),
    ("key", "name", "createdAt", "phases"),
    "key",
    ("project_key",),
)

RELEASE_PROGRESSION = pl.Struct(
    {
        "flagKey": S,
        "_createdAt": I,
        "_completedAt": I,
        "activePhaseId": S,
        "activePhaseStatus": S,
    }
)
RELEASE_PROGRESSIONS = RecordSpec(
    "release_progressions",
    RELEASE_PROGRESSION,
    frozenset({*RELEASE_PROGRESSION.to_schema(), "_links"}),
    ("flagKey", "_createdAt"),
    "flagKey",
    ("project_key", "pipeline_key"),
)

POLICY_STAGE = pl.Struct({"allocation": I, "durationMillis": I})
RELEASE_POLICY = pl.Struct(
    {
        "_id": S,
        "key": S,
        "name": S,
        "rank": I,
        "releaseMethod": S,
        "scope": pl.Struct({"environmentKeys": STRS, "flagTagKeys": STRS}),
        "guardedReleaseConfig": pl.Struct(
            {
                "rolloutContextKindKey": S,
                "minSampleSize": I,
                "rollbackOnRegression": B,
                "metricKeys": STRS,
                "metricGroupKeys": STRS,
                "stages": pl.List(POLICY_STAGE),
            }
        ),
        "progressiveReleaseConfig": pl.Struct(
            {"rolloutContextKindKey": S, "stages": pl.List(POLICY_STAGE)}
        ),
    }
)
RELEASE_POLICIES = RecordSpec(
    "release_policies",
    RELEASE_POLICY,
    frozenset({*RELEASE_POLICY.to_schema(), "_access"}),
    ("_id", "key", "name", "rank", "releaseMethod"),
    "_id",
    ("project_key",),
)

# ---- output: warehouse tables -------------------------------------------------------------

LOADED: dict[str, pl.DataType] = {"_raw": S, "_run_id": S, "_loaded_at": TS}
SOFT_DELETED: dict[str, pl.DataType] = {**LOADED, "_deleted_at": TS}

# Every table of the stream families declared here (`normalize/registry.py` gathers these
# with the families' own). Keys are the upsert identity of every table (must match the DDL).
CORE_TABLES: tuple[Table, ...] = (
    Table(
        "projects",
        {
            "project_key": S, "project_id": S, "name": S, "tags": STRS,
            "include_in_snippet_by_default": B, "default_release_pipeline_key": S, **SOFT_DELETED,
        },
        ("project_key",),
        swept_by=Stream.PROJECTS,
    ),
    Table(
        "environments",
        {
            "project_key": S, "environment_key": S, "environment_id": S, "name": S, "color": S,
            "tags": STRS, "critical": B, "default_ttl": I, "secure_mode": B,
            "default_track_events": B, "require_comments": B, "confirm_changes": B, **SOFT_DELETED,
        },
        ("project_key", "environment_key"),
        swept_by=Stream.ENVIRONMENTS,
        deleted_with="projects",
    ),
    Table(
        "deployments",
        {
            "deployment_id": S, "project_key": S, "environment_key": S, "application_key": S,
            "application_version": S, "started_at": TS, "ended_at": TS, "duration_ms": I,
            "status": S, "kind": S, "active": B, "archived": B, "metadata": S,
            "number_of_contributors": I, "number_of_pull_requests": I, "lines_added": I,
            "lines_deleted": I, "lead_time_ms": I, "coding_duration_ms": I, "review_duration_ms": I,
            "wait_duration_ms": I, "deploy_duration_ms": I, "total_lead_time_ms": I, **LOADED,
        },
        ("deployment_id",),
    ),
    Table(
        "pull_requests",
        {
            "pull_request_id": S, "external_id": S, "title": S, "status": S, "author": S,
            "created_at": TS, "merged_at": TS, "merge_commit_key": S, "base_commit_key": S,
            "head_commit_key": S, "files_changed": I, "lines_added": I, "lines_deleted": I,
            "url": S, **LOADED, "project_key": S,
        },
        ("pull_request_id",),
    ),
    Table(
        "deployment_pull_requests",
        {"deployment_id": S, "pull_request_id": S, "_run_id": S},
        ("deployment_id", "pull_request_id"),
        parent="deployments",
    ),
    Table(
        "deployment_flag_references",
        {
            "deployment_id": S, "project_key": S, "flag_key": S, "references_added": I,
            "references_removed": I, "_run_id": S,
        },
        ("deployment_id", "project_key", "flag_key"),
        parent="deployments",
    ),
    Table(
        "pull_request_flag_references",
        {
            "pull_request_id": S, "project_key": S, "flag_key": S, "references_added": I,
            "references_removed": I, "_run_id": S,
        },
        ("pull_request_id", "project_key", "flag_key"),
        parent="pull_requests",
    ),
    Table(
        "release_pipelines",
        {
            "project_key": S, "pipeline_key": S, "name": S, "description": S, "created_at": TS,
            "tags": STRS, "version": I, "is_project_default": B, "is_legacy": B, "phase_count": I,
            **SOFT_DELETED,
        },
        ("project_key", "pipeline_key"),
        swept_by=Stream.RELEASE_PIPELINES,
    ),
    Table(
        "release_pipeline_phases",
        {
            "project_key": S, "pipeline_key": S, "phase_id": S, "phase_index": I, "name": S,
            "environment_keys": STRS, "audiences": S, "_run_id": S,
        },
        ("project_key", "pipeline_key", "phase_id"),
        parent="release_pipelines",
    ),
    Table(
        "release_progressions",
        {
            "project_key": S, "pipeline_key": S, "flag_key": S, "created_at": TS,
            "completed_at": TS, "status": S, "active_phase_id": S, "active_phase_name": S,
            "active_phase_status": S, **SOFT_DELETED,
        },
        ("project_key", "pipeline_key", "flag_key", "created_at"),
        swept_by=Stream.RELEASE_PROGRESSIONS,
        deleted_with="release_pipelines",
    ),
    Table(
        "release_progression_snapshots",
        {
            "run_id": S, "project_key": S, "pipeline_key": S, "flag_key": S, "created_at": TS,
            "observed_at": TS, "status": S, "active_phase_id": S, "active_phase_name": S,
            "completed_at": TS,
        },
        (
            "run_id", "project_key", "pipeline_key", "flag_key", "created_at",
    ),
    ),
    Table(
        "release_policies",
        {
            "project_key": S, "policy_id": S, "policy_key": S, "name": S, "rank": I,
            "release_method": S, "scope_environment_keys": STRS, "scope_flag_tag_keys": STRS,
            "rollout_context_kind_key": S, "min_sample_size": I, "rollback_on_regression": B,
            "metric_keys": STRS, "metric_group_keys": STRS,
            "stages": pl.List(pl.Struct({"allocation": I, "duration_ms": I})), **SOFT_DELETED,
        },
        ("project_key", "policy_id"),
        swept_by=Stream.RELEASE_POLICIES,
    ),
    Table(
        "rejected_records",
        {
            "run_id": S, "stream": S, "record_hash": S, "scope": S, "error": S, "_raw": S,
            "rejected_at": TS,
        },
        ("run_id", "stream", "record_hash"),
    ),
)  # fmt: skip


# The core tables' columns by name, for their normalizers (`conform(frame, "deployments")`).
TABLE_COLUMNS: dict[str, Mapping[str, pl.DataType]] = {t.name: t.columns for t in CORE_TABLES}


def conform(frame: pl.DataFrame, table: str | Table) -> pl.DataFrame:
    """Select exactly the table's columns, in order, cast to its dtypes (raises if missing)."""
    schema = table.columns if isinstance(table, Table) else TABLE_COLUMNS[table]
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
