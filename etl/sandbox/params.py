"""Query-string parsing that collects every problem before answering 400.

LaunchDarkly's `ValidationFailedErrorRep` lists each failing attribute, so the reader records
failures instead of raising on the first one; `check()` raises one `ApiError` naming them all.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from etl.sandbox.errors import ApiError

WEEK_MS = 7 * 86_400_000


class QueryReader:
    """Reads typed values from a request's query string, remembering what was wrong.

    Usage:
        reader = QueryReader(request.query)
        limit = reader.integer("limit", 20, minimum=1, maximum=100)
        reader.check()  # raises ApiError(400) listing every bad attribute
    """

    def __init__(self, query: Mapping[str, str]) -> None:
        self.query = query
        self.errors: list[tuple[str, str]] = []

    def fail(self, attribute: str, reason: str) -> None:
        """Record one failed attribute."""
        self.errors.append((attribute, reason))

    def required(self, name: str) -> str:
        """A parameter that must be present and non-empty."""
        value = self.query.get(name, "")
        if not value:
            self.fail(name, "must be present")
        return value

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """An integer parameter within [minimum, maximum]; `default` when absent or invalid."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            self.fail(name, "must be an integer")
            return default
        if minimum is not None and value < minimum:
            self.fail(name, f"must be at least {minimum}")
            return default
        if maximum is not None and value > maximum:
            self.fail(name, f"must be at most {maximum}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """A `true`/`false` parameter."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        self.fail(name, "must be true or false")
        return default

    def csv(self, name: str) -> frozenset[str]:
        """A comma-separated list, as a set; empty when absent."""
        return frozenset(part.strip() for part in self.query.get(name, "").split(",") if part)

    def filters(self, allowed: frozenset[str]) -> list[tuple[str, str]]:
        """`filter=field:value,field:value` (also `field equals value`), fields from `allowed`."""
        parsed = []
        for part in self.query.get("filter", "").split(","):
            text = part.strip()
            if not text:
                continue
            field, separator, value = text.partition(":")
            if not separator:
                field, separator, value = text.partition(" equals ")
            field, value = field.strip(), value.strip()
            if not separator or not value or field not in allowed:
                self.fail("filter", f"unsupported filter {text!r}")
                continue
            parsed.append((field, value))
        return parsed

    def check(self) -> None:
        """Raise a 400 `ValidationFailedErrorRep` if anything failed."""
        if self.errors:
            raise ApiError.validation(self.errors)


@dataclass(frozen=True)
class InsightsPage:
    """What every Insights cursor listing is asked: a partition, a page size and a window."""

    project_key: str
    environment_key: str
    limit: int
    from_ms: int
    """The window's start, inclusive (default: a week before `to`'s default, now)."""
    to_ms: int
    """The window's end, inclusive (default: now)."""


def insights_page(reader: QueryReader) -> InsightsPage:
    """`projectKey`, `environmentKey`, `limit` (1–100, default 20), `to` and `from`.

    Without `from`, the window starts 7 days ago, as LaunchDarkly's does.
    """
    now = int(time.time() * 1000)
    return InsightsPage(
        project_key=reader.required("projectKey"),
        environment_key=reader.required("environmentKey"),
        limit=reader.integer("limit", 20, minimum=1, maximum=100),
        to_ms=reader.integer("to", now),
        from_ms=reader.integer("from", now - WEEK_MS),
    )
