"""The two measured programs: our `etl sync` and the dlt peer, each in its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from bench.procs import REPO, Measured, Sandbox, delta, measure
from etl.config import SyncSettings


@dataclass(frozen=True)
class EtlConfig:
    """The `config.toml` keys a scenario sets (everything else is the project default)."""

    requests_per_second: float = 1000.0
    max_in_flight: int = 8
    page_size: int = 100
    backfill_days: int = 180
    batch_records: int = SyncSettings().batch_records
    overrides: tuple[tuple[str, str], ...] = ()
    """More `section.key` settings, as written on a command line (`warehouse.threads=2`)."""
    code: Path | None = None
    """Another checkout of this project to run `etl` from (comparing builds); None: this one.

    `python -m etl` imports from its working directory first, so running it there is enough.
    """

    def toml(self) -> str:
        sections: dict[str, dict[str, Any]] = {
            "sync": {
                "backfill_days": self.backfill_days,
                "page_size": self.page_size,
                "batch_records": self.batch_records,
            },
            "limits": {
                "requests_per_second": self.requests_per_second,
                "max_in_flight": self.max_in_flight,
            },
            "log": {"level": "WARNING"},
        }
        for dotted, value in self.overrides:
            section, _, key = dotted.partition(".")
            sections.setdefault(section, {})[key] = _toml_value(value)
        return "\n".join(
            f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in keys.items())
            for name, keys in sections.items()
        )


def _toml_value(text: str) -> Any:
    """A command-line value as TOML would read it: a number, a boolean, or a string."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return {"true": True, "false": False}.get(text, text)


@dataclass
class RunResult:
    """One measured run of either program against one sandbox."""

    program: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    served: dict[str, int]  # what the sandbox answered during the run, by status
    records: int = 0  # items extracted (ours: etl_runs.streams; dlt: rows of top-level tables)
    status: str = ""
    requests: int = 0  # as the client counted them (ours: etl_runs.requests)
    retries: int = 0
    rate_limited: int = 0  # 429s the client saw (ours: etl_runs.rate_limited)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def pages(self) -> int:
        """API requests the sandbox answered with 200 during the run."""
        return self.served.get("200", 0)

    @property
    def served_429(self) -> int:
        return self.served.get("429", 0)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["pages"] = self.pages
        data["served_429"] = self.served_429
        return data


