"""Log lines for people and machines, and the token kept out of both."""

from __future__ import annotations

import logging

import orjson
import pytest

from etl.logs import configure_logging, event, run_context
from etl.secret import Secret

TOKEN = "api-0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def log_lines(capsys, fmt: str, emit) -> list[str]:
    configure_logging("DEBUG", Secret(TOKEN), fmt)
    emit(logging.getLogger("etl.test"))
    return capsys.readouterr().err.splitlines()


def test_redaction_replaces_the_whole_token_and_leaves_words_alone(capsys, restore_logging):
    lines = log_lines(
        capsys, "text", lambda log: log.info("applied migration 0001_core_tables with %s", TOKEN)
    )
    assert lines[0].endswith("applied migration 0001_core_tables with ***")


def test_json_lines_carry_run_id_event_stream_and_counts(capsys, restore_logging):
    def emit(log):
        with run_context("20261202T130000Z-abc123"):
            log.info(
                "deployments done",
                extra=event("stream_finished", stream="deployments", records=12, rate_limited=0),
            )
        log.info("outside a run")

    first, second = (orjson.loads(line) for line in log_lines(capsys, "json", emit))
    assert first["run_id"] == "20261202T130000Z-abc123"
    assert (first["event"], first["stream"]) == ("stream_finished", "deployments")
    assert first["counts"] == {"records": 12, "rate_limited": 0}
    assert first["level"] == "INFO" and first["message"] == "deployments done"
    assert (second["run_id"], second["event"]) == (None, "message")


def test_json_lines_never_contain_the_token_even_in_a_traceback(capsys, restore_logging):
    def emit(log):
        try:
            raise ValueError(f"header was {TOKEN}")
        except ValueError:
            log.exception("failed", extra={"detail": TOKEN})

    (line,) = log_lines(capsys, "json", emit)
    assert TOKEN not in line
    assert "header was ***" in orjson.loads(line)["error"]
