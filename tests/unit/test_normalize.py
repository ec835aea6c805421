from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from etl.config import Stream
from etl.errors import DataError
from etl.normalize import NORMALIZERS, Batch, UnknownFields
from etl.normalize.frame import raw_column
from etl.normalize.registry import TABLES
from etl.rawjson import Sliced, encode, split_page
from etl.records import Fetched

DATA = Path(__file__).parents[1] / "data"
CTX = {"project_key": "default", "environment_key": "production"}


def raw(items):
    """Records as the client hands them on: their JSON bytes."""
    return [encode(item) for item in items]


def deployments() -> list[dict]:
    pages = ["example-deployments-page1.json", "example-deployments-page2.json"]
    return [item for name in pages for item in json.loads((DATA / name).read_text())["items"]]


def page_unit(items: list[dict]) -> Fetched:
    """One deployments page as the client hands it on: records sliced from an indented body."""
    body = json.dumps({"items": items, "totalCount": len(items)}, indent=2, ensure_ascii=False)
    source = body.encode()
    records, _ = split_page(source)
    assert records is not None
    return Fetched(Stream.DEPLOYMENTS, CTX, records, source=source)


def batch() -> Batch:
    return Batch("run-1", datetime(2026, 11, 23, tzinfo=UTC), UnknownFields())


def normalize_deployments(items: list[dict]) -> dict[str, pl.DataFrame]:
    return NORMALIZERS[Stream.DEPLOYMENTS]([Fetched(Stream.DEPLOYMENTS, CTX, raw(items))], batch())


def test_every_frame_has_exactly_its_table_schema():
    for table, frame in normalize_deployments(deployments()).items():
        assert dict(frame.schema) == TABLES[table], table


def test_pull_request_shared_by_two_deployments_is_written_once_and_linked_twice():
    items = deployments()
    staging = copy.deepcopy(items[0])
    staging["id"] = "staging-copy"
    frames = normalize_deployments([*items, staging])
    shared = items[0]["pullRequests"]["items"][0]["id"]
    assert frames["pull_requests"].filter(pl.col("pull_request_id") == shared).height == 1
    links = frames["deployment_pull_requests"].filter(pl.col("pull_request_id") == shared)
    assert sorted(links["deployment_id"]) == sorted([items[0]["id"], "staging-copy"])


def test_deployment_with_zero_pull_requests_has_no_link_rows():
    item = deployments()[0]
    item["pullRequests"] = {"totalCount": 0, "items": []}
    item["flagReferences"] = {"totalCount": 0, "items": []}
    frames = normalize_deployments([item])
    assert frames["deployments"].height == 1
    assert frames["deployment_pull_requests"].height == 0
    assert frames["deployment_flag_references"].height == 0


def test_unexpanded_deployment_loads_without_children():
    item = deployments()[0]
    del item["pullRequests"], item["flagReferences"]
    frames = normalize_deployments([item])
    assert frames["deployments"].height == 1
    assert frames["pull_requests"].height == 0


def test_milliseconds_become_utc_timestamps_and_stages_become_columns():
    row = normalize_deployments(deployments()[:1])["deployments"].row(0, named=True)
    assert row["started_at"] == datetime(2024, 6, 7, 18, 30, tzinfo=UTC)
    assert row["review_duration_ms"] == 72_000_000
    assert json.loads(row["metadata"]) == {"buildNumber": "5812"}


def test_raw_json_keeps_unknown_fields_and_they_are_reported_once(caplog):
    item = deployments()[0]
    item["riskScore"] = {"value": 3}
    unknown = UnknownFields()
    units = [Fetched(Stream.DEPLOYMENTS, CTX, raw([item]))]
    b = Batch("run-1", datetime.now(UTC), unknown)
    frames = NORMALIZERS[Stream.DEPLOYMENTS](units, b)
    NORMALIZERS[Stream.DEPLOYMENTS](units, b)
    assert json.loads(frames["deployments"]["_raw"][0])["riskScore"] == {"value": 3}
    assert [r.message for r in caplog.records].count(
        "deployments: unknown field 'riskScore' (kept in _raw)"
    ) == 1


def test_missing_required_field_names_record_and_field():
    item = deployments()[0]
    del item["applicationKey"]
    with pytest.raises(DataError, match=r"record '7c9e6679.*'applicationKey' is missing"):
        normalize_deployments([item])


def test_wrong_type_names_record_and_field():
    item = deployments()[1]
    item["linesAdded"] = "twelve"
    with pytest.raises(DataError, match=r"record '1d5a0f3e.*linesAdded: expected an integer"):
        normalize_deployments([item])


def test_wrong_type_nested_in_a_pull_request_names_the_path():
    item = deployments()[0]
    item["pullRequests"]["items"][1]["filesChanged"] = "2"
    with pytest.raises(DataError, match=r"pullRequests\.items\[1\]\.filesChanged"):
        normalize_deployments([item])