class Runner:
    """Runs the programs with a shared work directory and token; numbers every run."""

    def __init__(self, workdir: Path, token: str) -> None:
        self.workdir = workdir
        self.token = token
        self._n = 0

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"{self._n:03d}-{stem}"

    def fresh_db(self, stem: str) -> Path:
        db = self.workdir / f"{self._name(stem)}.duckdb"
        db.unlink(missing_ok=True)
        return db

    def etl_sync(
        self,
        sandbox: Sandbox,
        config: EtlConfig,
        db: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> RunResult:
        """`etl sync` against `sandbox` into `db` (fresh unless given), plus `extra` flags."""
        name = self._name("etl")
        if db is None:
            db = self.workdir / f"{name}.duckdb"
            db.unlink(missing_ok=True)
        config_path = self.workdir / f"{name}.toml"
        config_path.write_text(config.toml())
        env = {**os.environ, "LD_API_TOKEN": self.token}
        cmd = [
            sys.executable, "-m", "etl", "sync",
            "--config", str(config_path), "--db", str(db), "--base-url", sandbox.url, "-q",
            *extra,
        ]  # fmt: skip
        before = sandbox.summary()
        measured = measure(cmd, env=env, logdir=self.workdir, name=name, cwd=config.code or REPO)
        served = delta(before, sandbox.summary())
        result = _result("ours", measured, served)
        _read_ledger(result, db)
        result.detail["db"] = str(db)
        return result

    def etl_sync_killed(
        self, sandbox: Sandbox, config: EtlConfig, db: Path, after_pages: int
    ) -> dict[str, int]:
        """`etl sync` into `db`, SIGKILLed after the sandbox served it `after_pages` pages.

        Returns what the sandbox answered during the run (see `delta`), and `killed` (1 when
        the kill landed before the run ended by itself).
        """
        name = self._name("etl-killed")
        config_path = self.workdir / f"{name}.toml"
        config_path.write_text(config.toml())
        env = {**os.environ, "LD_API_TOKEN": self.token}
        cmd = [
            sys.executable, "-m", "etl", "sync",
            "--config", str(config_path), "--db", str(db), "--base-url", sandbox.url, "-q",
        ]  # fmt: skip
        before = sandbox.summary()
        with (self.workdir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=config.code or REPO
            )
            try:
                while process.poll() is None:
                    pages = sandbox.summary().get("deploymentPages", 0)
                    if pages - before.get("deploymentPages", 0) >= after_pages:
                        process.send_signal(signal.SIGKILL)
                        break
                    time.sleep(0.01)
            finally:
                process.wait()
        served = delta(before, sandbox.summary())
        served["killed"] = int(process.returncode == -signal.SIGKILL)
        return served

    def dlt_peer(self, sandbox: Sandbox) -> RunResult:
        """The dlt `rest_api` pipeline against `sandbox` into a fresh DuckDB file."""
        name = self._name("dlt")
        db = self.workdir / f"{name}.duckdb"
        db.unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "bench.peer_dlt",
            "--base-url", sandbox.url, "--db", str(db),
            "--workdir", str(self.workdir / f"{name}-dlt"),
        ]  # fmt: skip
        env = {**os.environ, "LD_API_TOKEN": self.token}
        before = sandbox.summary()
        measured = measure(cmd, env=env, logdir=self.workdir, name=name)
        served = delta(before, sandbox.summary())
        result = _result("dlt", measured, served)
        result.requests = served.get("total", 0)
        result.rate_limited = result.served_429
        if result.ok:
            try:
                summary = json.loads(measured.stdout.strip().splitlines()[-1])
                counts = summary["row_counts"]
                result.detail["row_counts"] = counts
                result.records = sum(v for k, v in counts.items() if "__" not in k)
                result.status = "succeeded"
            except (ValueError, KeyError, IndexError) as exc:
                result.error = f"unreadable peer output: {exc}"
        return result


def _result(program: str, measured: Measured, served: dict[str, int]) -> RunResult:
    result = RunResult(
        program=program,
        wall_s=measured.wall_s,
        cpu_s=measured.cpu_s,
        peak_rss_mb=measured.peak_rss_mb,
        returncode=measured.returncode,
        served=served,
    )
    if measured.returncode != 0:
        result.error = f"exit {measured.returncode}: {measured.tail()}"
    return result


def _read_ledger(result: RunResult, db: Path) -> None:
    """Requests, retries, 429s and records of the latest run from `etl_runs` (read-only)."""
    if not db.exists():
        return
    try:
        conn = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        result.error = result.error or f"cannot open {db}: {exc}"
        return
    try:
        row = conn.execute(
            "SELECT status, requests, retries, rate_limited, streams FROM etl_runs "
            "ORDER BY ended_at DESC NULLS LAST, started_at DESC LIMIT 1"
        ).fetchone()
    except duckdb.Error as exc:
        result.error = result.error or f"etl_runs unreadable: {exc}"
        return
    finally:
        conn.close()
    if row is None:
        return
    status, requests, retries, rate_limited, streams = row
    result.status = str(status)
    result.requests = int(requests or 0)
    result.retries = int(retries or 0)
    result.rate_limited = int(rate_limited or 0)
    streams = json.loads(streams) if isinstance(streams, str) else (streams or {})
    result.detail["streams"] = {name: s.get("records", 0) for name, s in streams.items()}
    result.records = sum(int(s.get("records", 0)) for s in streams.values())
    errors = [e for s in streams.values() for e in s.get("errors", [])]
    if errors:
        result.detail["stream_errors"] = errors[:5]
