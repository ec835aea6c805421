"""`etl doctor`: is everything a sync needs in place? One row per check, a fix for each failure.

The checks run in order and a check whose premise failed is skipped (no API calls without a
valid token): config → token → API reachable → each configured project → each beta route
the configured streams use → warehouse path writable and its schema → disk space. Each API
check is one cheap request (`limit=1`), paced by the same rate limiter as a sync, and never
retried: a doctor should answer quickly and spend almost none of the rate budget.
The token is checked for presence and shape but never printed.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb

from etl.client import ApiClient, RetryPolicy
from etl.config import FileSettings, Stream, check_token, load_file_settings
from etl.errors import ApiError, AuthError, ConfigError, DataError, EtlError
from etl.extract.family import Probe
from etl.extract.registry import EXTRACTS
from etl.extract.streams import ENVIRONMENTS, PROGRESSIONS, PROJECTS
from etl.paginate import PageRequest
from etl.ratelimit import RateLimiter
from etl.resources import sql_dir
from etl.secret import Secret

Outcome = Literal["ok", "warn", "FAIL", "skipped"]

# Below this much free space next to the warehouse, a sync may not be able to write.
MIN_FREE_BYTES = 500 * 10**6
# A doctor's request waits at most this long (a sync's own timeout may be a minute).
CHECK_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table."""

    name: str
    outcome: Outcome
    detail: str
    fix: str = ""


class _Checks:
    def __init__(self) -> None:
        self.rows: list[Check] = []

    def add(self, name: str, outcome: Outcome, detail: str, fix: str = "") -> bool:
        self.rows.append(Check(name, outcome, detail, fix))
        return outcome in ("ok", "warn")

    def skip(self, name: str, because: str) -> None:
        self.rows.append(Check(name, "skipped", because))


def _check_config(checks: _Checks, config: Path | None) -> FileSettings | None:
    try:
        settings = load_file_settings(config, {})
    except ConfigError as exc:
        checks.add(
            "config", "FAIL", str(exc), "correct the key named (every key is described in "
            "config.toml and the README)",
        )  # fmt: skip
        return None
    checks.add("config", "ok", f"{config or 'defaults (no config.toml here)'} is valid")
    return settings


def _check_token(checks: _Checks, file: FileSettings, environ: Mapping[str, str]) -> Secret | None:
    name = file.api.token_env
    value = environ.get(name, "").strip()
    if not value:
        checks.add(
            "token", "FAIL", f"environment variable {name} is not set",
            f"export {name}=api-... (an access token with read access; LaunchDarkly → "
            "Account settings → Authorization)",
        )  # fmt: skip
        return None
    try:
        check_token(value, name)
    except ConfigError as exc:
        checks.add("token", "FAIL", str(exc), f"put a LaunchDarkly access token in {name}")
        return None
    checks.add("token", "ok", f"{name} is set ({len(value)} characters, not shown)")
    return Secret(value)


async def _get(
    api: ApiClient,
    path: str,
    params: dict[str, str],
    *,
    route: str,
    beta: bool,
    stream: str,
    whole: bool = False,
) -> tuple[dict[str, Any], list[Any]]:
    request = PageRequest(path, params)
    page = await api.get_page(request, route=route, beta=beta, stream=stream, whole=whole)
    return dict(page.body), list(page.items)


def _api_fix(exc: EtlError, what: str) -> str:
    if isinstance(exc, DataError) or not isinstance(exc, ApiError):
        return "the answer is not LaunchDarkly's: check [api] base_url"
    if isinstance(exc, AuthError):
        return "the token was rejected: create a new access token and put it in the variable"
    if exc.status == 403:
        return f"give the token's role read access to {what} (a reader role, or a custom role)"
    if exc.status == 404:
        return f"check the key in config.toml [scope]; {what} was not found"
    if exc.status == 429:
        return "the rate limit is spent by other tools; try again in a minute"
    if exc.status is None:
        return "check [api] base_url, the network, proxy and TLS settings"
    return "the API answered with an error; try again, or see status.launchdarkly.com"


