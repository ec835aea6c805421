"""Settings: `config.toml`, then command-line overrides, then the token from the environment.

Every section and key is validated (unknown keys are errors, so a typo never silently falls
back to a default) and any problem becomes one `ConfigError` naming the key. The token is
read from the environment variable the config names (default `LD_API_TOKEN`), held as a
`Secret`, and never accepted from a flag or the file.

Usage::

    settings = load_settings(Path("config.toml"), {"warehouse.path": "w.duckdb"}, os.environ)
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from etl.errors import ConfigError
from etl.secret import Secret


class Stream(StrEnum):
    """The streams a run can sync (`--stream NAME`)."""

    PROJECTS = "projects"
    ENVIRONMENTS = "environments"
    DEPLOYMENTS = "deployments"
    RELEASE_PIPELINES = "release_pipelines"
    RELEASE_PROGRESSIONS = "release_progressions"
    RELEASE_POLICIES = "release_policies"
    FLAGS = "flags"
    FLAG_STATUSES = "flag_statuses"
    FLAG_EVENTS = "flag_events"
    APPLICATIONS = "applications"
    TEAMS = "teams"
    INSIGHT_GROUPS = "insight_groups"
    INSIGHT_SCORES = "insight_scores"
    PULL_REQUESTS = "pull_requests"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSettings(_Section):
    """`[api]`: where the API is and how patiently to talk to it."""

    base_url: str = "https://app.launchdarkly.com"
    token_env: str = "LD_API_TOKEN"
    timeout_s: float = Field(60.0, gt=0)
    max_attempts: int = Field(6, ge=1, le=50)
    # The longest the server may make us wait (Retry-After, a spent window's reset) before
    # the run gives up with a message instead of sleeping: LaunchDarkly's windows are 10 s.
    max_wait_s: float = Field(300.0, gt=0)
    # Plain http sends the token readable by anyone on the path: only loopback (the
    # sandbox) may use it, unless this says otherwise (and every run then warns).
    allow_insecure_http: bool = False
    # A PEM file of the CAs to trust instead of the system's (a corporate TLS proxy's CA).
    # Certificates are always verified; there is deliberately no switch to turn that off.
    ca_bundle: Path | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if "@" in value.split("//", 1)[1].split("/", 1)[0]:
            raise ValueError("must not contain credentials; the token comes from the environment")
        return value.rstrip("/")


def is_loopback(url: str) -> bool:
    """Whether `url`'s host is this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_http(url: str) -> bool:
    """Whether `url` would carry the token unencrypted beyond this machine."""
    return urlsplit(url).scheme == "http" and not is_loopback(url)


def _check_transport(api: ApiSettings) -> None:
    """The TLS rule, before anything connects: https beyond loopback, a CA file that exists.

    Raises:
        ConfigError: naming the key.
    """
    if insecure_http(api.base_url) and not api.allow_insecure_http:
        raise ConfigError(
            f"api.base_url: {api.base_url} is plain http to another machine, which would send "
            "the token unencrypted; use https (or set api.allow_insecure_http = true)"
        )
    if api.ca_bundle is not None and not api.ca_bundle.is_file():
        raise ConfigError(f"api.ca_bundle: {api.ca_bundle} is not a file (a PEM file of CAs)")


class ScopeSettings(_Section):
    """`[scope]`: which projects, environments and applications to sync."""

    projects: list[str] = Field(default_factory=list)
    environments: dict[str, list[str]] = Field(default_factory=dict)
    application_keys: list[str] = Field(default_factory=list)


class SyncSettings(_Section):
    """`[sync]`: what to sync and how far back."""

    streams: list[Stream] = Field(default_factory=lambda: list(Stream))
    backfill_days: int = Field(180, ge=1)
    # Later runs re-read from the oldest deployment still running at the last run (it can
    # still change), but never from further back than this before the last run's end.
    lookback_hours: float = Field(192.0, ge=0)
    # All synced history is re-read once per this period, a slice per run (0: never): what
    # catches archiving and other late edits of finished deployments.
    reverify_days: float = Field(7.0, ge=0)
    # No longer used (every (project, environment) is read as one chain, newest first);
    # accepted so that existing config files still load.
    window_days: float | None = Field(None, gt=0)
    page_size: int = Field(100, ge=1, le=100)
    # Records per warehouse transaction, at most. At 7,000 records / 10 MB the large scale
    # synced as fast as at 5,000 / 8 MB and peaked ~22 MB higher.
    batch_records: int = Field(5000, ge=1)
    # A batch also closes at this many bytes of JSON, so one transaction's size does not
    # depend on how large the records are: 1,000 deployments of ~40 KB each (a monorepo's
    # metadata) in one batch could not be committed within `warehouse.memory_limit`.
    batch_bytes: int = Field(8_000_000, ge=100_000)


