"""DuckDB's extensions from their PyPI packages, never the network.

`postgres` and `ducklake` for every lake; `httpfs` (S3 reads and writes) and `aws` (the
credential chain) for a lake whose data path is `s3://…`.

The `duckdb-extension-*` wheels (locked in uv.lock like any dependency) each ship one file and
register nothing. DuckDB loads an extension by name only from its extension directory, so each
file is installed there once (`INSTALL '<file>'` copies it, ~78 MB for the first two, ~49 MB
for the S3 pair) and then loaded
by name; autoinstall and autoload stay off so that no statement ever reaches for the internet.
`LOAD '<file>'` alone does not work for postgres (its entry point is named postgres_scanner),
and DuckLake loads postgres itself: both are loaded explicitly.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import duckdb

from etl.errors import WarehouseError

# Extension name → the PyPI package that ships it (a runtime dependency in pyproject.toml).
PACKAGES = {
    "postgres": "duckdb_extension_postgres",
    "ducklake": "duckdb_extension_ducklake",
    "httpfs": "duckdb_extension_httpfs",
    "aws": "duckdb_extension_aws",
}
LAKE = ("postgres", "ducklake")
S3 = ("httpfs", "aws")
OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def default_directory() -> Path:
    """Where the extensions are installed unless `warehouse.extension_directory` says.

    A per-user cache, shared by every run on the machine: installing copies ~78 MB.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ld-insights-etl" / "duckdb-extensions"


def package_file(name: str) -> Path:
    """The `.duckdb_extension` file the extension's PyPI package ships for our DuckDB."""
    package = importlib.import_module(PACKAGES[name])
    root = Path(str(package.__file__)).parent / "extensions" / f"v{duckdb.__version__}"
    path = root / f"{name}.duckdb_extension"
    if not path.is_file():
        raise WarehouseError(
            f"the {name} extension for DuckDB {duckdb.__version__} is not installed "
            f"(expected {path}); run `make setup`"
        )
    return path


def load(conn: duckdb.DuckDBPyConnection, directory: Path, names: tuple[str, ...] = LAKE) -> None:
    """Install (once per directory and version) and load the extensions `names` on `conn`.

    `conn` must have been opened with `OFFLINE` and `extension_directory = directory`.
    """
    platform = conn.execute("PRAGMA platform").fetchone()
    installed = directory / f"v{duckdb.__version__}" / str(platform[0] if platform else "")
    for name in names:
        source = package_file(name)
        target = installed / f"{name}.duckdb_extension"
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            # DuckDB writes a temporary file and renames it: concurrent installs are safe.
            quoted = str(source).replace("'", "''")
            conn.execute(f"FORCE INSTALL '{quoted}'")
    for name in names:
        conn.execute(f"LOAD {name}")
