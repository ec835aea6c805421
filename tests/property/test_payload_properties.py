"""Property-based: any payload LaunchDarkly's schemas allow normalizes, and round-trips every
modelled field; a record that does not fit is named (record and field) and the rest loads.

The fast run draws `FAST` examples per schema; the `slow` run draws `SLOW` (≥ 1,000).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.config import Stream
from etl.errors import DataError
from etl.normalize import NORMALIZERS, Batch, UnknownFields, teams
from etl.normalize import flags as flag_spec
from etl.normalize import schemas as spec
from etl.normalize.rejects import find_rejects, without
from etl.rawjson import encode
from etl.records import Fetched
from tests.property.openapi import payloads

FAST, SLOW = 40, 1_000
CONTEXT = {"project_key": "p", "environment_key": "e", "pipeline_key": "pl"}

# stream → (OpenAPI schema, our RecordSpec, the fields that make a record's identity)
STREAMS: dict[Stream, tuple[str, spec.RecordSpec, tuple[str, ...]]] = {
    Stream.PROJECTS: ("Project", spec.PROJECTS, ("key",)),
    Stream.ENVIRONMENTS: ("Environment", spec.ENVIRONMENTS, ("key",)),
    Stream.DEPLOYMENTS: ("DeploymentRep", spec.DEPLOYMENTS, ("id",)),
    Stream.RELEASE_PIPELINES: ("ReleasePipeline", spec.RELEASE_PIPELINES, ("key",)),
    Stream.RELEASE_PROGRESSIONS: ("ReleaseProgression", spec.RELEASE_PROGRESSIONS, ("flagKey",)),
    Stream.RELEASE_POLICIES: ("ReleasePolicy", spec.RELEASE_POLICIES, ("_id",)),
    Stream.FLAGS: ("FeatureFlag", flag_spec.FLAGS_SPEC, ("key",)),
    Stream.FLAG_STATUSES: ("FlagStatusRep", flag_spec.FLAG_STATUSES_SPEC, ()),
    Stream.FLAG_EVENTS: ("FlagEventRep", flag_spec.FLAG_EVENTS_SPEC, ("id",)),
    Stream.APPLICATIONS: ("ApplicationRep", teams.APPLICATIONS, ("key",)),
    Stream.TEAMS: ("Team", teams.TEAMS, ("key",)),
    Stream.INSIGHT_GROUPS: ("InsightGroup", teams.INSIGHT_GROUPS, ("key",)),
    Stream.INSIGHT_SCORES: ("InsightScores", teams.SCORES, ()),
    Stream.PULL_REQUESTS: ("PullRequestRep", teams.PULL_REQUESTS, ("id",)),
}


def _stored_raw(stream: Stream, record: dict[str, Any]) -> dict[str, Any]:
    """What `_raw` keeps of a record: no secrets, no people, no pull-request expansions."""
    record = {k: v for k, v in record.items() if k != "_flag"}  # the test's own name
    if stream is Stream.ENVIRONMENTS:
        return {k: v for k, v in record.items() if k not in spec.ENVIRONMENT_SECRET_FIELDS}
    if stream is Stream.TEAMS:
        return {k: v for k, v in record.items() if k not in teams.TEAM_PEOPLE_FIELDS}
    if stream is Stream.PULL_REQUESTS:
        return {k: v for k, v in record.items() if k not in teams.EXPANSIONS}
    maintainer = record.get("_maintainer")
    member = maintainer.get("member") if isinstance(maintainer, dict) else None
    if stream is Stream.APPLICATIONS and isinstance(maintainer, dict) and isinstance(member, dict):
        return {**record, "_maintainer": {**maintainer, "member": {"_id": member.get("_id")}}}
    return record


def _score_rows(records: list[dict[str, Any]], group: str | None) -> set[tuple[Any, ...]]:
    """One row per metric of a scope; a metric the scope's records repeat is the last one."""
    found: dict[str, tuple[Any, ...]] = {}
    for record in records:
        for metric, value in (record.get("scores") or {}).items():
            if isinstance(value, dict) and value.get("score") is not None:
                found[metric] = (
                    group, metric, value["score"], value["indicator"],
                    value.get("diffVsLastPeriod"),
                )  # fmt: skip
    return set(found.values())


