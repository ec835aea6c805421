"""A DuckLake warehouse: the catalog in PostgreSQL, the data as Parquet files, many writers.

`warehouse.path` = `ducklake:postgres:<libpq conninfo>` and `warehouse.data_path` = where the
Parquet files go (a directory every worker and reader can reach, or `s3://…` through httpfs,
`ducklake_s3`). The password never appears in either: libpq reads it from `PGPASSWORD`, or
from the variable `warehouse.password_env` names; S3 keys come from the environment too; and
every message this module raises is scrubbed of all of them.

Many workers at once. DuckLake commits optimistically: a transaction that overlaps another
one's commit on the same table fails at COMMIT ("Transaction conflict"). The same tables'
merge rules as a DuckDB file hold only with one writer at a time (a key is deleted, then
inserted, in one transaction: two writers that both find a key absent would both insert it,
and DuckLake lets concurrent INSERTs both commit). So every batch also bumps the one row of
`etl_lake_writer`: any two batches in flight at once conflict, one commits and the other is
rolled back and run again from the start against the newer snapshot, with backoff, a bounded
number of times. Ledger and state writes are retried the same way. Readers attach the lake
read-only at the latest snapshot where no run was in progress (`ducklake_pin`): they see
whole runs and never block a writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson

from etl.config import WarehouseSettings
from etl.errors import ConfigError, WarehouseError
from etl.logs import event
from etl.records import Mark
from etl.resources import sql_dir
from etl.warehouse import extensions
from etl.warehouse.ddl import render
from etl.warehouse.ducklake_lease import POLL_S, Held, bump_for_batch
from etl.warehouse.ducklake_outage import INVALIDATED, OutageClock, service_down
from etl.warehouse.ducklake_pin import Pin, latest_pin, record_end
from etl.warehouse.ducklake_s3 import create_secret, is_s3, key_values
from etl.warehouse.merge import Staged, write_batch

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "ducklake:"
CATALOG = "warehouse"
# A batch re-run after a conflict waits BACKOFF_S × attempt (± half, so that workers that
# conflicted once do not collide again in lockstep), at most MAX_ATTEMPTS times in all.
MAX_ATTEMPTS = 30
BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0
# DuckLake's words for a commit that lost a race (its own retry absorbs only some of them);
# PostgreSQL's, for the catalog transaction under it.
_CONFLICT = re.compile(
    r"Transaction conflict|could not serialize access|deadlock detected|"
    r"duplicate key value violates unique constraint",
    re.I,
)
# Before the one more try an error that is neither a conflict nor an outage gets.
UNEXPLAINED_PAUSE_S = 1.0
# Parquet files up to 50 GB on S3 (parts of 5 MB), uploaded 4 parts at a time.
S3_MAX_FILE = "50GB"
S3_UPLOAD_THREADS = 4
_PASSWORD_FIELD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I)


def is_lake(target: str | Path) -> bool:
    """Whether a `warehouse.path` / `--db` names a DuckLake rather than a DuckDB file."""
    return str(target).startswith(PREFIX)


def conninfo_of(target: str | Path) -> str:
    """The libpq conninfo of a `ducklake:postgres:<conninfo>` target.

    Raises:
        ConfigError: another catalog than PostgreSQL, or a password in the conninfo.
    """
    rest = str(target)[len(PREFIX) :]
    if not rest.startswith("postgres:"):
        raise ConfigError(
            "warehouse.path: a DuckLake catalog must be PostgreSQL "
            "(ducklake:postgres:dbname=… host=… user=…); a DuckDB or SQLite catalog serves "
            "one process at a time"
        )
    conninfo = rest[len("postgres:") :].strip()
    if _PASSWORD_FIELD.search(conninfo):
        raise ConfigError(
            "warehouse.path: the DuckLake conninfo must not hold a password; it comes from "
            "the environment (PGPASSWORD, or the variable warehouse.password_env names)"
        )
    return conninfo


def is_conflict(error: BaseException) -> bool:
    """Whether `error` is a commit that lost a race with another writer (worth re-running)."""
    return bool(_CONFLICT.search(str(error)))


class DuckLake:
    """A DuckLake named by `ducklake:postgres:<conninfo>`, with `[warehouse]` settings."""

    def __init__(self, target: str | Path, settings: WarehouseSettings | None = None) -> None:
        self.settings = settings or WarehouseSettings()
        self.conninfo = conninfo_of(target)
        self.target = f"{PREFIX}postgres:{self.conninfo}"
        self._password = os.environ.get(self.settings.password_env) or None
        self._hidden = [value for value in (self._password, *key_values()) if value]

    def scrub(self, text: str) -> str:
        """`text` without the password or S3 keys, whatever echoed it (DuckDB, libpq, …)."""
        for value in self._hidden:
            text = text.replace(value, "***")
        return _PASSWORD_FIELD.sub(r"\1***", text)

    def service_down(self, error: BaseException) -> str | None:
        """The service (catalog or object store) `error` says did not answer, if any."""
        settings = self.settings
        return service_down(error, self.conninfo, settings.data_path, settings.s3_endpoint)

    def writer(self) -> DuckLakeWriter:
        """A sync's session on the lake (many may run at once, on any machines)."""
        return DuckLakeWriter(self)

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection whose default catalog is the lake at its pin (whole runs)."""
        return self.connect(read_only=True, pinned=True)

    def pin(self) -> Pin | None:
        """The snapshot readers attach at (None: a lake from before runs recorded them)."""
        conn = self.connect(read_only=True)
        try:
            return latest_pin(conn, CATALOG)
        finally:
            conn.close()

    def last_run(self) -> dict[str, Any] | None:
        """The latest run's ledger row, unpinned (a failed run never moves the pin).

        None when the lake cannot be read (the pinned read that follows says why).
        """
        try:
            conn = self.connect(read_only=True)
        except WarehouseError:
            return None
        try:
            row = conn.execute(
                "SELECT run_id, status, started_at, ended_at, requests, rate_limited, error, "
                "streams FROM etl_runs ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
        except duckdb.Error:
            return None
        finally:
            conn.close()
        if row is None:
            return None
        names = ("run_id", "status", "started_at", "ended_at", "requests", "rate_limited")
        record: dict[str, Any] = dict(zip(names, row[:6], strict=True))
        record["started_at"] = row[2].isoformat()
        record["ended_at"] = row[3].isoformat() if row[3] else None
        record["error"] = self.scrub(row[6]) if row[6] else None
        record["streams"] = orjson.loads(row[7]) if row[7] else {}
        return record

    def connect(self, *, read_only: bool, pinned: bool = False) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the lake attached as `warehouse` and in use.

        `pinned` (read-only): at the latest snapshot where no run was in progress.

        Raises:
            WarehouseError: the catalog cannot be reached, or (read-only) holds no lake yet.
        """
        conn = self.connect_bare(writing=not read_only)
        with self._closed_on_failure(conn):
            try:
                self._attach(conn, read_only=read_only)
            except duckdb.Error as exc:
                # A reader need not be told the data path: the catalog names it.
                if "requires the extension httpfs" not in str(exc):
                    raise
                self._use_s3(conn)
                self._attach(conn, read_only=read_only)
            if pinned:
                self._pin(conn)
        return conn

    def connect_bare(self, *, writing: bool = False) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the lake's extensions (and S3 secret), nothing attached."""
        settings = self.settings
        directory = self._extension_directory()
        config: dict[str, str | bool | int | float | list[str]] = {
            **extensions.OFFLINE,
            "extension_directory": str(directory),
        }
        if writing:
            config |= {"threads": settings.threads, "memory_limit": settings.memory_limit}
        try:
            conn = duckdb.connect(":memory:", config=config)
        except duckdb.Error as exc:
            raise WarehouseError(self._failure("cannot start DuckDB", exc)) from None
        with self._closed_on_failure(conn):
            # A slow catalog round trip would draw DuckDB's progress bar into `etl sql`'s CSV.
            conn.execute("SET enable_progress_bar = false")
            extensions.load(conn, directory)
            self._use_password()
            if is_s3(settings.data_path):
                self._use_s3(conn)
        return conn

    @contextlib.contextmanager
    def _closed_on_failure(self, conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """`conn` closed if the block fails; a DuckDB error as one WarehouseError line."""
        try:
            yield
        except duckdb.Error as exc:
            conn.close()
            raise WarehouseError(self._failure("cannot open the DuckLake", exc)) from None
        except BaseException:
            conn.close()
            raise

    def _extension_directory(self) -> Path:
        directory = self.settings.extension_directory or extensions.default_directory()
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _use_s3(self, conn: duckdb.DuckDBPyConnection) -> None:
        extensions.load(conn, self._extension_directory(), extensions.S3)
        create_secret(conn, self.settings)
        # httpfs buffers each multipart part in memory, sized max_filesize ÷ 10,000 parts:
        # ~80 MB at its default, over the writer's whole memory limit. A lake's files are a
        # batch each (MBs): 5 MB parts (S3's minimum), a few in flight.
        conn.execute(f"SET s3_uploader_max_filesize = '{S3_MAX_FILE}'")
        conn.execute(f"SET s3_uploader_thread_limit = {S3_UPLOAD_THREADS}")

    def _pin(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Re-attach `warehouse` at the latest whole snapshot (unpinned on a legacy lake)."""
        pin = latest_pin(conn, CATALOG)
        if pin is None:
            return
        conn.execute("USE memory")
        conn.execute(f"DETACH {CATALOG}")
        attach = f"ATTACH {_literal(PREFIX + 'postgres:' + self.conninfo)} AS {CATALOG}"
        conn.execute(f"{attach} (READ_ONLY, SNAPSHOT_VERSION {pin.snapshot_id})")
        conn.execute(f"USE {CATALOG}")

    def _use_password(self) -> None:
        """Hand libpq the password from `password_env` (libpq itself reads only PGPASSWORD)."""
        if self._password and self.settings.password_env != "PGPASSWORD":
            os.environ["PGPASSWORD"] = self._password

    def _attach(self, conn: duckdb.DuckDBPyConnection, *, read_only: bool) -> None:
        options = ["READ_ONLY"] if read_only else []
        data_path = self.settings.data_path
        if data_path and not read_only:
            if "://" not in data_path:
                Path(data_path).mkdir(parents=True, exist_ok=True)
            options.append(f"DATA_PATH {_literal(data_path.rstrip('/') + '/')}")
        attach = f"ATTACH {_literal(PREFIX + 'postgres:' + self.conninfo)} AS {CATALOG}"
        try:
            conn.execute(attach + (f" ({', '.join(options)})" if options else ""))
        except duckdb.Error as exc:
            if read_only and "does not exist" in str(exc) and 'database "' not in str(exc):
                raise WarehouseError(
                    f"{self.target}: no warehouse here yet (run `etl sync` first)"
                ) from None
            if not read_only and not data_path and "DATA_PATH" in str(exc):
                raise WarehouseError(
                    f"{self.target}: a new DuckLake needs warehouse.data_path (--data-path)"
                ) from None
            raise
        conn.execute(f"USE {CATALOG}")

    def _failure(self, what: str, exc: BaseException) -> str:
        reason = self.scrub(str(exc).split("\n", 1)[0])
        service = self.service_down(exc)
        if service is not None:
            return f"{self.target}: {what}: {service} did not answer: {reason}"
        return f"{self.target}: {what}: {reason}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckLakeWriter:
    """One sync's connection to the lake; every write is retried when it loses a race."""

    def __init__(self, lake: DuckLake) -> None:
        self.lake = lake
        self._temp = Path(tempfile.mkdtemp(prefix="etl-ducklake-"))
        try:
            self.conn = _first_connect(lake)
            self.conn.execute(f"SET temp_directory = {_literal(str(self._temp))}")
        except BaseException:
            shutil.rmtree(self._temp, ignore_errors=True)
            raise
        self._rng = random.Random()
        self.conflicts = 0
        """Transactions re-run after a conflict, in this session (for the ledger and bench)."""
        self._invalidated = False

    def close(self) -> None:
        """Close the connection and remove its spill directory (idempotent)."""
        if self.conflicts:
            log.info(
                "%d transaction(s) re-run after conflicts with other writers", self.conflicts,
                extra=event("lake_conflicts", conflicts=self.conflicts),
            )  # fmt: skip
            self.conflicts = 0
        if self._invalidated:
            _INVALIDATED_CONNECTIONS.append(self.conn)  # see _reopen
        else:
            with contextlib.suppress(duckdb.Error):
                self.conn.close()
        shutil.rmtree(self._temp, ignore_errors=True)

    def retrying(
        self, work: Callable[[duckdb.DuckDBPyConnection], T], what: str = "writing to the lake"
    ) -> T:
        """`work(conn)` (whole transactions), again while it loses races or a service is down.

        A service: the catalog or the object store (`ducklake_outage`). `work` must be safe
        to run again from the start after a rollback: every caller's transaction re-reads
        what it decides on.
        """
        attempt = 0
        unexplained = False
        outage = OutageClock(self.lake.settings.outage_retry_s)
        while True:
            try:
                result = work(self.conn)  # after an invalidation, the reopened one
            except Held as exc:
                _rollback(self.conn)
                log.debug("%s: %s; waiting", what, exc)
                time.sleep(POLL_S)
            except (duckdb.Error, WarehouseError) as exc:
                _rollback(self.conn)
                invalidated = bool(INVALIDATED.search(str(exc)))
                self._invalidated = self._invalidated or invalidated
                service = self.lake.service_down(exc)
                if service is not None or invalidated:
                    self._wait_out(outage, service or "the lake's DuckDB instance", what, exc)
                    if invalidated:
                        self._reopen()
                    continue
                attempt += 1
                if not is_conflict(exc):
                    if not unexplained:
                        # A service going away can first answer oddly (PostgreSQL shutting
                        # down still accepts connections): one more try tells.
                        unexplained = True
                        time.sleep(UNEXPLAINED_PAUSE_S)
                        continue
                    if isinstance(exc, WarehouseError):
                        raise WarehouseError(self.lake.scrub(str(exc))) from None
                    raise WarehouseError(self.lake._failure(what, exc)) from None
                if attempt == MAX_ATTEMPTS:
                    raise WarehouseError(
                        self.lake._failure(f"{what}: gave up after {attempt} conflicts", exc)
                    ) from None
                self.conflicts += 1
                pause = min(MAX_BACKOFF_S, BACKOFF_S * attempt) * self._rng.uniform(0.5, 1.5)
                log.debug("%s: conflict with another writer; again in %.2f s", what, pause)
                time.sleep(pause)
            else:
                if outage.waited():
                    log.info("%s: the lake's services answer again", what)
                return result

    def _wait_out(self, outage: OutageClock, service: str, what: str, exc: BaseException) -> None:
        """Sleep before the next try; WarehouseError naming `service` once the bound is spent."""
        pause = outage.next_pause()
        if pause is None:
            reason = self.lake.scrub(str(exc).split("\n", 1)[0])
            raise WarehouseError(
                f"{service} did not answer for {outage.waited():.0f} s ({what}; nothing of it "
                f"was kept): {reason}"
            ) from None
        log.warning(
            "%s did not answer (%s); trying again in %.1f s", service, what, pause,
            extra=event("lake_outage", service=service),
        )  # fmt: skip
        time.sleep(pause)

    def _reopen(self) -> None:
        """A new DuckDB instance for this writer, once the lake can be attached again.

        The invalidated one is kept, never closed: closing an instance DuckDB invalidated
        can abort the process.
        """
        try:
            conn = _first_connect(self.lake)
            conn.execute(f"SET temp_directory = {_literal(str(self._temp))}")
        except (duckdb.Error, WarehouseError):
            return  # still down: the next try fails again and waits
        _INVALIDATED_CONNECTIONS.append(self.conn)
        self.conn, self._invalidated = conn, False

    def migrate(self) -> list[str]:
        """Create or upgrade the lake's tables and views (concurrent workers may race)."""
        return self.retrying(migrate_lake, "migrating the lake")

    def merge_batch(
        self, staged: Staged, marks: Sequence[Mark], *, run_id: str, now: datetime
    ) -> None:
        """Commit one batch, alone among all writers of the lake (see the module docstring)."""

        def attempt(conn: duckdb.DuckDBPyConnection) -> None:
            conn.execute("BEGIN TRANSACTION")
            bump_for_batch(conn)  # or Held: maintenance holds the lake
            write_batch(conn, staged, marks, run_id=run_id, now=now)
            conn.execute("COMMIT")

        self.retrying(attempt, "loading a batch (nothing of it was kept)")

    def publish(self, run_id: str | None = None) -> None:
        """Record the snapshot run `run_id` ended on, for readers to attach at (`ducklake_pin`).

        Without a run (a bare migration) there is nothing to record.
        """
        if run_id is None:
            return
        self.retrying(
            lambda conn: record_end(conn, CATALOG, run_id), "recording the run's snapshot"
        )


_INVALIDATED_CONNECTIONS: list[duckdb.DuckDBPyConnection] = []


def holds_invalidated_instances() -> bool:
    """Whether a writer left an instance DuckDB invalidated (destroying it may abort)."""
    return bool(_INVALIDATED_CONNECTIONS)


def _first_connect(lake: DuckLake) -> duckdb.DuckDBPyConnection:
    """The writer's connection; workers that create a new lake at once race, and retry."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return lake.connect(read_only=False)
        except WarehouseError as exc:
            # Two workers creating the lake's catalog tables at once: one finds them made.
            creating = "already exists" in str(exc)
            if not (is_conflict(exc) or creating) or attempt == MAX_ATTEMPTS:
                raise
            time.sleep(min(MAX_BACKOFF_S, BACKOFF_S * attempt) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def _rollback(conn: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        conn.execute("ROLLBACK")


def lake_migrations(root: Path | None = None) -> list[Path]:
    """The migrations a lake applies, in order: the shared ones, or their lake forms.

    A lake form (`sql/ducklake/migrations/<same name>.sql`) replaces a shared migration that
    DuckLake cannot run as it is: only 0001–0005 have one (released migrations are never
    edited). Every later migration is one file for both backends, whose differences are
    `{{placeholders}}` (`ddl.render`).
    """
    base = root or sql_dir()
    shared = {path.name: path for path in (base / "migrations").glob("*.sql")}
    lake = {path.name: path for path in (base / "ducklake" / "migrations").glob("*.sql")}
    return [{**shared, **lake}[name] for name in sorted(shared.keys() | lake.keys())]


def _statements(sql: str) -> bool:
    """Whether a migration holds any statement (a lake form may be only a comment)."""
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


def _applied(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = conn.execute("SELECT count(*) FROM schema_migrations WHERE name = ?", [name]).fetchone()
    return bool(found and found[0])


def migrate_lake(conn: duckdb.DuckDBPyConnection, root: Path | None = None) -> list[str]:
    """Apply the lake's pending migrations, each in one transaction; views when they changed.

    Views are recreated only when their SQL changed (a row `views:<hash>` in
    schema_migrations): every worker starts with a migrate, and recreating them each time
    would be a schema change that conflicts with every other worker's commits.
    """
    base = root or sql_dir()
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations").fetchall()}
    applied: list[str] = []
    for path in lake_migrations(base):
        if path.stem in done:
            continue
        sql = render(path.read_text(encoding="utf-8"), "ducklake", path.name)
        conn.execute("BEGIN TRANSACTION")
        if _applied(conn, path.stem):  # by another worker, since `done` was read
            conn.execute("COMMIT")
            continue
        if _statements(sql):
            conn.execute(sql)
        conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", [path.stem])
        conn.execute("COMMIT")
        applied.append(path.stem)
        log.debug("applied migration %s", path.stem)
    views = sorted((base / "views").glob("*.sql"))
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in views)).hexdigest()[:16]
    if f"views:{digest}" not in done:
        conn.execute("BEGIN TRANSACTION")
        if _applied(conn, f"views:{digest}"):
            conn.execute("COMMIT")
            return applied
        for path in views:
            conn.execute(path.read_text(encoding="utf-8"))
        conn.execute("DELETE FROM schema_migrations WHERE name LIKE 'views:%'")
        conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", [f"views:{digest}"])
        conn.execute("COMMIT")
    return applied
