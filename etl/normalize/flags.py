"""Flags (+ their per-environment state), flag statuses (+ a row per run) and flag events.

Example flag (summary form, trimmed)::

    {"key": "dark-mode", "name": "Dark mode", "kind": "boolean", "temporary": true,
     "archived": false, "deprecated": false, "creationDate": 1717600000000, "tags": [],
     "maintainerId": "569f…", "maintainerTeamKey": "web",
     "environments": {"production": {"on": true, "archived": false,
                                     "lastModified": 1717700000000, "version": 4, …}}}

A flag's `environments` is a map keyed by environment key, which no fixed dtype can decode:
its entries are read in Python (a project has hundreds of flags, not a deployment's
millions). A flag status names no flag: the key is the last segment of its `parent` link
(`/api/v2/flags/{projectKey}/{flagKey}`), else of its `self` link.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import polars as pl

from etl.config import Stream
from etl.errors import DataError
from etl.normalize.family import Family
from etl.normalize.frame import Batch, decode_units, utc_ms
from etl.normalize.schemas import (
    LOADED,
    SOFT_DELETED,
    STRS,
    TS,
    B,
    I,
    RecordSpec,
    S,
    Table,
    conform,
)
from etl.records import Fetched

F = pl.Float64()

# ---- input: LaunchDarkly representations ---------------------------------------------------

FLAG = pl.Struct(
    {
        "key": S,
        "name": S,
        "kind": S,
        "description": S,
        "_version": I,
        "creationDate": I,
        "temporary": B,
        "archived": B,
        "archivedDate": I,
        "deprecated": B,
        "deprecatedDate": I,
        "tags": STRS,
        "maintainerId": S,
        "_maintainer": pl.Struct({"_id": S}),
        "maintainerTeamKey": S,
        "_maintainerTeam": pl.Struct({"key": S, "name": S}),
    }
)
FLAGS_SPEC = RecordSpec(
    "flags",
    FLAG,
    frozenset({*FLAG.to_schema(), "includeInSnippet", "clientSideAvailability", "variations",
               "_links", "goalIds", "experiments", "customProperties", "defaults", "_purpose",
               "migrationSettings", "environments"}),
    ("key", "name", "kind", "_version", "creationDate", "temporary", "archived", "tags"),
    "key",
    ("project_key",),
)  # fmt: skip

FLAG_STATUS = pl.Struct(
    {
        "name": S,
        "lastRequested": S,
        "_links": pl.Struct({"parent": pl.Struct({"href": S}), "self": pl.Struct({"href": S})}),
    }
)
FLAG_STATUSES_SPEC = RecordSpec(
    "flag_statuses",
    FLAG_STATUS,
    frozenset({*FLAG_STATUS.to_schema(), "default"}),
    ("name", "_links"),
    "name",
    ("project_key", "environment_key"),
)

EXPERIMENT = pl.Struct(
    {
        "key": S,
        "name": S,
        "iteration": pl.Struct({"id": S, "status": S, "startedAt": I, "endedAt": I}),
    }
)
FLAG_EVENT = pl.Struct(
    {
        "id": S,
        "projectId": S,
        "projectKey": S,
        "environmentId": S,
        "environmentKey": S,
        "flagKey": S,
        "eventType": S,
        "eventTime": I,
        "description": S,
        "auditLogEntryId": S,
        "member": pl.Struct({"id": S}),
        "impact": pl.Struct({"size": S, "percentage": F, "reason": S}),
        "experiments": pl.Struct({"totalCount": I, "items": pl.List(EXPERIMENT)}),
    }
)
FLAG_EVENTS_SPEC = RecordSpec(
    "flag_events",
    FLAG_EVENT,
    frozenset({*FLAG_EVENT.to_schema(), "actions"}),
    ("id", "projectId", "projectKey", "flagKey", "eventType", "eventTime", "description", "impact"),
    "id",
    ("project_key", "environment_key"),
)

# ---- output: warehouse tables -------------------------------------------------------------

FLAGS = Table(
    "flags",
    {
        "project_key": S, "flag_key": S, "name": S, "kind": S, "description": S,
        "temporary": B, "archived": B, "archived_at": TS, "deprecated": B, "deprecated_at": TS,
        "creation_date": TS, "maintainer_id": S, "maintainer_team_key": S,
        "maintainer_team_name": S, "tags": STRS, "version": I, **SOFT_DELETED,
    },
    ("project_key", "flag_key"),
    swept_by=Stream.FLAGS,
)  # fmt: skip
FLAG_ENVIRONMENTS = Table(
    "flag_environments",
    {
        "project_key": S, "flag_key": S, "environment_key": S, "is_on": B, "archived": B,
        "last_modified": TS, "version": I, "_run_id": S,
    },
    ("project_key", "flag_key", "environment_key"),
    parent="flags",
)  # fmt: skip
FLAG_STATUSES = Table(
    "flag_statuses",
    {
        "project_key": S, "environment_key": S, "flag_key": S, "status": S,
        "last_requested": TS, **SOFT_DELETED,
    },
    ("project_key", "environment_key", "flag_key"),
    swept_by=Stream.FLAG_STATUSES,
)  # fmt: skip
FLAG_STATUS_HISTORY = Table(
    "flag_status_history",
    {
        "run_id": S, "observed_at": TS, "project_key": S, "environment_key": S, "flag_key": S,
        "status": S, "last_requested": TS,
    },
    ("run_id", "project_key", "environment_key", "flag_key"),
)  # fmt: skip
FLAG_EVENTS = Table(
    "flag_events",
    {
        "event_id": S, "project_key": S, "environment_key": S, "flag_key": S, "event_type": S,
        "event_time": TS, "description": S, "impact_size": S, "impact_percentage": F,
        "impact_reason": S, "audit_log_entry_id": S, "member_id": S, "project_id": S,
        "environment_id": S, **LOADED,
    },
    ("event_id",),
)  # fmt: skip
FLAG_EVENT_EXPERIMENTS = Table(
    "flag_event_experiments",
    {
        "event_id": S, "experiment_key": S, "experiment_name": S, "iteration_id": S,
        "iteration_status": S, "iteration_started_at": TS, "iteration_ended_at": TS,
        "_run_id": S,
    },
    ("event_id", "experiment_key"),
    parent="flag_events",
)  # fmt: skip

# ---- normalizers ---------------------------------------------------------------------------


def normalize_flags(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Flags, and each flag's state in every environment its `environments` map holds."""
    frame = decode_units(units, batch, FLAGS_SPEC).unique(
        ["project_key", "key"], keep="last", maintain_order=True
    )
    _require_array(frame, "tags")
    flags = frame.select(
        "project_key",
        pl.col("key").alias("flag_key"),
        "name",
        "kind",
        "description",
        "temporary",
        "archived",
        utc_ms("archivedDate").alias("archived_at"),
        pl.col("deprecated").fill_null(False),
        utc_ms("deprecatedDate").alias("deprecated_at"),
        utc_ms("creationDate").alias("creation_date"),
        pl.coalesce("maintainerId", pl.col("_maintainer").struct.field("_id")).alias(
            "maintainer_id"
        ),
        pl.coalesce("maintainerTeamKey", pl.col("_maintainerTeam").struct.field("key")).alias(
            "maintainer_team_key"
        ),
        pl.col("_maintainerTeam").struct.field("name").alias("maintainer_team_name"),
        "tags",
        pl.col("_version").alias("version"),
        "_raw",
        "_run_id",
        "_loaded_at",
        pl.lit(None).alias("_deleted_at"),
    )
    environments = _flag_environments(frame, batch)
    return {
        "flags": conform(flags, FLAGS),
        "flag_environments": conform(environments, FLAG_ENVIRONMENTS),
    }


