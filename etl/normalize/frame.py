"""Shared normalization steps: raw frame, typed decode, required-field check, time columns."""

from __future__ import annotations

import logging
import struct
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from etl.errors import DataError
from etl.normalize.schemas import RecordSpec
from etl.rawjson import RawRecord, Sliced, keys_of, only_known_fields
from etl.records import Fetched

log = logging.getLogger(__name__)

# Rows per `json_decode` call. Polars holds a parsed copy of every string of a call at once
# (~10× the JSON): 5000 deployments took ~80 MB of transient memory, 500 at a time ~30 MB,
# and the smaller calls are also faster (0.018 s against 0.034 s for 5000 rows).
DECODE_ROWS = 500


@dataclass(slots=True)
class UnknownFields:
    """Fields the schemas do not know yet: kept in `_raw`, reported once per run."""

    seen: set[tuple[str, str]] = field(default_factory=set)

    def note(self, where: str, records: Sequence[RawRecord], known: Collection[str]) -> None:
        """Warn about every field of `records` not in `known` that this run has not reported.

        The records are checked a few hundred per decode (`rawjson.joined`), their values
        skipped; only when that finds a field it does not know are the records' keys read
        one by one to name it. Fields already reported count as known for the check, so
        that a field the API has added does not send every later batch down the slow path.
        """
        known = frozenset(known)
        reported = {key for place, key in self.seen if place == where}
        if only_known_fields(records, known | reported):
            return
        keys: set[str] = set()
        for record in records:
            fields = keys_of(record)
            if not known.issuperset(fields):
                keys.update(fields)
        for key in sorted(keys.difference(known)):
            if (where, key) not in self.seen:
                self.seen.add((where, key))
                log.warning("%s: unknown field %r (kept in _raw)", where, key)


@dataclass(frozen=True, slots=True)
class Batch:
    """What every row written by one load shares: the run, the load time, the run's reports."""

    run_id: str
    loaded_at: datetime
    unknown: UnknownFields


# Arrow's string view: length, then the first 4 bytes, buffer index and offset; or length
# and the string itself when it fits in 12 bytes.
_VIEW = struct.Struct("<i4sii")
_INLINE_VIEW = struct.Struct("<i12s")
_SHORT = 12
_HEAD = 16


def raw_column(pages: Iterable[Sliced]) -> pl.Series:
    """The `_raw` column: each record's JSON text exactly as the API sent it.

    A string view array whose data buffers are the response bodies themselves: every
    record's bytes stay where they arrived, held until the batch is committed, and are not
    copied (a joined copy per column cost ~25 MB at the peak of a large sync). Records
    without a body are joined into one buffer. Pages were checked to be UTF-8 on arrival.
    """
    views = bytearray()
    buffers: list[pa.Buffer] = []
    count = 0
    for page in pages:
        if not page.records:
            continue
        source = page.source or b"".join(page.records)
        index = len(buffers)
        buffers.append(pa.py_buffer(source))
        find, startswith = source.find, source.startswith
        position = 0
        for record in page.records:
            size = len(record)
            if size <= _SHORT:
                views += _INLINE_VIEW.pack(size, bytes(record))
                continue
            # Found by its first bytes, then compared whole: `find` with the whole record
            # prepares a search table as long as the record, ~3 µs each.
            head = memoryview(record)[:_HEAD]
            start = find(head, position)
            while start >= 0 and not startswith(record, start):
                start = find(head, start + 1)
            if start < 0:
                raise ValueError("a record is not in its page body after the one before it")
            views += _VIEW.pack(size, source[start : start + 4], index, start)
            position = start + size
        count += len(page.records)
    strings = pa.Array.from_buffers(pa.string_view(), count, [None, pa.py_buffer(views), *buffers])
    return pl.Series("_raw", strings, dtype=pl.String)


def raw_frame(
    units: Sequence[Fetched], context_keys: Sequence[str], raws: Sequence[Sliced]
) -> pl.DataFrame:
    """One row per item: its `_raw` JSON plus the scope it came from (`project_key`, …).

    `raws` are the units' items with their bodies, or stand-ins for the items
    (environments without secrets).
    """
    columns: dict[str, pl.Series] = {"_raw": raw_column(raws)}
    for key in context_keys:
        values: list[str] = []
        for unit in units:
            values.extend([unit.context[key]] * len(unit.items))
        columns[key] = pl.Series(key, values, dtype=pl.String)
    return pl.DataFrame(columns)


