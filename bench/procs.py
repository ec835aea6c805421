"""Process control: the sandbox in its own process, and measured child processes.

Every measured program (`etl sync`, the dlt peer) runs as a child of this process. Its CPU
time is `ru_utime + ru_stime` from `os.wait4`; its peak RSS is `VmHWM` polled from /proc
while it runs (see `measure`); wall time is `perf_counter` from spawn to reap, so interpreter
start-up and imports are included, as a user running the command would see them.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Measured:
    """One finished child process."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def tail(self, lines: int = 5) -> str:
        """The last lines of stderr (for error reports)."""
        return "\n".join(self.stderr.strip().splitlines()[-lines:])


def _vm_hwm_kib(pid: int) -> int | None:
    """The process's peak resident set so far (`VmHWM` in /proc/PID/status), in KiB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def measure(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    logdir: Path,
    name: str,
    cwd: Path = REPO,
) -> Measured:
    """Run `cmd` to completion; return its wall time, CPU time, peak RSS and output.

    Peak RSS is the child's `VmHWM`, polled every 20 ms while it runs. `ru_maxrss` from
    `wait4` is not used for it: Linux folds the memory of the process that forked the child
    (this one, which may hold captured pages and an in-process DuckDB) into the child's
    `ru_maxrss` at `exec`, so a 250 MB sync could report 800 MB.
    """
    out_path, err_path = logdir / f"{name}.out", logdir / f"{name}.err"
    peak_kib = 0
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_kib = max(peak_kib, _vm_hwm_kib(proc.pid) or 0)
            time.sleep(0.02)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if not peak_kib:  # /proc unavailable: fall back to wait4's (over-)estimate
        peak_kib = usage.ru_maxrss
    return Measured(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peak_kib / 1024,
        returncode=proc.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


class SandboxError(RuntimeError):
    """The sandbox did not start or did not answer."""


class Sandbox:
    """`etl sandbox` in a separate process on a free loopback port.

    Usage::

        with Sandbox(scale="medium", token=t, logdir=d, rate=20) as sandbox:
            before = sandbox.summary()
            ...
    """

    def __init__(
        self,
        *,
        scale: str,
        token: str,
        logdir: Path,
        seed: int = 42,
        now_ms: int | None = None,
        rate: float | None = None,
        rate_window_s: float = 10.0,
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        start_timeout_s: float = 180.0,
    ) -> None:
        self.scale = scale
        self.token = token
        self.rate = rate
        self.rate_window_s = rate_window_s
        self.latency_ms = latency_ms
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._timeout = start_timeout_s
        cmd = [
            sys.executable, "-m", "etl", "sandbox",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--seed", str(seed), "--scale", scale, "--token", token,
            "--latency-ms", str(latency_ms), "--fault-rate", str(fault_rate),
            "--rate-window", str(rate_window_s),
        ]  # fmt: skip
        if rate is not None:
            cmd += ["--rate", str(rate)]
        if now_ms is not None:
            cmd += ["--now-ms", str(now_ms)]
        self._cmd = cmd
        self._log = logdir / f"sandbox-{scale}-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        started = time.perf_counter()
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(self._cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = started + self._timeout
        while time.perf_counter() < deadline:
            if self._proc.poll() is not None:
                raise SandboxError(
                    f"sandbox exited with {self._proc.returncode}: {self._log.read_text()[-800:]}"
                )
            try:
                self._get("/")
            except OSError:
                time.sleep(0.1)
                continue
            self.startup_s = time.perf_counter() - started
            return
        self.stop()
        raise SandboxError(f"sandbox did not answer within {self._timeout:.0f}s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _request(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": self.token}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def _get(self, path: str) -> Any:
        return self._request(path)

    def summary(self) -> dict[str, Any]:
        """Request totals so far (`/_sandbox/requests/summary`): total, byStatus, byFault."""
        return dict(self._get("/_sandbox/requests/summary"))

    def counts(self) -> dict[str, int]:
        """What the sandbox holds (`/_sandbox/truth/counts`)."""
        return dict(self._get("/_sandbox/truth/counts"))

    def advance(self, now_ms: int | None = None) -> dict[str, int]:
        """One deterministic small change up to `now_ms` (`POST /_sandbox/advance`)."""
        query = f"?now_ms={now_ms}" if now_ms is not None else ""
        return dict(self._request(f"/_sandbox/advance{query}", method="POST"))

    def wait_for_window(self) -> float:
        """Sleep until a fresh rate-limit window opens; return the seconds slept.

        The sandbox's windows are aligned to the epoch (`floor(now / window)`), so a run that
        starts just after a boundary gets a full, unused budget and the measurement does not
        depend on what the previous run left in its last window.
        """
        window = self.rate_window_s
        now = time.time()
        wait = (math.floor(now / window) + 1) * window - now + 0.01
        time.sleep(wait)
        return wait


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Requests the sandbox answered between two summaries, by status (e.g. {"200": 317}),
    with `total` and `deploymentPages` (200 answers of the deployments listing)."""
    statuses = set(before.get("byStatus", {})) | set(after.get("byStatus", {}))
    counts = {
        status: int(after.get("byStatus", {}).get(status, 0))
        - int(before.get("byStatus", {}).get(status, 0))
        for status in statuses
    }
    for key in ("total", "deploymentPages"):
        counts[key] = int(after.get(key, 0)) - int(before.get(key, 0))
    return {key: value for key, value in counts.items() if value}
