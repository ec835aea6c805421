"""Paging as one small abstraction with two implementations.

Paginators are pure and immutable: given the page that came back they return the next request,
or None when the chain is done. They do no I/O and hold no state, so one paginator can serve
many concurrent chains. Loop detection (repeated cursors, repeated pages) and retries belong
to the chain runners (`etl.extract.chains`), not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from etl.errors import PaginationError
from etl.rawjson import RawRecord

MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What to fetch: a path below the base URL and its query parameters."""

    path: str
    params: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """Path and query for messages and logs (never carries credentials)."""
        query = "&".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.path}?{query}" if query else self.path


@dataclass(frozen=True, slots=True)
class Page:
    """What came back: the request, its items as raw records, and the rest of the body."""

    request: PageRequest
    items: Sequence[RawRecord]
    body: Mapping[str, Any]
    source: bytes = b""
    """The response body as received: `items` are slices of it."""


class Paginator(Protocol):
    """Turns the page just fetched into the next request (None means done)."""

    def first(self) -> PageRequest:
        """The first request of the chain."""
        ...

    def next(self, page: Page) -> PageRequest | None:
        """The request after `page`, or None when `page` was the last one."""
        ...


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"page limit must be within 1..{MAX_LIMIT}, got {limit}")


@dataclass(frozen=True, slots=True)
class CursorPaginator:
    """Follows `_links.next.href` (LaunchDarkly's engineering-insights cursor paging).

    Example response (trimmed)::

        {"totalCount": 25, "items": [...],
         "_links": {"next": {"href": "/api/v2/engineering-insights/deployments?after=a429…"}}}

    Only the `after` cursor is taken from the href; the chain keeps its own path and
    params (`projectKey`, `from`/`to`, `expand`, `limit`), because the contract does not
    promise that the href repeats them (`ld-api.md` §1: "not documented").
    """

    path: str
    params: Mapping[str, str]

    def first(self) -> PageRequest:
        """Request the first page with the chain's params and no cursor."""
        return PageRequest(self.path, dict(self.params))

    def next(self, page: Page) -> PageRequest | None:
        """Request the page after `page`, or None when no `next` link is present."""
        links = page.body.get("_links")
        nxt = links.get("next") if isinstance(links, Mapping) else None
        href = nxt.get("href") if isinstance(nxt, Mapping) else None
        if not href:
            return None
        after = parse_qs(urlsplit(str(href)).query).get("after")
        if not after or not after[0]:
            raise PaginationError(
                f"{page.request.describe()}: _links.next.href {href!r} carries no 'after' cursor"
            )
        return PageRequest(self.path, {**self.params, "after": after[0]})


def total_count(page: Page) -> int:
    """The page's `totalCount`, or a PaginationError naming the request."""
    total = page.body.get("totalCount")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise PaginationError(f"{page.request.describe()}: missing or invalid totalCount")
    return total


@dataclass(frozen=True, slots=True)
class OffsetPaginator:
    """`limit`/`offset` paging with `totalCount` (projects, environments, pipelines, releases).

    Example response (trimmed)::

        {"totalCount": 8, "activeCount": 3, "completedCount": 1, "items": [...], "phases": [...]}

    Once the first page reveals the total, `rest()` lists every remaining request so the
    caller can fetch them concurrently; `next()` serves sequential use.
    """

    path: str
    params: Mapping[str, str]
    limit: int = MAX_LIMIT

    def __post_init__(self) -> None:
        _check_limit(self.limit)

    def at(self, offset: int) -> PageRequest:
        """Request the page at `offset`."""
        return PageRequest(
            self.path, {**self.params, "limit": str(self.limit), "offset": str(offset)}
        )

    def first(self) -> PageRequest:
        """Request offset 0."""
        return self.at(0)

    def next(self, page: Page) -> PageRequest | None:
        """Request the following offset until `totalCount` is reached or a page is empty."""
        offset = int(page.request.params.get("offset", "0"))
        if not page.items or offset + len(page.items) >= total_count(page):
            return None
        return self.at(offset + len(page.items))

    def offsets(self, first_page: Page) -> range:
        """The offsets after `first_page`, derived from its `totalCount`.

        A range, not a list: a `totalCount` of 2**53 must cost nothing until it is read.
        """
        total = total_count(first_page)
        served = len(first_page.items)
        # A server that caps `limit` below ours serves shorter pages: step by what it served.
        step = served if 0 < served < self.limit else self.limit
        return range(step, total, step)

    def rest(self, first_page: Page) -> list[PageRequest]:
        """Every request after `first_page`, derived from its `totalCount`."""
        return [self.at(offset) for offset in self.offsets(first_page)]