_ENVIRONMENT_FIELDS: dict[str, type] = {
    "on": bool,
    "archived": bool,
    "lastModified": int,
    "version": int,
}


def _is(value: Any, kind: type) -> bool:
    """Whether a JSON value is of `kind` (a boolean is not an integer here)."""
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _flag_environments(frame: pl.DataFrame, batch: Batch) -> pl.DataFrame:
    """One row per (flag, environment) of the flags' `environments` maps.

    Raises:
        DataError: an entry that is not an object, or a field of the wrong type (named).
    """
    rows: list[tuple[Any, ...]] = []
    for project_key, flag_key, raw in frame.select("project_key", "key", "_raw").iter_rows():
        environments = orjson.loads(raw).get("environments")
        if environments is None:
            continue
        if not isinstance(environments, dict):
            raise DataError(f"flags: record {flag_key!r}: field environments: expected an object")
        for environment_key, config in environments.items():
            if not isinstance(config, dict):
                raise DataError(
                    f"flags: record {flag_key!r}: field environments.{environment_key}: "
                    "expected an object"
                )
            for name, kind in _ENVIRONMENT_FIELDS.items():
                value = config.get(name)
                if value is not None and not _is(value, kind):
                    raise DataError(
                        f"flags: record {flag_key!r}: field environments.{environment_key}."
                        f"{name}: expected {kind.__name__}, got {type(value).__name__}"
                    )
            rows.append(
                (project_key, flag_key, environment_key, config.get("on"),
                 config.get("archived"), config.get("lastModified"), config.get("version"))
            )  # fmt: skip
    schema = {"project_key": S, "flag_key": S, "environment_key": S, "is_on": B,
              "archived": B, "last_modified_ms": I, "version": I}  # fmt: skip
    environments_frame = pl.DataFrame(rows, schema=schema, orient="row")
    return environments_frame.with_columns(
        utc_ms("last_modified_ms").alias("last_modified"),
        pl.lit(batch.run_id, dtype=S).alias("_run_id"),
    )


def _require_array(frame: pl.DataFrame, field: str) -> None:
    """Raise a DataError naming the first flag whose `field` is not an array.

    Polars decodes a scalar given for a list as a list of one (`"tags": "x"` → `["x"]`);
    the raw value is checked instead.
    """
    raw = pl.col("_raw").str.json_path_match(f"$.{field}")
    wrong = frame.filter(raw.is_not_null() & ~raw.str.starts_with("["))
    if wrong.height:
        raise DataError(
            f"flags: record {wrong['key'][0]!r}: field {field}: expected an array, "
            f"got {wrong.select(raw)[0, 0]!r:.40}"
        )


