"""What a stream family declares on the record side: its tables and its normalizers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from etl.config import Stream
from etl.normalize.frame import Batch
from etl.normalize.schemas import Table
from etl.records import Fetched

Normalizer = Callable[[Sequence[Fetched], Batch], dict[str, pl.DataFrame]]


@dataclass(frozen=True, slots=True)
class Family:
    """The tables a family of streams writes, and how each of its streams' units normalize.

    A normalizer returns `{table: frame}` for tables of its own family, each frame with
    exactly the table's columns (`schemas.conform(frame, table)`).
    """

    name: str
    tables: tuple[Table, ...]
    normalizers: Mapping[Stream, Normalizer]
