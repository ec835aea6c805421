"""Logging setup, with the token scrubbed from every record as a last line of defence."""

from __future__ import annotations

import logging
import sys

from etl.secret import Secret


class _Redact(logging.Filter):
    """Replaces the token in a formatted message, should any code path ever include it."""

    def __init__(self, secret: Secret) -> None:
        super().__init__()
        self._value = secret.reveal()

    def filter(self, record: logging.LogRecord) -> bool:
        if self._value:
            message = record.getMessage()
            if self._value in message:
                record.msg, record.args = message.replace(self._value, "***"), None
        return True


def configure_logging(level: str, secret: Secret | None = None) -> None:
    """Log to stderr at `level`; quiet the libraries' chatter below WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    if secret is not None:
        handler.addFilter(_Redact(secret))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