def path(record: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(record, dict):
            return None
        record = record.get(part)
    return record


def iso_ms(text: str | None) -> int | None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return (
        None
        if text is None
        else (datetime.fromisoformat(text) - epoch) // timedelta(milliseconds=1)
    )


def first_of(*paths: str) -> Callable[[Any], Any]:
    def pick(record: Any) -> Any:
        return next((v for p in paths if (v := path(record, p)) is not None), None)

    return pick


# Every modelled field of each stream's main table: column → where it comes from.
FIELDS: dict[Stream, tuple[str, str, dict[str, str | Callable[[Any], Any]]]] = {
    Stream.PROJECTS: ("projects", "key", {
        "project_key": "key", "project_id": "_id", "name": "name", "tags": "tags",
        "include_in_snippet_by_default": "includeInSnippetByDefault",
        "default_release_pipeline_key": "defaultReleasePipelineKey",
    }),
    Stream.ENVIRONMENTS: ("environments", "key", {
        "environment_key": "key", "environment_id": "_id", "name": "name", "color": "color",
        "tags": "tags", "critical": "critical", "default_ttl": "defaultTtl",
        "secure_mode": "secureMode", "default_track_events": "defaultTrackEvents",
        "require_comments": "requireComments", "confirm_changes": "confirmChanges",
    }),
    Stream.DEPLOYMENTS: ("deployments", "id", {
        "deployment_id": "id", "environment_key": "environmentKey",
        "application_key": "applicationKey", "application_version": "applicationVersion",
        "started_at": "startedAt", "ended_at": "endedAt", "duration_ms": "durationMs",
        "status": "status", "kind": "kind", "active": "active", "archived": "archived",
        "number_of_contributors": "numberOfContributors",
        "number_of_pull_requests": "numberOfPullRequests", "lines_added": "linesAdded",
        "lines_deleted": "linesDeleted", "lead_time_ms": "leadTime",
        "coding_duration_ms": "leadTimeStages.codingDurationMs",
        "review_duration_ms": "leadTimeStages.reviewDurationMs",
        "wait_duration_ms": "leadTimeStages.waitDurationMs",
        "deploy_duration_ms": "leadTimeStages.deployDurationMs",
        "total_lead_time_ms": "leadTimeStages.totalLeadTimeMs",
        "metadata": lambda r: None if r.get("metadata") is None else orjson.dumps(r["metadata"]),
    }),
    Stream.RELEASE_PIPELINES: ("release_pipelines", "key", {
        "pipeline_key": "key", "name": "name", "description": "description",
        "created_at": lambda r: iso_ms(r.get("createdAt")), "tags": "tags",
        "version": "_version", "is_project_default": "isProjectDefault",
        "is_legacy": "_isLegacy", "phase_count": lambda r: len(r["phases"]),
    }),
    Stream.RELEASE_PROGRESSIONS: ("release_progressions", "flagKey", {
        "flag_key": "flagKey", "created_at": "_createdAt", "completed_at": "_completedAt",
        "active_phase_id": "activePhaseId", "active_phase_status": "activePhaseStatus",
        "status": lambda r: "active" if r.get("_completedAt") is None else "completed",
    }),
    Stream.APPLICATIONS: ("applications", "key", {
        "application_key": "key", "name": "name", "kind": "kind", "description": "description",
        "creation_date": "creationDate", "auto_added": "autoAdded",
        "maintainer_member_id": "_maintainer.member._id",
        "maintainer_team_key": "_maintainer.team.key",
    }),
    Stream.TEAMS: ("teams", "key", {
        "team_key": "key", "name": "name", "description": "description",
        "creation_date": "_creationDate",
    }),
    Stream.INSIGHT_GROUPS: ("insight_groups", "key", {
        "group_key": "key", "name": "name", "project_key": "projectKey",
        "environment_key": "environmentKey", "created_at": "createdAt",
        "application_keys": "applicationKeys",
    }),
    Stream.PULL_REQUESTS: ("pull_requests", "id", {
        "pull_request_id": "id", "external_id": "externalId", "title": "title",
        "status": "status", "author": "author", "created_at": "createTime",
        "merged_at": "mergeTime", "merge_commit_key": "mergeCommitKey",
        "base_commit_key": "baseCommitKey", "head_commit_key": "headCommitKey",
        "files_changed": "filesChanged", "lines_added": "linesAdded",
        "lines_deleted": "linesDeleted", "url": "url",
    }),
    Stream.RELEASE_POLICIES: ("release_policies", "_id", {
        "policy_id": "_id", "policy_key": "key", "name": "name", "rank": "rank",
        "release_method": "releaseMethod", "scope_environment_keys": "scope.environmentKeys",
        "scope_flag_tag_keys": "scope.flagTagKeys",
        "rollout_context_kind_key": first_of(
            "guardedReleaseConfig.rolloutContextKindKey",
            "progressiveReleaseConfig.rolloutContextKindKey",
        ),
        "min_sample_size": "guardedReleaseConfig.minSampleSize",
        "rollback_on_regression": "guardedReleaseConfig.rollbackOnRegression",
        "metric_keys": "guardedReleaseConfig.metricKeys",
        "metric_group_keys": "guardedReleaseConfig.metricGroupKeys",
        "stages": lambda r: None if (s := first_of(
            "guardedReleaseConfig.stages", "progressiveReleaseConfig.stages")(r)) is None
            else [{"allocation": x.get("allocation"), "duration_ms": x.get("durationMillis")}
                  for x in s],
    }),
    Stream.FLAGS: ("flags", "key", {
        "flag_key": "key", "name": "name", "kind": "kind", "description": "description",
        "temporary": "temporary", "archived": "archived", "archived_at": "archivedDate",
        "deprecated": lambda r: r.get("deprecated") or False,
        "deprecated_at": "deprecatedDate", "creation_date": "creationDate",
        "maintainer_id": first_of("maintainerId", "_maintainer._id"),
        "maintainer_team_key": first_of("maintainerTeamKey", "_maintainerTeam.key"),
        "maintainer_team_name": "_maintainerTeam.name", "tags": "tags", "version": "_version",
    }),
    Stream.FLAG_STATUSES: ("flag_statuses", "_flag", {
        "flag_key": "_flag", "status": "name",
        "last_requested": lambda r: iso_ms(r.get("lastRequested")),
    }),
    Stream.FLAG_EVENTS: ("flag_events", "id", {
        "event_id": "id", "flag_key": "flagKey", "event_type": "eventType",
        "event_time": "eventTime", "description": "description",
        "environment_key": lambda r: "e" if r.get("environmentKey") is None
            else r["environmentKey"],
        "impact_size": "impact.size", "impact_percentage": "impact.percentage",
        "impact_reason": "impact.reason", "audit_log_entry_id": "auditLogEntryId",
        "member_id": "member.id", "project_id": "projectId", "environment_id": "environmentId",
    }),
}  # fmt: skip


def distinct(stream: Stream, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each record (and each embedded pull request) its own identity, as the API does."""
    _, _, identity = STREAMS[stream]
    for i, record in enumerate(records):
        for field in identity:
            record[field] = f"{record[field]}#{i}"
        if stream is Stream.FLAG_STATUSES:  # named only by its parent link's last segment
            links = record.get("_links") or {}
            links["parent"] = {**(links.get("parent") or {}), "href": f"/api/v2/flags/p/f{i}"}
            record["_links"] = links
        for j, pr in enumerate(path(record, "pullRequests.items") or []):
            pr["id"] = f"{pr['id']}#{i}.{j}"
    return records


def batches(stream: Stream, min_size: int = 1) -> st.SearchStrategy[list[dict[str, Any]]]:
    name, record_spec, _ = STREAMS[stream]
    one = payloads(name, record_spec.required)
    return st.lists(one, min_size=min_size, max_size=4).map(lambda rs: distinct(stream, rs))


def normalize(stream: Stream, units: list[Fetched]) -> dict[str, pl.DataFrame]:
    return NORMALIZERS[stream](
        units, Batch("run", datetime(2026, 1, 1, tzinfo=UTC), UnknownFields())
    )


def unit(stream: Stream, records: list[dict[str, Any]]) -> Fetched:
    return Fetched(stream, CONTEXT, [encode(r) for r in records], body={"phases": []})


def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows with every timestamp as epoch milliseconds (far years exceed Python's datetime)."""
    stamps = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)]
    return frame.with_columns(pl.col(stamps).dt.epoch("ms")).to_dicts()