class LimitsSettings(_Section):
    """`[limits]`: how much of the server's budget to spend."""

    # The share of the server's advertised budgets (X-Ratelimit-* global and route limits,
    # per 10 s window) this tool may spend; the rest is left to the account's other tools.
    budget_share: float = Field(0.8, gt=0, le=1)
    # An absolute cap of our own, on top (None: only the server's budget paces us).
    requests_per_second: float | None = Field(None, gt=0)
    max_in_flight: int = Field(8, ge=1, le=256)


SIZE = r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$"
_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def size_bytes(text: str) -> int:
    """A `SIZE` as DuckDB reads it (`64MB`, `1.5 GiB`; KB/MB/GB are powers of 1000)."""
    match = re.fullmatch(SIZE, text)
    if match is None:
        raise ValueError(f"not a size: {text!r}")
    unit = match.group(2)
    return int(float(text[: match.start(2)]) * _UNITS[unit])


class WarehouseSettings(_Section):
    """`[warehouse]`: the DuckDB file."""

    path: Path = Path("warehouse.duckdb")
    # DuckDB checkpoints when its write-ahead log passes this size; until then the logged
    # rows are held in memory, so this bounds what a long sync holds (large scale: ~505 MB
    # peak at 128MB, ~445 MB at 16MB, for ~5% more time).
    checkpoint_threshold: str = Field("16MB", pattern=SIZE)
    # Rows per DuckDB row group in the tables the sync writes. A checkpoint rewrites the
    # last, partly filled row group of every table it appends to; at DuckDB's default
    # (122,880 rows, ~170 MB of deployment JSON) each checkpoint cost time and memory that
    # grew with the table until the group filled. 16,384 rows bound it at ~23 MB (large
    # scale at 128MB checkpoints: ~575 → ~505 MB peak, ~5% slower).
    row_group_size: int = Field(16_384, ge=2_048)
    # DuckDB's worker threads for the sync's writes. One batch's merge gains little from
    # more, and the cores are better left to Polars and the event loop (large sync on
    # 2 cores: 6.3 s with 1 thread, 6.8 s with DuckDB's default of one per core).
    threads: int = Field(1, ge=1)
    # DuckDB's memory for the sync's connection, at least: its cache, and what a checkpoint
    # needs. Unbounded, the cache grows with the warehouse (a re-read of the large scale into
    # an existing file peaked at 1.08 GB, against 0.79 GB with a limit). A checkpoint holds
    # 2,048 values of a column at once, so a run that meets larger records raises the limit
    # to what they need (`warehouse.memory_for_records`): ~40 KB deployments need ~90 MB. At
    # 64MB a large sync peaks ~14 MB lower than at 80MB; DuckDB then spills a few MB of rows
    # it has not checkpointed yet to disk, which cost ~0.1 s of a ~5 s sync.
    memory_limit: str = Field("64MB", pattern=SIZE)
    # A DuckLake (`path = "ducklake:postgres:<conninfo>"`, docs/scale-out.md): where its
    # Parquet files go (a directory, or s3://… through httpfs), the environment variable that
    # holds the PostgreSQL password (never the config), and where DuckDB's ducklake and
    # postgres extensions are installed from their PyPI packages.
    data_path: str | None = None
    password_env: str = Field("PGPASSWORD", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    extension_directory: Path | None = None
    # An `s3://` data path on any S3-compatible store (etl/warehouse/ducklake_s3.py). The keys
    # are never settings: "env" reads the standard AWS variables, "credential_chain" DuckDB's
    # aws chain (variables, ~/.aws files, SSO, STS web identity, the instance's role).
    s3_credentials: Literal["env", "credential_chain"] = "env"
    s3_endpoint: str | None = None  # host[:port] of MinIO, R2, Ceph…; None: AWS
    s3_region: str | None = None  # None: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
    s3_url_style: Literal["vhost", "path"] | None = None  # None: DuckDB's (vhost)
    s3_use_ssl: bool | None = None  # None: true, or as s3_endpoint's http(s):// says
    # How long a lake writer keeps retrying a write while its PostgreSQL catalog or object
    # store does not answer, before the run fails naming it (etl/warehouse/ducklake_outage.py).
    outage_retry_s: float = Field(30.0, ge=0)

    @field_validator("path", mode="before")
    @classmethod
    def _lake_conninfo(cls, value: Any) -> Any:
        """A DuckLake's conninfo: key=value form, and never a password (it would be logged)."""
        text = str(value)
        if text.startswith("ducklake:"):
            if "//" in text:
                raise ValueError(
                    "a DuckLake conninfo takes the key=value form "
                    "(ducklake:postgres:dbname=… host=… user=…), not a URL"
                )
            if re.search(r"password\s*=", text, re.I):
                raise ValueError(
                    "must not hold a password; it comes from the environment "
                    "(PGPASSWORD, or the variable warehouse.password_env names)"
                )
        return value


def _valid_cron(value: str | None) -> str | None:
    """`value` if it is a 5-field cron expression (or None); else ValueError naming why."""
    if value is not None:
        from etl.cron import cron_trigger

        cron_trigger(value)
    return value


class LakeSettings(_Section):
    """`[lake]`: maintenance of a DuckLake (`etl lake maintain`, docs/scale-out.md)."""

    # Snapshots older than this are expired (never the one readers are pinned to, nor one a
    # running run started after); the files only they referenced are then deleted.
    keep_snapshots_days: float = Field(7.0, ge=0)
    # `etl schedule` also runs `etl lake maintain` at these times (5-field cron, UTC).
    maintain_cron: str | None = None

    @field_validator("maintain_cron")
    @classmethod
    def _maintain_cron(cls, value: str | None) -> str | None:
        return _valid_cron(value)


class LogSettings(_Section):
    """`[log]`: verbosity and format."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json", "auto"] = "text"
    progress: Literal["auto", "live", "lines", "off"] = "auto"


class ScheduleSettings(_Section):
    """`[schedule]`: when `etl schedule` runs a sync (UTC), one run at a time."""

    cron: str | None = None
    every_minutes: float | None = Field(None, ge=0.1)
    misfire_grace_s: int = Field(600, ge=1)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return _valid_cron(value)

    @model_validator(mode="after")
    def _one_of(self) -> ScheduleSettings:
        if self.cron is not None and self.every_minutes is not None:
            raise ValueError("set cron or every_minutes, not both")
        return self


class FileSettings(_Section):
    """Everything `config.toml` may hold."""

    api: ApiSettings = Field(default_factory=ApiSettings)
    scope: ScopeSettings = Field(default_factory=ScopeSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)


class Settings(FileSettings):
    """The resolved settings of one run: file + overrides + token + time range."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    token: Secret
    since: datetime | None = None
    until: datetime | None = None

    def backfill_start(self, now: datetime) -> datetime:
        """Where a partition with no state starts: `--since`, else now − backfill_days."""
        return self.since or now - timedelta(days=self.sync.backfill_days)


# LaunchDarkly access tokens are `api-` and a UUID (40 characters). Anything much shorter is
# a placeholder or a typo; refusing it also keeps the log filter's whole-token match from
# ever matching an ordinary word.
MIN_TOKEN_LENGTH = 20
_NOT_ACCESS_TOKENS = {"sdk-": "an SDK key", "mob-": "a mobile key"}


def check_token(token: str, token_env: str) -> None:
    """Refuse a value that cannot be a LaunchDarkly access token, without printing it.

    Raises:
        ConfigError: naming the variable and what is wrong with its value.
    """
    for prefix, what in _NOT_ACCESS_TOKENS.items():
        if token.startswith(prefix):
            raise ConfigError(
                f"environment variable {token_env} holds {what} ({prefix}…); the REST API "
                "needs an access token (api-…, Account settings → Authorization)"
            )
    if len(token) < MIN_TOKEN_LENGTH or any(char.isspace() for char in token):
        raise ConfigError(
            f"environment variable {token_env} does not hold an access token: "
            f"{len(token)} characters{' with spaces' if any(c.isspace() for c in token) else ''}"
            f", a LaunchDarkly access token is api- and 36 more (at least {MIN_TOKEN_LENGTH} "
            "accepted)"
        )


def parse_when(text: str, flag: str) -> datetime:
    """An ISO date or datetime as an aware UTC datetime (naive input is taken as UTC)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{flag}: {text!r} is not an ISO date or datetime (e.g. 2026-01-31 or "
            "2026-01-31T12:00:00Z)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    section, _, key = dotted.partition(".")
    data.setdefault(section, {})
    if not isinstance(data[section], dict):
        raise ConfigError(f"config: [{section}] must be a table")
    data[section][key] = value


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    problem = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{source}: {key}: {problem}{more}"


def load_file_settings(path: Path | None, overrides: Mapping[str, Any]) -> FileSettings:
    """Read `path` (optional) and apply `section.key` overrides; no token needed.

    Raises:
        ConfigError: naming the file, key and problem.
    """
    source = str(path) if path else "defaults"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for dotted, value in overrides.items():
        if value is not None:
            _set_dotted(data, dotted, value)
    try:
        settings = FileSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    _check_transport(settings.api)
    return settings


def load_settings(
    path: Path | None,
    overrides: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    since: str | None = None,
    until: str | None = None,
) -> Settings:
    """Everything a run needs: the file and overrides, the token from `environ`, the range.

    Raises:
        ConfigError: naming the file, key and problem; or the missing environment variable.
    """
    file_settings = load_file_settings(path, overrides)
    token_env = file_settings.api.token_env
    token = environ.get(token_env, "").strip()
    if not token:
        raise ConfigError(f"environment variable {token_env} is not set (it holds the API token)")
    check_token(token, token_env)
    since_at = parse_when(since, "--since") if since else None
    until_at = parse_when(until, "--until") if until else None
    if since_at and until_at and since_at >= until_at:
        raise ConfigError("--since must be earlier than --until")
    return Settings(
        **file_settings.model_dump(), token=Secret(token), since=since_at, until=until_at
    )
