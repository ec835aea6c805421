"""Records → typed Polars frames, one frame per warehouse table.

Every normalizer takes the `Fetched` units of one stream and returns `{table: DataFrame}`
whose columns and dtypes are exactly `schemas.TABLES[table]`. Records are decoded from their
raw JSON with an explicit Polars dtype (`str.json_decode`), so the typed columns and the
`_raw` column come from the same bytes and a table can be rebuilt from `_raw` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from etl.config import Stream
from etl.normalize.deployments import normalize_deployments
from etl.normalize.discovery import normalize_environments, normalize_projects
from etl.normalize.frame import Batch, UnknownFields
from etl.normalize.releases import (
    normalize_pipelines,
    normalize_policies,
    normalize_progressions,
)
from etl.records import Fetched

Normalizer = Callable[[Sequence[Fetched], Batch], dict[str, pl.DataFrame]]

NORMALIZERS: dict[Stream, Normalizer] = {
    Stream.PROJECTS: normalize_projects,
    Stream.ENVIRONMENTS: normalize_environments,
    Stream.DEPLOYMENTS: normalize_deployments,
    Stream.RELEASE_PIPELINES: normalize_pipelines,
    Stream.RELEASE_PROGRESSIONS: normalize_progressions,
    Stream.RELEASE_POLICIES: normalize_policies,
}

__all__ = ["NORMALIZERS", "Batch", "Normalizer", "UnknownFields"]