async def _check_api(checks: _Checks, file: FileSettings, token: Secret) -> None:
    limiter = RateLimiter(file.limits.requests_per_second, 1)
    retry = RetryPolicy(max_attempts=1, max_rate_limited=0)
    timeout = min(CHECK_TIMEOUT_S, file.api.timeout_s)
    api = ApiClient(
        file.api.base_url, token, limiter, timeout_s=timeout, retry=retry, max_connections=1
    )
    async with api:
        started = time.monotonic()
        try:
            body, items = await _get(
                api, PROJECTS, {"limit": "1"}, route=PROJECTS, beta=False, stream="projects"
            )
        except EtlError as exc:
            checks.add("API reachable", "FAIL", str(exc), _api_fix(exc, "projects"))
            return
        took = (time.monotonic() - started) * 1000
        total = body.get("totalCount", len(items))
        checks.add(
            "API reachable", "ok",
            f"{file.api.base_url} answered in {took:.0f} ms; the token sees {total} project(s)",
        )  # fmt: skip
        projects = list(file.scope.projects)
        if not projects:
            projects = [_key(item) for item in items if _key(item)]
            if not projects:
                checks.add(
                    "projects", "FAIL", "the token sees no project",
                    "give the token's role read access to the projects to sync",
                )  # fmt: skip
                return
            checks.add(
                "projects", "ok", f"all projects (none listed in [scope]); checking {projects[0]!r}"
            )
        account_checked: set[str] = set()
        for project in projects:
            await _check_project(checks, api, file, project, account_checked)


def _key(item: Any) -> str:
    from etl.rawjson import decode

    record = decode(item)
    return str(record.get("key", "")) if isinstance(record, dict) else ""


async def _check_project(
    checks: _Checks, api: ApiClient, file: FileSettings, project: str, account_checked: set[str]
) -> None:
    """The project's routes; the account's routes only if no earlier project checked them."""
    name = f"project {project}"
    try:
        _, items = await _get(
            api, ENVIRONMENTS.format(projectKey=project), {"limit": "1"},
            route=ENVIRONMENTS, beta=False, stream="environments",
        )  # fmt: skip
    except EtlError as exc:
        checks.add(name, "FAIL", str(exc), _api_fix(exc, f"project {project!r}"))
        return
    environments = file.scope.environments.get(project) or [_key(item) for item in items]
    checks.add(
        name, "ok", "readable" + (f"; environment {environments[0]!r}" if environments else "")
    )
    streams = frozenset(file.sync.streams)
    now = datetime.now(UTC)
    probes: list[Probe] = []
    for extract in EXTRACTS:
        if extract.streams & streams:
            probes.extend(extract.probes(project, environments, streams, now))
    for probe in probes:
        label = probe.label
        check = (label if probe.account else f"{project}: {label}") + (
            " (beta)" if probe.beta else ""
        )
        if probe.account:
            if check in account_checked:
                continue
            account_checked.add(check)
        try:
            _, items = await _get(
                api, probe.path, probe.params, route=probe.route, beta=probe.beta,
                stream=probe.stream.value, whole=probe.whole,
            )  # fmt: skip
        except EtlError as exc:
            checks.add(check, "FAIL", str(exc), _api_fix(exc, label))
            continue
        checks.add(check, "ok", "readable")
        pipelines = probe.stream is Stream.RELEASE_PIPELINES
        if pipelines and Stream.RELEASE_PROGRESSIONS in streams and items:
            await _check_releases(checks, api, project, _key(items[0]))


async def _check_releases(checks: _Checks, api: ApiClient, project: str, pipeline: str) -> None:
    """The releases of one pipeline the token read: a route that needs a pipeline's key."""
    path = PROGRESSIONS.format(projectKey=project, pipelineKey=pipeline)
    check = f"{project}: releases (beta)"
    try:
        await _get(
            api, path, {"limit": "1"}, route=PROGRESSIONS, beta=True,
            stream="release_progressions",
        )  # fmt: skip
    except EtlError as exc:
        checks.add(check, "FAIL", str(exc), _api_fix(exc, "releases"))
    else:
        checks.add(check, "ok", f"readable (pipeline {pipeline!r})")


