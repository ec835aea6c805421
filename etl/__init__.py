"""ld-insights-etl: LaunchDarkly engineering data into a DuckDB warehouse."""

from __future__ import annotations

import os

# Polars allocates through its own jemalloc, and configures it as it loads: freed pages are
# kept 0.5 s, then handed back with MADV_FREE and kept 1 s more. Until the kernel is short
# of memory, such pages still count as the process's own (RSS), so normalizing a batch every
# ~0.25 s kept most of what the last batches freed. Handing them back outright
# (`muzzy_decay_ms:0`) lowered a large sync's peak ~6 MB in the same time. Polars appends
# this variable to its own settings, so it is set before any module of ours imports Polars;
# a value already set wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "muzzy_decay_ms:0")

__version__ = "0.1.0"
