"""Polars' allocator is told to hand decayed pages back before Polars loads (etl/__init__.py).

Each test starts a fresh interpreter: jemalloc reads its settings once, as Polars loads, and
Polars appends `_RJEM_MALLOC_CONF` to its own defaults then, so the variable as it stands
after the import shows what Polars' allocator was given.
"""

from __future__ import annotations

import os
import subprocess
import sys

VARIABLE = "_RJEM_MALLOC_CONF"


def allocator_settings_after_loading_the_sync(value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if value is not None:
        env[VARIABLE] = value
    code = f"import os, etl.sync, polars; print(os.environ[{VARIABLE!r}])"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_polars_allocator_returns_decayed_pages_outright():
    settings = allocator_settings_after_loading_the_sync(None)
    assert settings.endswith(",muzzy_decay_ms:0"), settings  # after Polars' own defaults


def test_allocator_settings_from_the_environment_win():
    settings = allocator_settings_after_loading_the_sync("dirty_decay_ms:200")
    assert settings.endswith(",dirty_decay_ms:200"), settings
    assert "muzzy_decay_ms:0" not in settings
