"""Records → typed Polars frames, one frame per warehouse table.

Every normalizer takes the `Fetched` units of one stream and returns `{table: DataFrame}`
whose columns and dtypes are exactly its tables' (`registry.TABLES`). Records are decoded from
their raw JSON with an explicit Polars dtype (`str.json_decode`), so the typed columns and the
`_raw` column come from the same bytes and a table can be rebuilt from `_raw` alone.
"""

from __future__ import annotations

from etl.normalize.family import Normalizer
from etl.normalize.frame import Batch, UnknownFields
from etl.normalize.registry import NORMALIZERS

__all__ = ["NORMALIZERS", "Batch", "Normalizer", "UnknownFields"]
