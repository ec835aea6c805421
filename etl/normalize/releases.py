"""Release pipelines (+ phases), release progressions (+ snapshots) and release policies.

Example progression page (trimmed)::

    {"totalCount": 3, "activeCount": 2, "completedCount": 1,
     "items": [{"_createdAt": 1717600000000, "flagKey": "new-checkout-flow",
                "activePhaseId": "65f1…e5f8", "_links": {}}],
     "phases": [{"_id": "65f1…e5f8", "name": "Production", "releaseCount": 1}]}

A progression's phase name comes from the `phases` summary of the page it arrived in.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from etl.normalize import schemas
from etl.normalize.frame import Batch, decode_units, json_list, utc_ms
from etl.records import Fetched


def normalize_pipelines(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Pipelines, and their ordered phases with the environments each phase targets."""
    frame = decode_units(units, batch, schemas.RELEASE_PIPELINES).unique(
        ["project_key", "key"], keep="last", maintain_order=True
    )
    pipelines = frame.select(
        "project_key",
        pl.col("key").alias("pipeline_key"),
        "name",
        "description",
        pl.col("createdAt").str.to_datetime(time_zone="UTC", time_unit="us").alias("created_at"),
        "tags",
        pl.col("_version").alias("version"),
        pl.col("isProjectDefault").alias("is_project_default"),
        pl.col("_isLegacy").alias("is_legacy"),
        pl.col("phases").list.len().alias("phase_count"),
        "_raw",
        "_run_id",
        "_loaded_at",
        pl.lit(None).alias("_deleted_at"),
    )
    phases = (
        frame.select(
            "project_key",
            pl.col("key").alias("pipeline_key"),
            pl.col("phases").alias("_phase"),
            pl.int_ranges(pl.col("phases").list.len()).alias("phase_index"),
            "_run_id",
        )
        .explode(["_phase", "phase_index"], empty_as_null=False, keep_nulls=False)
        .unnest("_phase")
        .select(
            "project_key",
            "pipeline_key",
            pl.col("id").alias("phase_id"),
            "phase_index",
            "name",
            pl.col("audiences")
            .list.eval(pl.element().struct.field("environment").struct.field("key"))
            .list.drop_nulls()
            .alias("environment_keys"),
            json_list(pl.col("audiences")).alias("audiences"),
            "_run_id",
        )
        # A phase id listed twice in one pipeline (LaunchDarkly's own spec example does) is
        # one phase: the first place it is listed.
        .unique(["project_key", "pipeline_key", "phase_id"], keep="first", maintain_order=True)
    )
    return {
        "release_pipelines": schemas.conform(pipelines, "release_pipelines"),
        "release_pipeline_phases": schemas.conform(phases, "release_pipeline_phases"),
    }


def _phase_names(units: Sequence[Fetched]) -> pl.DataFrame:
    rows = [
        (
            unit.context["project_key"],
            unit.context["pipeline_key"],
            phase.get("_id"),
            phase.get("name"),
        )
        for unit in units
        for phase in unit.body.get("phases") or ()
        if isinstance(phase, dict)
    ]
    return pl.DataFrame(
        rows,
        schema={"project_key": pl.String, "pipeline_key": pl.String, "activePhaseId": pl.String,
                "active_phase_name": pl.String},
        orient="row",
    ).unique(["project_key", "pipeline_key", "activePhaseId"], keep="last")  # fmt: skip


def normalize_progressions(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Current progressions, plus this run's snapshot of each (for time-in-phase history)."""
    frame = (
        decode_units(units, batch, schemas.RELEASE_PROGRESSIONS)
        .join(_phase_names(units), on=["project_key", "pipeline_key", "activePhaseId"], how="left")
        .unique(["project_key", "pipeline_key", "flagKey", "_createdAt"], keep="last",
                maintain_order=True)
    )  # fmt: skip
    progressions = frame.select(
        "project_key",
        "pipeline_key",
        pl.col("flagKey").alias("flag_key"),
        utc_ms("_createdAt").alias("created_at"),
        utc_ms("_completedAt").alias("completed_at"),
        pl.when(pl.col("_completedAt").is_not_null())
        .then(pl.lit("completed"))
        .otherwise(pl.lit("active"))
        .alias("status"),
        pl.col("activePhaseId").alias("active_phase_id"),
        "active_phase_name",
        pl.col("activePhaseStatus").alias("active_phase_status"),
        "_raw",
        "_run_id",
        "_loaded_at",
        pl.lit(None).alias("_deleted_at"),
    )
    snapshots = progressions.select(
        pl.col("_run_id").alias("run_id"),
        "project_key",
        "pipeline_key",
        "flag_key",
        "created_at",
        pl.col("_loaded_at").alias("observed_at"),
        "status",
        "active_phase_id",
        "active_phase_name",
        "completed_at",
    )
    return {
        "release_progressions": schemas.conform(progressions, "release_progressions"),
        "release_progression_snapshots": schemas.conform(
            snapshots, "release_progression_snapshots"
        ),
    }


def normalize_policies(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Release policies with their scope arrays and stages kept as typed lists."""
    frame = decode_units(units, batch, schemas.RELEASE_POLICIES)
    guarded = pl.col("guardedReleaseConfig").struct
    progressive = pl.col("progressiveReleaseConfig").struct
    stages = pl.coalesce(guarded.field("stages"), progressive.field("stages"))
    policies = frame.select(
        "project_key",
        pl.col("_id").alias("policy_id"),
        pl.col("key").alias("policy_key"),
        "name",
        "rank",
        pl.col("releaseMethod").alias("release_method"),
        pl.col("scope").struct.field("environmentKeys").alias("scope_environment_keys"),
        pl.col("scope").struct.field("flagTagKeys").alias("scope_flag_tag_keys"),
        pl.coalesce(
            guarded.field("rolloutContextKindKey"), progressive.field("rolloutContextKindKey")
        ).alias("rollout_context_kind_key"),
        guarded.field("minSampleSize").alias("min_sample_size"),
        guarded.field("rollbackOnRegression").alias("rollback_on_regression"),
        guarded.field("metricKeys").alias("metric_keys"),
        guarded.field("metricGroupKeys").alias("metric_group_keys"),
        stages.list.eval(
            pl.struct(
                pl.element().struct.field("allocation"),
                pl.element().struct.field("durationMillis").alias("duration_ms"),
            )
        ).alias("stages"),
        "_raw",
        "_run_id",
        "_loaded_at",
        pl.lit(None).alias("_deleted_at"),
    )
    return {
        "release_policies": schemas.conform(
            policies.unique(["project_key", "policy_id"], keep="last", maintain_order=True),
            "release_policies",
        )
    }
