"""Records that do not fit their schema: pinned down by bisection, kept raw, the rest loaded.

When a stream's batch fails to normalize, the normalizer itself is the oracle: halves of the
batch are normalized again until each failure is pinned to one record. Those records go to
`rejected_records` with the error that names them, and the rest of the batch loads. The
units they came in lose their marks, so their window or listing is read again next run
(and the record loads once the source is fixed; a listing is not swept with a record
missing). A failure no single record explains, or more than `MAX_REJECTS` in one batch
(a schema drift rather than a bad record), still rejects the whole stream for the run.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
import polars as pl

from etl.errors import DataError
from etl.normalize.frame import Batch
from etl.normalize.registry import KEYS, TABLES
from etl.rawjson import text
from etl.records import Fetched

MAX_REJECTS = 20


@dataclass(frozen=True, slots=True)
class Rejected:
    """One record that does not fit: where it is in the batch and what is wrong with it."""

    unit: int
    item: int
    error: str


def find_rejects(
    units: Sequence[Fetched],
    normalize: Callable[[Sequence[Fetched], Batch], object],
    batch: Batch,
) -> list[Rejected] | None:
    """The records `normalize` rejects one by one, or None if that does not explain it."""
    rejects: list[Rejected] = []

    def probe(part: list[tuple[int, int]]) -> None:
        if len(rejects) > MAX_REJECTS:
            return
        try:
            normalize(_subset(units, part), batch)
        except DataError as exc:
            if len(part) == 1:
                rejects.append(Rejected(*part[0], error=str(exc)))
                return
            middle = len(part) // 2
            probe(part[:middle])
            probe(part[middle:])

    probe([(u, i) for u, unit in enumerate(units) for i in range(len(unit.items))])
    return rejects if 0 < len(rejects) <= MAX_REJECTS else None


def without(units: Sequence[Fetched], rejects: Sequence[Rejected]) -> list[Fetched]:
    """The units without the rejected records; a unit that lost one also loses its marks."""
    dropped: dict[int, set[int]] = defaultdict(set)
    for reject in rejects:
        dropped[reject.unit].add(reject.item)
    return [
        _narrowed(unit, [i for i in range(len(unit.items)) if i not in dropped[u]])
        if u in dropped
        else unit
        for u, unit in enumerate(units)
    ]


def rejects_frame(
    units: Sequence[Fetched], rejects: Sequence[Rejected], batch: Batch
) -> pl.DataFrame:
    """Rows of `rejected_records` for the rejected records, exactly as received."""
    rows = []
    for reject in rejects:
        unit = units[reject.unit]
        raw = text(unit.items[reject.item])
        rows.append(
            {
                "run_id": batch.run_id,
                "stream": unit.stream.value,
                "record_hash": hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest(),
                "scope": orjson.dumps(dict(unit.context)).decode(),
                "error": reject.error,
                "_raw": raw,
                "rejected_at": batch.loaded_at,
            }
        )
    frame = pl.DataFrame(rows, schema=TABLES["rejected_records"], orient="row")
    return frame.unique(KEYS["rejected_records"], keep="last", maintain_order=True)


def _subset(units: Sequence[Fetched], part: Sequence[tuple[int, int]]) -> list[Fetched]:
    picked: dict[int, list[int]] = defaultdict(list)
    for u, i in part:
        picked[u].append(i)
    return [_narrowed(units[u], items) for u, items in picked.items()]


def _narrowed(unit: Fetched, indices: Sequence[int]) -> Fetched:
    """`unit` with only the items at `indices`, without its marks and its page body."""
    return Fetched(unit.stream, unit.context, [unit.items[i] for i in indices], body=unit.body)