def _last_segment(column: pl.Expr) -> pl.Expr:
    return column.str.split("/").list.last()


def normalize_flag_statuses(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Each flag's status in one environment now, and the same as this run's history row."""
    frame = decode_units(units, batch, FLAG_STATUSES_SPEC)
    links = pl.col("_links").struct
    frame = frame.with_columns(
        _last_segment(
            pl.coalesce(links.field("parent").struct.field("href"),
                        links.field("self").struct.field("href"))
        ).alias("flag_key")
    )  # fmt: skip
    missing = frame.filter(pl.col("flag_key").is_null() | (pl.col("flag_key") == ""))
    if missing.height:
        raise DataError(
            f"flag_statuses: record {missing['name'][0]!r} in "
            f"{missing['project_key'][0]}/{missing['environment_key'][0]}: no flag key in "
            "_links.parent or _links.self"
        )
    last_requested = (
        pl.col("lastRequested")
        .str.replace(" ", "T", literal=True)
        .str.replace(r"Z$", "+00:00")
        .str.to_datetime(format="%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", time_unit="us")
    )
    statuses = frame.select(
        "project_key",
        "environment_key",
        "flag_key",
        pl.col("name").alias("status"),
        last_requested.alias("last_requested"),
        "_raw",
        "_run_id",
        "_loaded_at",
        pl.lit(None).alias("_deleted_at"),
    ).unique(["project_key", "environment_key", "flag_key"], keep="last", maintain_order=True)
    history = statuses.select(
        pl.col("_run_id").alias("run_id"),
        pl.col("_loaded_at").alias("observed_at"),
        "project_key",
        "environment_key",
        "flag_key",
        "status",
        "last_requested",
    )
    return {
        "flag_statuses": conform(statuses, FLAG_STATUSES),
        "flag_status_history": conform(history, FLAG_STATUS_HISTORY),
    }


def normalize_flag_events(units: Sequence[Fetched], batch: Batch) -> dict[str, pl.DataFrame]:
    """Flag events, and the experiments each one is tied to (with `expand=experiments`)."""
    frame = decode_units(units, batch, FLAG_EVENTS_SPEC).unique(
        ["id"], keep="last", maintain_order=True
    )
    impact = pl.col("impact").struct
    events = frame.select(
        pl.col("id").alias("event_id"),
        "project_key",
        pl.coalesce("environmentKey", "environment_key").alias("environment_key"),
        pl.col("flagKey").alias("flag_key"),
        pl.col("eventType").alias("event_type"),
        utc_ms("eventTime").alias("event_time"),
        "description",
        impact.field("size").alias("impact_size"),
        impact.field("percentage").alias("impact_percentage"),
        impact.field("reason").alias("impact_reason"),
        pl.col("auditLogEntryId").alias("audit_log_entry_id"),
        pl.col("member").struct.field("id").alias("member_id"),
        pl.col("projectId").alias("project_id"),
        pl.col("environmentId").alias("environment_id"),
        "_raw",
        "_run_id",
        "_loaded_at",
    )
    experiments = (
        frame.select(
            pl.col("id").alias("event_id"),
            pl.col("experiments").struct.field("items").alias("_experiment"),
            "_run_id",
        )
        .explode("_experiment", empty_as_null=False, keep_nulls=False)
        .unnest("_experiment")
        .with_columns(
            pl.col("iteration").struct.field("startedAt").alias("_started"),
            pl.col("iteration").struct.field("endedAt").alias("_ended"),
        )
        .select(
            "event_id",
            pl.col("key").alias("experiment_key"),
            pl.col("name").alias("experiment_name"),
            pl.col("iteration").struct.field("id").alias("iteration_id"),
            pl.col("iteration").struct.field("status").alias("iteration_status"),
            utc_ms("_started").alias("iteration_started_at"),
            utc_ms("_ended").alias("iteration_ended_at"),
            "_run_id",
        )
        # An experiment without a key cannot be told apart (it stays in the event's `_raw`).
        .filter(pl.col("experiment_key").is_not_null())
        .unique(["event_id", "experiment_key"], keep="last", maintain_order=True)
    )
    return {
        "flag_events": conform(events, FLAG_EVENTS),
        "flag_event_experiments": conform(experiments, FLAG_EVENT_EXPERIMENTS),
    }


FAMILY = Family(
    "flags",
    (FLAGS, FLAG_ENVIRONMENTS, FLAG_STATUSES, FLAG_STATUS_HISTORY, FLAG_EVENTS,
     FLAG_EVENT_EXPERIMENTS),
    {
        Stream.FLAGS: normalize_flags,
        Stream.FLAG_STATUSES: normalize_flag_statuses,
        Stream.FLAG_EVENTS: normalize_flag_events,
    },
)  # fmt: skip
