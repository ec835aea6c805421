"""Projects and environments → `projects`, `environments`.

Example environment (trimmed)::

    {"_id": "57be…", "key": "production", "name": "Production", "color": "F5A623",
     "apiKey": "sdk-…", "mobileKey": "mob-…", "tags": [], "critical": true, "defaultTtl": 0, …}

`apiKey` and `mobileKey` are the customer's SDK secrets: they are dropped before anything is
written, `_raw` included.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from etl.normalize import schemas
from etl.normalize.frame import Batch, decode_units
from etl.rawjson import RawRecord, decode, encode
from etl.records import Fetched


def normalize_projects(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Projects, one row each."""
    projects = decode_units(units, batch, schemas.PROJECTS).select(
        pl.col("key").alias("project_key"),
        pl.col("_id").alias("project_id"),
        "name",
        "tags",
        pl.col("includeInSnippetByDefault").alias("include_in_snippet_by_default"),
        pl.col("defaultReleasePipelineKey").alias("default_release_pipeline_key"),
        "_raw",
        "_run_id",
        "_loaded_at",
        pl.lit(None).alias("_deleted_at"),
    )
    return {
        "projects": schemas.conform(
            projects.unique("project_key", keep="last", maintain_order=True), "projects"
        )
    }


def _without_secrets(item: RawRecord) -> RawRecord:
    """The environment without its SDK keys, which must never be written (`_raw` included)."""
    record = decode(item)
    if not isinstance(record, dict):
        return item  # not an object: decoding names it
    secrets = schemas.ENVIRONMENT_SECRET_FIELDS
    return encode({key: value for key, value in record.items() if key not in secrets})


def normalize_environments(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Environments of each project, without their SDK keys."""
    raws = [_without_secrets(item) for unit in units for item in unit.items]
    environments = decode_units(units, batch, schemas.ENVIRONMENTS, raws).select(
        "project_key",
        pl.col("key").alias("environment_key"),
        pl.col("_id").alias("environment_id"),
        "name",
        "color",
        "tags",
        "critical",
        pl.col("defaultTtl").alias("default_ttl"),
        pl.col("secureMode").alias("secure_mode"),
        pl.col("defaultTrackEvents").alias("default_track_events"),
        pl.col("requireComments").alias("require_comments"),
        pl.col("confirmChanges").alias("confirm_changes"),
        "_raw",
        "_run_id",
        "_loaded_at",
        pl.lit(None).alias("_deleted_at"),
    )
    return {
        "environments": schemas.conform(
            environments.unique(
                ["project_key", "environment_key"], keep="last", maintain_order=True
            ),
            "environments",
        )
    }