def _check_warehouse(checks: _Checks, path: Path) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    existing = next((p for p in [directory, *directory.parents] if p.exists()), Path("/"))
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is not a directory")
        probe_dir = directory if directory.exists() else existing
        with tempfile.NamedTemporaryFile(dir=probe_dir, prefix=".etl-doctor-"):
            pass
    except OSError as exc:
        checks.add(
            "warehouse writable", "FAIL", f"{path}: {exc.strerror or exc}",
            "set [warehouse] path (or --db) to a file in a directory this user can write",
        )  # fmt: skip
        return
    checks.add("warehouse writable", "ok", f"{path} (directory {probe_dir} is writable)")
    _check_schema(checks, path)
    usage = shutil.disk_usage(probe_dir)
    size = path.stat().st_size if path.exists() else 0
    needed = max(MIN_FREE_BYTES, 2 * size)
    detail = f"{usage.free / 1e9:.1f} GB free on the warehouse's filesystem"
    if usage.free < needed:
        checks.add(
            "disk space", "FAIL", f"{detail}; a sync needs about {needed / 1e9:.1f} GB",
            "free space there, or move [warehouse] path to a larger filesystem",
        )  # fmt: skip
    else:
        checks.add("disk space", "ok", detail)


def _check_schema(checks: _Checks, path: Path) -> None:
    from etl.warehouse import open_reader

    latest = max((p.stem for p in (sql_dir() / "migrations").glob("*.sql")), default="")
    if not path.exists():
        checks.add(
            "warehouse schema", "ok", f"no warehouse yet; the first sync creates it ({latest})"
        )
        return
    try:
        conn = open_reader(path)
    except EtlError as exc:
        checks.add(
            "warehouse schema",
            "FAIL",
            str(exc),
            "wait for the running sync to end, or check the file",
        )
        return
    try:
        rows = conn.execute("SELECT max(name) FROM schema_migrations").fetchall()
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        checks.add(
            "warehouse schema", "FAIL", f"{path} is not an etl warehouse: {reason}",
            "point [warehouse] path at the etl warehouse, or at a new file",
        )  # fmt: skip
        return
    finally:
        conn.close()
    version = rows[0][0] if rows else None
    if version == latest:
        checks.add("warehouse schema", "ok", f"{version} (current)")
    elif version and version < latest:
        checks.add("warehouse schema", "warn", f"{version}; the next sync upgrades it to {latest}")
    else:
        checks.add(
            "warehouse schema", "FAIL", f"{version}: newer than this etl ({latest})",
            "upgrade etl to the version that wrote this warehouse",
        )  # fmt: skip


async def run_doctor(
    config: Path | None, environ: Mapping[str, str], *, db: Path | None = None,
    base_url: str | None = None,
) -> list[Check]:  # fmt: skip
    """Every check, in order; a check whose premise failed is skipped."""
    checks = _Checks()
    file = _check_config(checks, config)
    if file is None:
        for name in ("token", "API reachable", "warehouse writable"):
            checks.skip(name, "the config is not valid")
        return checks.rows
    overrides: dict[str, Any] = {}
    if base_url:
        overrides["api"] = file.api.model_copy(update={"base_url": base_url.rstrip("/")})
    if db:
        overrides["warehouse"] = file.warehouse.model_copy(update={"path": db})
    file = file.model_copy(update=overrides)
    token = _check_token(checks, file, environ)
    if token is None:
        checks.skip("API reachable", "no usable token")
    else:
        await _check_api(checks, file, token)
    if str(file.warehouse.path).startswith("ducklake:"):
        from etl.doctor_lake import check_lake

        await asyncio.to_thread(check_lake, checks.add, file.warehouse)
    else:
        await asyncio.to_thread(_check_warehouse, checks, file.warehouse.path)
    return checks.rows


def failed(rows: list[Check]) -> bool:
    """Whether any check failed (warnings and skips do not count)."""
    return any(row.outcome == "FAIL" for row in rows)
