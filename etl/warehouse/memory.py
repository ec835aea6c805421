"""DuckDB's memory limit for the sync's connection: what a checkpoint of large records needs."""

from __future__ import annotations

import os

import duckdb

# A checkpoint compresses a column 2,048 values (DuckDB's vector) at a time and holds them
# all, so its memory grows with the largest record: measured need ~2,048 × its size + ~15 MB
# (records of 20 / 40 / 80 KB checkpointed at 64 / 96 / 192 MB and failed at 48 / 80 / 160).
CHECKPOINT_VALUES = 2_048


def memory_for_records(largest: int) -> int:
    """DuckDB memory (bytes) to checkpoint records of up to `largest` bytes, with a margin.

    Never more than DuckDB's own default limit, 80 % of the machine's memory: past that, a
    clear out-of-memory error from DuckDB beats the operating system killing the process.
    """
    needed = int(CHECKPOINT_VALUES * largest * 1.25) + 32 * 2**20
    return min(needed, int(0.8 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")))


def set_memory_limit(conn: duckdb.DuckDBPyConnection, limit: int) -> None:
    """Raise (or lower) DuckDB's memory limit on a live connection to `limit` bytes."""
    conn.execute(f"SET memory_limit = '{limit // 2**20}MiB'")