def test_progressions_take_phase_names_from_the_page_summary():
    body = json.loads((DATA / "example-releases-page1.json").read_text())
    ctx = {"project_key": "default", "pipeline_key": "standard"}
    frames = NORMALIZERS[Stream.RELEASE_PROGRESSIONS](
        [Fetched(Stream.RELEASE_PROGRESSIONS, ctx, raw(body["items"]), body=body)], batch()
    )
    names = dict(frames["release_progressions"].select("flag_key", "active_phase_name").rows())
    assert names == {"new-checkout-flow": "Production", "dark-mode": "Testing"}
    assert frames["release_progression_snapshots"].height == 2


def test_environment_sdk_keys_are_never_kept():
    env = {
        "_id": "e1", "key": "production", "name": "Production", "color": "F5A623",
        "apiKey": "sdk-SECRET", "mobileKey": "mob-SECRET", "tags": [], "critical": True,
        "defaultTtl": 0, "secureMode": False, "defaultTrackEvents": False,
        "requireComments": False, "confirmChanges": False, "_links": {},
    }  # fmt: skip
    frames = NORMALIZERS[Stream.ENVIRONMENTS](
        [Fetched(Stream.ENVIRONMENTS, {"project_key": "p"}, raw([env]))], batch()
    )
    assert "SECRET" not in str(frames["environments"].rows())


def test_an_unknown_field_of_an_embedded_pull_request_is_reported(caplog):
    item = deployments()[0]
    item["pullRequests"]["items"][1]["reviewers"] = ["ada"]
    normalize_deployments([item])
    assert "deployments.pullRequests: unknown field 'reviewers' (kept in _raw)" in [
        r.message for r in caplog.records
    ]


def test_raw_is_the_exact_text_received_for_deployments_and_pull_requests():
    items = deployments()
    items[0]["pullRequests"]["items"][0]["title"] = 'Käse 🧀 "quoted" \\ back'
    records = raw(items)
    frames = NORMALIZERS[Stream.DEPLOYMENTS]([Fetched(Stream.DEPLOYMENTS, CTX, records)], batch())
    assert list(frames["deployments"]["_raw"]) == [bytes(r).decode() for r in records]
    first_pr = bytes(encode(items[0]["pullRequests"]["items"][0])).decode()
    assert first_pr in list(frames["pull_requests"]["_raw"])


def test_embedded_pull_requests_of_the_wrong_shape_name_the_record():
    items = deployments()
    items[1]["pullRequests"] = "not expanded"
    with pytest.raises(DataError, match=r"record '1d5a0f3e.*pullRequests: expected an object"):
        normalize_deployments(items)


def test_a_field_added_after_another_was_reported_is_reported_too(caplog):
    first, second = deployments()[:2]
    first["riskScore"] = 3
    second.update(riskScore=4, owner="team-a")
    b = batch()
    for item in (first, second):
        NORMALIZERS[Stream.DEPLOYMENTS]([Fetched(Stream.DEPLOYMENTS, CTX, raw([item]))], b)
    assert [r.message for r in caplog.records if "unknown field" in r.message] == [
        "deployments: unknown field 'riskScore' (kept in _raw)",
        "deployments: unknown field 'owner' (kept in _raw)",
    ]


def test_raw_column_points_each_record_at_its_exact_bytes_in_the_page():
    source = (
        '{"items": [ {"a": "Käse 🧀"} ,\n 7, {}, "a\\"b", {"a": "Käse 🧀"}, {"long": "%s"}]}'
        % ("x" * 40)
    )
    records, _ = split_page(source.encode())
    assert records is not None
    column = raw_column([Sliced(source.encode(), records)])
    assert list(column) == [
        '{"a": "Käse 🧀"}',
        "7",
        "{}",
        '"a\\"b"',
        '{"a": "Käse 🧀"}',
        '{"long": "%s"}' % ("x" * 40),
    ]


def test_raw_column_leaves_the_records_in_their_page_body_uncopied():
    source = json.dumps({"items": [{"id": "x" * 40}, {"id": "y" * 40}]}).encode()
    records, _ = split_page(source)
    assert records is not None
    strings = raw_column([Sliced(source, records)]).to_arrow(compat_level=pl.CompatLevel.newest())
    assert [buffer.address for buffer in strings.buffers()[2:]] == [pa.py_buffer(source).address]


def test_raw_column_joins_records_that_came_in_no_page():
    records = raw([{"a": 1}, {"b": "é" * 30}])
    pages = [Sliced(b"", records), Sliced(b"", []), Sliced(b"", records[:1])]
    assert list(raw_column(pages)) == ['{"a":1}', '{"b":"%s"}' % ("é" * 30), '{"a":1}']


def test_raw_read_from_page_bodies_is_the_exact_text_for_deployments_and_pull_requests():
    items = deployments()
    items[0]["pullRequests"]["items"][0]["title"] = 'Käse 🧀 "quoted" \\ back'
    unit = page_unit(items)
    frames = NORMALIZERS[Stream.DEPLOYMENTS]([unit], batch())
    text = unit.source.decode()
    assert [json.loads(r) for r in frames["deployments"]["_raw"]] == items
    assert all(r in text for r in frames["deployments"]["_raw"])
    for pr_raw in frames["pull_requests"]["_raw"]:
        assert "\n" in pr_raw and pr_raw in text  # indented as received, not re-encoded
    first_pr = items[0]["pullRequests"]["items"][0]
    assert first_pr in [json.loads(r) for r in frames["pull_requests"]["_raw"]]