def _mismatch(value: Any, dtype: pl.DataType | pl.datatypes.DataTypeClass, path: str) -> str | None:
    """The path of the first value that does not fit `dtype`, or None."""
    if value is None:
        return None
    if isinstance(dtype, pl.Struct):
        if not isinstance(value, dict):
            return f"{path}: expected an object, got {type(value).__name__}"
        for f in dtype.fields:
            found = _mismatch(value.get(f.name), f.dtype, f"{path}.{f.name}" if path else f.name)
            if found:
                return found
        return None
    if isinstance(dtype, pl.List):
        if not isinstance(value, list):
            return f"{path}: expected an array, got {type(value).__name__}"
        for i, item in enumerate(value):
            found = _mismatch(item, dtype.inner, f"{path}[{i}]")
            if found:
                return found
        return None
    expected: tuple[type, ...]
    if dtype == pl.String:
        expected = (str,)
    elif dtype == pl.Boolean:
        expected = (bool,)
    elif dtype.is_integer():
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{path}: expected an integer, got {type(value).__name__} {value!r:.40}"
        return None
    else:
        expected = (int, float)
    if not isinstance(value, expected):
        return f"{path}: expected {dtype}, got {type(value).__name__} {value!r:.40}"
    return None


def decode(frame: pl.DataFrame, dtype: pl.Struct, stream: str, id_field: str) -> pl.DataFrame:
    """Decode `_raw` with an explicit dtype and unnest it beside the context columns.

    Polars rejects a value of the wrong type for the whole batch without saying which
    record; only then do we walk the records in Python to name the record and field.
    """
    to_record = pl.col("_raw").str.json_decode(dtype).alias("_record")
    try:
        decoded = pl.concat(
            frame.slice(start, DECODE_ROWS).select(to_record)
            for start in range(0, max(frame.height, 1), DECODE_ROWS)
        )
    except pl.exceptions.PolarsError:
        for index, raw in enumerate(frame["_raw"]):
            record = orjson.loads(raw)
            problem = _mismatch(record, dtype, "")
            if problem:
                name = record.get(id_field) if isinstance(record, dict) else f"#{index + 1}"
                raise DataError(f"{stream}: record {name!r}: field {problem}") from None
        raise
    return pl.concat([frame, decoded.unnest("_record")], how="horizontal")


def require(frame: pl.DataFrame, stream: str, id_column: str, fields: Sequence[str]) -> None:
    """Raise a DataError naming the first record that lacks a field the API marks required."""
    nulls = frame.select(pl.col(list(fields)).null_count())
    for name in fields:
        if nulls[name][0]:
            record_id = frame.filter(pl.col(name).is_null())[id_column][0]
            raise DataError(f"{stream}: record {record_id!r}: required field {name!r} is missing")


def utc_ms(column: str) -> pl.Expr:
    """Unix milliseconds → TIMESTAMPTZ (UTC)."""
    return pl.from_epoch(pl.col(column), time_unit="ms").dt.replace_time_zone("UTC")


def metadata_columns(batch: Batch) -> list[pl.Expr]:
    """Our `_run_id` and `_loaded_at` columns."""
    return [
        pl.lit(batch.run_id, dtype=pl.String).alias("_run_id"),
        pl.lit(batch.loaded_at, dtype=pl.Datetime("us", "UTC")).alias("_loaded_at"),
    ]


def json_list(column: pl.Expr) -> pl.Expr:
    """A List(Struct) column as one JSON array string (null stays null)."""
    return pl.concat_str(
        pl.lit("["), column.list.eval(pl.element().struct.json_encode()).list.join(","), pl.lit("]")
    )


def decode_units(
    units: Sequence[Fetched], batch: Batch, spec: RecordSpec, raws: list[RawRecord] | None = None
) -> pl.DataFrame:
    """The steps every stream shares: report unknown fields, decode, check, stamp the run.

    Returns one row per record: context columns, `_raw`, the decoded fields (API names),
    `_run_id` and `_loaded_at`. `raws` replaces the records' JSON (environments drop secrets).
    """
    items = [item for unit in units for item in unit.items]
    batch.unknown.note(spec.stream, items, spec.known)
    pages = [unit.sliced for unit in units] if raws is None else [Sliced(b"", raws)]
    frame = raw_frame(units, spec.context, pages)
    frame = decode(frame, spec.dtype, spec.stream, spec.id_field)
    require(frame, spec.stream, spec.id_field, spec.required)
    return frame.with_columns(metadata_columns(batch))
