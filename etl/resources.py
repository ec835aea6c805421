"""Where the SQL files live: inside the wheel (`etl/sql`) or beside the package in a checkout."""

from __future__ import annotations

from pathlib import Path


def sql_dir() -> Path:
    """The `sql/` directory holding `migrations/` and `views/`."""
    packaged = Path(__file__).parent / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).parent.parent / "sql"
