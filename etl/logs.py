"""Logging: text for people, one JSON object per line for machines, the token never shown.

Records carry structured fields next to their message, passed as `extra`:
`event` (what happened: `run_started`, `stream_finished`, …), `stream`, and `counts` (a
dict of numbers). The run id comes from a context variable that `sync` sets, so every
record logged while a run is under way names it without each call passing it along.

The token is kept out of records in the first place (it lives in a `Secret` that prints as
`***`, and only the HTTP client's header reads it). As a last line of defence the handler
replaces the whole token wherever it appears in a finished line. Tokens shorter than
`config.MIN_TOKEN_LENGTH` are refused at start-up, so the whole token can never be a piece
of an ordinary word (a one-letter token once turned every "t" of the log into `***`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

from etl.secret import Secret

LogFormat = Literal["text", "json", "auto"]

RUN_ID: ContextVar[str | None] = ContextVar("etl_run_id", default=None)

# The attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


@contextmanager
def run_context(run_id: str) -> Iterator[None]:
    """Within the block (and tasks started in it), records name `run_id`."""
    reset = RUN_ID.set(run_id)
    try:
        yield
    finally:
        RUN_ID.reset(reset)


def event(
    name: str, *, stream: str | None = None, **counts: int | float | str | None
) -> dict[str, Any]:
    """The `extra` of a structured record: `log.info("...", extra=event("run_finished", ...))`."""
    fields: dict[str, Any] = {"event": name}
    if stream is not None:
        fields["stream"] = stream
    if counts:
        fields["counts"] = counts
    return fields


class _RunId(logging.Filter):
    """Stamps the current run id on each record (None outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "run_id"):
            record.run_id = RUN_ID.get()
        return True


class _TextFormatter(logging.Formatter):
    """`time level logger: message` with the run id, stream and counts appended when set."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        counts = getattr(record, "counts", None)
        if isinstance(counts, Mapping) and counts:
            line += " (" + ", ".join(f"{key}={value}" for key, value in counts.items()) + ")"
        return line


class _JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, event, run_id, stream, message, counts."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", "message"),
            "run_id": getattr(record, "run_id", None),
            "stream": getattr(record, "stream", None),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class _Redacting(logging.Formatter):
    """Wraps a formatter; replaces the whole token in each finished line, tracebacks included."""

    def __init__(self, inner: logging.Formatter, secret: Secret) -> None:
        super().__init__()
        self._inner = inner
        self._value = secret.reveal()

    def format(self, record: logging.LogRecord) -> str:
        line = self._inner.format(record)
        return line.replace(self._value, "***") if self._value else line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of each record.

    A live progress display swaps `sys.stderr` for a proxy that prints above it; a handler
    holding the original stream would draw log lines through the display.
    """

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current stderr."""


def resolve_format(fmt: LogFormat) -> Literal["text", "json"]:
    """`auto` is JSON when stderr is not a terminal (a scheduler's log), text when it is."""
    if fmt == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return fmt


def configure_logging(
    level: str,
    secret: Secret | None = None,
    fmt: LogFormat = "text",
    more_secrets: Sequence[Secret] = (),
) -> None:
    """Log to stderr at `level` in `fmt`; quiet the libraries' chatter below WARNING.

    `secret` (the API token) and `more_secrets` (a DuckLake catalog's database password)
    are replaced wherever they appear in a line.
    """
    handler = _StderrHandler()
    formatter: logging.Formatter = (
        _JsonFormatter() if resolve_format(fmt) == "json" else _TextFormatter()
    )
    for hidden in (secret, *more_secrets):
        if hidden:
            formatter = _Redacting(formatter, hidden)
    handler.setFormatter(formatter)
    handler.addFilter(_RunId())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
