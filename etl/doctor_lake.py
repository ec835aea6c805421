"""`etl doctor` on a DuckLake: extensions, credentials, the catalog, the data path.

Four rows instead of the DuckDB file's "warehouse writable / schema / disk space":
- **lake extensions**: the extension files of the PyPI packages are there (offline).
- **lake credentials** (an `s3://` data path): where the keys come from, never the keys.
- **lake catalog**: PostgreSQL answers, the password is accepted, and the lake's DuckLake
  catalog version and schema migration (or that the first sync will create it).
- **lake data path writable**: a probe object written under the data path and deleted again,
  through the same extension and secret the sync uses. The probe is a throwaway in-memory
  DuckLake whose data path is a fresh prefix under the lake's, so DuckDB itself deletes
  the object (SQL has no other way to delete one on S3).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable

import duckdb

from etl.config import WarehouseSettings
from etl.errors import EtlError
from etl.resources import sql_dir
from etl.warehouse import extensions
from etl.warehouse.ducklake import CATALOG, DuckLake
from etl.warehouse.ducklake_s3 import credentials_found, is_s3

Add = Callable[..., bool]
PROBE = "etl_doctor_probe"


def check_lake(add: Add, settings: WarehouseSettings) -> None:
    """Add the lake's rows through `add(name, outcome, detail, fix="")`."""
    s3 = is_s3(settings.data_path)
    names = (*extensions.LAKE, *(extensions.S3 if s3 else ()))
    try:
        for name in names:
            extensions.package_file(name)
    except EtlError as exc:
        add("lake extensions", "FAIL", str(exc), "run `make setup` (or reinstall etl)")
        return
    add("lake extensions", "ok", f"{', '.join(names)} from their PyPI packages (offline)")
    if s3:
        found = credentials_found(settings)
        if found is None:
            add(
                "lake credentials", "FAIL", "no S3 credentials in the environment",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or warehouse.s3_credentials "
                '= "credential_chain" (instance role, ~/.aws, SSO)',
            )  # fmt: skip
            return
        add("lake credentials", "ok", found)
    lake = DuckLake(settings.path, settings)
    conn = _catalog(add, lake)
    if conn is None:
        return
    try:
        _data_path(add, lake, conn)
    finally:
        conn.close()


def _catalog(add: Add, lake: DuckLake) -> duckdb.DuckDBPyConnection | None:
    try:
        conn = lake.connect(read_only=True)
    except EtlError as exc:
        if "no warehouse here yet" in str(exc):
            add("lake catalog", "ok", "PostgreSQL answers; no lake yet, the first sync creates it")
            return lake.connect_bare()
        add(
            "lake catalog", "FAIL", str(exc),
            "check that PostgreSQL is up, the conninfo (host, port, dbname, user) and the "
            "password in the environment (PGPASSWORD or warehouse.password_env)",
        )  # fmt: skip
        return None
    meta = f"__ducklake_metadata_{CATALOG}.ducklake_metadata"
    version = conn.execute(f"SELECT value FROM {meta} WHERE key = 'version'").fetchone()
    schema = conn.execute("SELECT max(name) FROM schema_migrations").fetchone()
    latest = max((p.stem for p in (sql_dir() / "migrations").glob("*.sql")), default="")
    current = schema[0] if schema else None
    state = "current" if current == latest else f"the next sync upgrades it to {latest}"
    add(
        "lake catalog", "ok" if current == latest else "warn",
        f"PostgreSQL answers; DuckLake catalog {version[0] if version else '?'}, "
        f"schema {current} ({state})",
    )  # fmt: skip
    return conn


def _data_path(add: Add, lake: DuckLake, conn: duckdb.DuckDBPyConnection) -> None:
    data_path = lake.settings.data_path or _stored(conn)
    if not data_path:
        add(
            "lake data path writable", "FAIL", "no data path: the lake does not exist yet and "
            "warehouse.data_path is not set", "set warehouse.data_path (or --data-path)",
        )  # fmt: skip
        return
    prefix = f"{data_path.rstrip('/')}/.etl-doctor-{uuid.uuid4().hex[:12]}/"
    try:
        conn.execute("SET ducklake_default_data_inlining_row_limit = 0")
        conn.execute(f"ATTACH 'ducklake::memory:' AS {PROBE} (DATA_PATH '{_quote(prefix)}')")
        conn.execute(f"CREATE TABLE {PROBE}.probe AS SELECT 1 AS written")
        conn.execute(f"DROP TABLE {PROBE}.probe")
        conn.execute(f"CALL ducklake_expire_snapshots('{PROBE}', older_than => now())")
        conn.execute(f"CALL ducklake_cleanup_old_files('{PROBE}', cleanup_all => true)")
        left = conn.execute(f"SELECT count(*) FROM glob('{_quote(prefix)}**')").fetchone()
    except duckdb.Error as exc:
        add(
            "lake data path writable", "FAIL", lake.scrub(str(exc).split("\n", 1)[0]),
            "check the path (or the bucket, its endpoint and region) and that these "
            "credentials may write and delete under it",
        )  # fmt: skip
        return
    finally:
        with contextlib.suppress(duckdb.Error):
            conn.execute(f"DETACH {PROBE}")
    if left and left[0]:
        add(
            "lake data path writable", "warn", f"{data_path}: written, but the probe under "
            f"{prefix} could not be deleted", "allow deletes there (maintenance needs them)",
        )  # fmt: skip
        return
    add("lake data path writable", "ok", f"{data_path} (a probe object written and deleted)")


def _stored(conn: duckdb.DuckDBPyConnection) -> str | None:
    with contextlib.suppress(duckdb.Error):
        row = conn.execute(
            f"SELECT value FROM __ducklake_metadata_{CATALOG}.ducklake_metadata "
            "WHERE key = 'data_path'"
        ).fetchone()
        return str(row[0]) if row else None
    return None


def _quote(text: str) -> str:
    return text.replace("'", "''")
