"""When a lake's services go away: which one, and how long a writer waits for it to return.

A lake depends on two services besides the API: the PostgreSQL catalog and the store under
the data path (a directory, or S3 over HTTP). A write that fails because one of them did not
answer is rolled back whole (a DuckLake commit is one PostgreSQL transaction; Parquet files
written for a commit that never happened are orphans, never read, removed by
`etl lake maintain`). It is then tried again, with backoff, for up to
`warehouse.outage_retry_s` (default 30 s: a restarted PostgreSQL or a store's failover takes
a few seconds); after that the run fails with one line naming the service. DuckDB reconnects
to PostgreSQL by itself once it is back.
"""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit

# libpq's and DuckDB's postgres extension's words for a server that is not there (refused,
# restarted, shutting down, a dropped connection).
_CATALOG_DOWN = re.compile(
    r"Unable to connect to Postgres|server closed the connection|terminating connection|"
    r"connection to server .*failed|no connection to the server|"
    r"could not (?:receive|send) data (?:from|to) server|SSL SYSCALL error|"
    r"the database system is (?:starting up|shutting down|in recovery mode)|"
    # a commit whose connection a restart cut: even its ROLLBACK fails, with no reason
    r'Failed to execute query "(?:ROLLBACK|COMMIT|BEGIN[^"]*)": *$',
    re.I | re.M,
)
# httpfs's words for an object store that did not answer, or answered with a server error.
_STORE_DOWN = re.compile(
    r"error for HTTP [A-Z]+ to|HTTP Error|HTTP (?:GET|PUT|POST|HEAD|DELETE) error|"
    r"\bHTTP 5\d\d\b|Could not connect to server|Connection timed out",
    re.I,
)
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 5.0


# DuckDB's words for an instance an internal error made unusable (seen when PostgreSQL went
# away in the middle of a DuckLake query): the writer opens a new one.
INVALIDATED = re.compile(r"database has been invalidated", re.I)
PROBE_TIMEOUT_S = 2.0


def _host_port(conninfo: str) -> tuple[str, int]:
    fields = dict(re.findall(r"(\w+)\s*=\s*(\S+)", conninfo))
    return fields.get("host", "localhost"), int(fields.get("port", "5432"))


def _answers(host: str, port: int) -> bool:
    """Whether anything accepts a TCP connection there (a socket path counts as yes)."""
    if host.startswith("/"):
        return True
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _endpoint(endpoint: str | None) -> tuple[str, int] | None:
    if not endpoint:
        return None
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    if parts.hostname is None:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def service_down(
    error: BaseException, conninfo: str, data_path: str | None, endpoint: str | None = None
) -> str | None:
    """The service `error` says did not answer, named for a person; None: not an outage.

    An error that does not say (a commit that failed with an empty reason) is checked by
    connecting to the catalog, and to the store's endpoint when one is set.
    """
    text = str(error)
    host, port = _host_port(conninfo)
    catalog = f"the PostgreSQL catalog ({host}:{port})"
    store = f"the object store ({data_path or 'the data path'})"
    if _CATALOG_DOWN.search(text):
        return catalog
    if _STORE_DOWN.search(text):
        return store
    if not _answers(host, port):
        return catalog
    at = _endpoint(endpoint)
    if at is not None and not _answers(*at):
        return store
    return None


class OutageClock:
    """How long one service has been failing a writer's work, and the next pause."""

    def __init__(self, bound_s: float) -> None:
        self.bound_s = bound_s
        self._since: float | None = None
        self._pauses = 0

    def waited(self) -> float:
        """Seconds since the outage was first met (0 when none is going on)."""
        return 0.0 if self._since is None else time.monotonic() - self._since

    def next_pause(self) -> float | None:
        """Seconds to wait before trying again; None: the bound is spent, give up."""
        if self._since is None:
            self._since = time.monotonic()
        left = self.bound_s - self.waited()
        if left <= 0:
            return None
        pause = min(MAX_PAUSE_S, FIRST_PAUSE_S * (1 << self._pauses), left)
        self._pauses += 1
        return pause

    def reset(self) -> None:
        """The service answered: the next outage starts a new clock."""
        self._since, self._pauses = None, 0