def check_round_trip(stream: Stream, records: list[dict[str, Any]]) -> None:
    frames = normalize(stream, [unit(stream, records)])
    if stream is Stream.INSIGHT_SCORES:  # one scope per unit: a repeated metric, the last
        stored = frames["insight_scores"].select(
            "group_key", "metric", "score", "indicator", "diff_vs_last_period"
        )
        assert set(stored.rows()) == _score_rows(records, None)
        return
    table, id_field, fields = FIELDS[stream]
    by_id = {row[next(iter(fields))]: row for row in rows(frames[table])}
    assert len(by_id) == len(records)
    for i, record in enumerate(records):
        if stream is Stream.FLAG_STATUSES:
            record = {**record, "_flag": f"f{i}"}
        row = by_id[record[id_field]]
        for column, source in fields.items():
            expected = source(record) if callable(source) else path(record, source)
            actual = row[column]
            if column == "metadata" and actual is not None:
                actual = orjson.dumps(orjson.loads(actual))
            assert actual == expected, (column, actual, expected)
        assert orjson.loads(row["_raw"]) == _stored_raw(stream, record)
    if stream is Stream.DEPLOYMENTS:
        prs = {pr["id"]: pr for r in records for pr in path(r, "pullRequests.items") or []}
        assert sorted(frames["pull_requests"]["pull_request_id"]) == sorted(prs)
        for pr_row in rows(frames["pull_requests"]):
            pr = prs[pr_row["pull_request_id"]]
            assert (pr_row["title"], pr_row["created_at"], pr_row["merged_at"], pr_row["url"]) == (
                pr["title"],
                pr["createTime"],
                pr.get("mergeTime"),
                pr["url"],
            )
            assert orjson.loads(pr_row["_raw"]) == pr
        refs = {
            (r["id"], ref.get("projectKey"), ref.get("flagKey"))
            for r in records
            for ref in path(r, "flagReferences.items") or []
        }
        table_refs = frames["deployment_flag_references"]
        assert set(table_refs.select("deployment_id", "project_key", "flag_key").rows()) == refs
    if stream is Stream.INSIGHT_GROUPS:
        scored = frames["insight_scores"].select(
            "group_key", "metric", "score", "indicator", "diff_vs_last_period"
        )
        assert set(scored.rows()) == {
            row for r in records if r.get("scores") for row in _score_rows([r], r["key"])
        }
    if stream is Stream.PULL_REQUESTS:
        coded = {
            r["id"]: path(r, "leadTime.codingDurationMs") for r in records if r.get("leadTime")
        }
        lead = frames["pull_request_lead_times"].select("pull_request_id", "coding_duration_ms")
        assert dict(lead.rows()) == coded
    if stream is Stream.FLAGS:
        environments = {
            (r["key"], e): (c.get("on"), c.get("archived"), c.get("lastModified"), c.get("version"))
            for r in records
            for e, c in (r.get("environments") or {}).items()
        }
        table_environments = rows(frames["flag_environments"])
        assert {
            (x["flag_key"], x["environment_key"]): (
                x["is_on"],
                x["archived"],
                x["last_modified"],
                x["version"],
            )
            for x in table_environments
        } == environments
        assert len(table_environments) == len(environments)
    if stream is Stream.FLAG_STATUSES:
        history = frames["flag_status_history"]
        assert sorted(history["flag_key"]) == sorted(f"f{i}" for i in range(len(records)))
    if stream is Stream.FLAG_EVENTS:
        experiments = {
            (r["id"], x.get("key")): (
                path(x, "iteration.id"), path(x, "iteration.status"),
                path(x, "iteration.startedAt"), path(x, "iteration.endedAt"),
            )
            for r in records
            for x in path(r, "experiments.items") or []
            if x.get("key") is not None
        }  # fmt: skip
        table = rows(frames["flag_event_experiments"])
        assert {
            (x["event_id"], x["experiment_key"]): (
                x["iteration_id"], x["iteration_status"], x["iteration_started_at"],
                x["iteration_ended_at"],
            )
            for x in table
        } == experiments  # fmt: skip
    if stream is Stream.RELEASE_PIPELINES:
        # A phase id listed twice in one pipeline is one phase, where it is first listed.
        phases: dict[tuple[str, str | None], int] = {}
        for r in records:
            for i, p in enumerate(r["phases"]):
                phases.setdefault((r["key"], p.get("id")), i)
        table_phases = frames["release_pipeline_phases"]
        assert table_phases.select("pipeline_key", "phase_id", "phase_index").rows() == [
            (*key, index) for key, index in phases.items()
        ]


