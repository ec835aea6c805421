from __future__ import annotations

import pytest

from etl.warehouse.duckdb_file import connect
from etl.warehouse.migrate import migrate


@pytest.fixture
def warehouse(tmp_path):
    """A migrated warehouse in a fresh DuckDB file."""
    conn = connect(tmp_path / "w.duckdb")
    migrate(conn)
    yield conn
    conn.close()
