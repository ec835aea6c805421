"""One migration file for both backends: the few words that differ are placeholders.

A DuckDB file and a DuckLake run the same `sql/migrations/NNNN_*.sql`. Where they differ, the
file writes `{{name}}` and each backend fills it in: DuckLake rejects per-column compression
and constraints, and keeps no JSON type worth having. This is a substitution of whole words,
not a SQL rewriter: a placeholder this module does not know is an error, so a typo never
reaches the warehouse as SQL.
"""

from __future__ import annotations

import re
from typing import Literal

from etl.errors import WarehouseError

Backend = Literal["duckdb", "ducklake"]

PLACEHOLDERS: dict[Backend, dict[str, str]] = {
    "duckdb": {
        # FSST is retrained at every checkpoint; zstd is cheaper and smaller (0005).
        "zstd": "USING COMPRESSION zstd",
        "primary_key": "PRIMARY KEY",
        "unique": "UNIQUE",
        "json": "JSON",
    },
    "ducklake": {
        # Parquet files are zstd already (0005's lake form); DuckLake has no constraints.
        "zstd": "",
        "primary_key": "",
        "unique": "",
        "json": "VARCHAR",
    },
}

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")


def render(sql: str, backend: Backend, name: str = "migration") -> str:
    """`sql` with every `{{placeholder}}` filled in for `backend`.

    Raises:
        WarehouseError: a placeholder neither backend knows (naming it and the migration).
    """
    words = PLACEHOLDERS[backend]

    def fill(match: re.Match[str]) -> str:
        word = match.group(1).strip()
        if word not in words:
            known = ", ".join("{{" + w + "}}" for w in sorted(words))
            raise WarehouseError(f"{name}: unknown placeholder {match.group(0)} (known: {known})")
        return words[word]

    return _PLACEHOLDER.sub(fill, sql)