@pytest.mark.parametrize("stream", list(STREAMS), ids=lambda s: s.value)
def test_any_payload_the_schema_allows_round_trips(stream: Stream) -> None:
    run_round_trip(stream, FAST)


@pytest.mark.slow
@pytest.mark.parametrize("stream", list(STREAMS), ids=lambda s: s.value)
def test_any_payload_the_schema_allows_round_trips_at_length(stream: Stream) -> None:
    run_round_trip(stream, SLOW)


def run_round_trip(stream: Stream, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batches(stream))
    def holds(records: list[dict[str, Any]]) -> None:
        check_round_trip(stream, records)

    holds()


def wrong_value(dtype: pl.DataType) -> Any:
    """A JSON value that does not fit `dtype`."""
    if dtype == pl.Int64 or dtype == pl.Boolean:
        return "not-a-number" if dtype == pl.Int64 else "yes"
    if dtype == pl.String:
        return {"an": "object"}
    return 12345  # a list or an object given a number


@st.composite
def broken_batches(draw: st.DrawFn, stream: Stream) -> tuple[list[dict[str, Any]], int, str]:
    """A valid batch with one record broken: a required field missing, null or mistyped."""
    records = draw(batches(stream, min_size=2))
    _, record_spec, _ = STREAMS[stream]
    victim = draw(st.integers(0, len(records) - 1))
    field = draw(st.sampled_from([f for f in record_spec.required if f != record_spec.id_field]))
    record = records[victim]
    record[record_spec.id_field] = f"broken-record-{victim}"
    how = draw(st.sampled_from(["missing", "null", "mistyped"]))
    if how == "missing":
        del record[field]
    else:
        record[field] = None if how == "null" else wrong_value(record_spec.dtype.to_schema()[field])
    return records, victim, field


def check_rejected(stream: Stream, records: list[dict[str, Any]], victim: int, field: str) -> None:
    units = [unit(stream, records)]
    with pytest.raises(DataError):
        normalize(stream, units)
    batch = Batch("run", datetime(2026, 1, 1, tzinfo=UTC), UnknownFields())
    rejects = find_rejects(units, NORMALIZERS[stream], batch)
    assert rejects is not None
    assert [(r.unit, r.item) for r in rejects] == [(0, victim)]
    assert f"broken-record-{victim}" in rejects[0].error and field in rejects[0].error
    table, _, _ = FIELDS[stream]
    assert normalize(stream, without(units, rejects))[table].height == len(records) - 1


# A scope's scores are one record per unit (no identity to name a broken one by); a team
# requires nothing but its key.
NAMED = [stream for stream in STREAMS if stream in FIELDS and len(STREAMS[stream][1].required) > 1]


@pytest.mark.parametrize("stream", NAMED, ids=lambda s: s.value)
def test_a_record_that_does_not_fit_is_named_and_the_rest_loads(stream: Stream) -> None:
    run_rejects(stream, FAST)


@pytest.mark.slow
@pytest.mark.parametrize("stream", NAMED, ids=lambda s: s.value)
def test_a_record_that_does_not_fit_is_named_and_the_rest_loads_at_length(stream: Stream) -> None:
    run_rejects(stream, SLOW)


def run_rejects(stream: Stream, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(broken_batches(stream))
    def holds(case: tuple[list[dict[str, Any]], int, str]) -> None:
        check_rejected(stream, *case)

    holds()
