"""Chain runners: the stateful half of paging (I/O, loop checks, count verification).

A cursor chain streams each page to the loader as it arrives (bounded memory however long
the history). An offset listing is small (one project's pipelines, one pipeline's releases):
it is read whole — first page, then the rest concurrently — and checked against `totalCount`
before anything is emitted, so a listing that shifted while it was read is read again
rather than loaded with a row missing or doubled; a count that is wrong but steady is
accepted with a warning (see `read_offset_listing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from etl.client import ApiClient
from etl.errors import PaginationError
from etl.paginate import CursorPaginator, OffsetPaginator, Page, PageRequest
from etl.rawjson import RawRecord, decode

log = logging.getLogger(__name__)

OnPage = Callable[[Page, bool], Awaitable[None]]

DRIFT_REREADS = 3
# A listing read page by page stops here if it never ends (LaunchDarkly's are far shorter).
MAX_LISTING_PAGES = 1_000
# Pages of an offset listing requested at once (the rate limiter caps what is in flight).
COUNT_WAVE = 16


async def run_cursor_chain(
    api: ApiClient,
    paginator: CursorPaginator,
    *,
    route: str,
    beta: bool,
    stream: str,
    on_page: OnPage,
) -> int:
    """Follow a cursor chain to its end, calling `on_page(page, is_last)` for every page.

    Returns:
        The number of items read.

    Raises:
        PaginationError: the API handed out a cursor it had already given in this chain.
    """
    seen_cursors: set[str] = set()
    request: Any = paginator.first()
    items = 0
    while request is not None:
        page = await api.get_page(request, route=route, beta=beta, stream=stream)
        following = paginator.next(page)
        if following is not None:
            cursor = following.params["after"]
            if cursor in seen_cursors:
                raise PaginationError(
                    f"{page.request.describe()}: the API repeated cursor after={cursor!r}; "
                    "stopping this chain instead of looping"
                )
            seen_cursors.add(cursor)
        items += len(page.items)
        await on_page(page, following is None)
        request = following
    return items


def _identity(record: Any, key_fields: tuple[str, ...]) -> tuple[Any, ...]:
    if not isinstance(record, Mapping):
        return (repr(record),)  # not an object: the normalizer names it
    return tuple(record.get(field) for field in key_fields)


def _advertised(page: Page) -> int | None:
    """The page's `totalCount`, or None when it is missing or not a count."""
    total = page.body.get("totalCount")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        return None
    return total


@dataclass(frozen=True, slots=True)
class _Read:
    """One complete read of a listing: its pages, items and what they say about themselves."""

    pages: list[Page]
    items: list[RawRecord]
    records: list[Any]
    identities: list[tuple[Any, ...]]

    @classmethod
    def of(cls, pages: list[Page], key_fields: tuple[str, ...]) -> _Read:
        items = [item for page in pages for item in page.items]
        records = [decode(item) for item in items]
        identities = [_identity(record, key_fields) for record in records]
        return cls(pages, items, records, identities)

    @property
    def repeats(self) -> bool:
        """Whether an item appears twice (it moved between pages while they were read)."""
        return len(set(self.identities)) != len(self.identities)

    def count_problem(self) -> str:
        """Empty when every page's `totalCount` equals the items read; else what disagrees."""
        totals = {_advertised(page) for page in self.pages}
        if totals == {len(self.items)} and not self.repeats:
            return ""
        shown = sorted("missing" if total is None else str(total) for total in totals)
        distinct = len(set(self.identities))
        return f"totalCount {', '.join(shown)}; {len(self.items)} items read, {distinct} distinct"


async def _read_by_count(
    api: ApiClient, paginator: OffsetPaginator, *, route: str, beta: bool, stream: str
) -> list[Page]:
    """The first page, then the pages its `totalCount` implies, concurrently in waves.

    A wave stops at an empty or short page, so a count that overstates the listing (say
    10,000 beside 2 items) costs one wave of requests, not one per page it claims.
    """
    first = await api.get_page(paginator.first(), route=route, beta=beta, stream=stream)
    if _advertised(first) is None:
        return [first]
    pages = [first]
    remaining = paginator.rest(first)
    step = len(first.items)
    while remaining:
        wave, remaining = remaining[:COUNT_WAVE], remaining[COUNT_WAVE:]
        pages += await asyncio.gather(
            *(api.get_page(r, route=route, beta=beta, stream=stream) for r in wave)
        )
        if any(len(page.items) < step for page in pages[-len(wave) :]):
            break
    return pages


async def _read_by_links(
    api: ApiClient, paginator: OffsetPaginator, *, route: str, beta: bool, stream: str
) -> list[Page]:
    """Page by page without trusting `totalCount`.

    On while `_links.next` says so or pages come full, to the first empty or short page:
    the API's own end-of-listing signals.
    """
    pages: list[Page] = []
    request: PageRequest | None = paginator.first()
    full = 0  # the server's page size: the first page's length, when it caps ours
    while request is not None:
        page = await api.get_page(request, route=route, beta=beta, stream=stream)
        pages.append(page)
        if len(pages) > MAX_LISTING_PAGES:
            raise PaginationError(
                f"{paginator.path}: more than {MAX_LISTING_PAGES} pages without an end"
            )
        served = len(page.items)
        full = full or served
        links = page.body.get("_links")
        has_next = isinstance(links, Mapping) and "next" in links
        if served == 0 or (served < full and not has_next):
            break
        offset = int(request.params.get("offset", "0")) + served
        request = PageRequest(
            paginator.path,
            {**paginator.params, "limit": str(paginator.limit), "offset": str(offset)},
        )
    return pages


async def read_offset_listing(
    api: ApiClient,
    paginator: OffsetPaginator,
    *,
    route: str,
    beta: bool,
    stream: str,
    key_fields: tuple[str, ...],
    warn: Callable[[str], None] | None = None,
) -> tuple[list[RawRecord], list[dict[str, Any]], Page]:
    """Read a whole offset-paged listing and verify it against `totalCount`.

    The count is there to catch drift: items moving between pages while they are read,
    which would lose or double one. So a listing that disagrees with its count is read
    again page by page (by `_links.next` and short pages, not by the count). Two such reads
    that return the same items are accepted, the count being merely wrong (a server that
    says `totalCount: 0` beside its items), and `warn` is told; reads that keep differing
    are drift, and fail this listing only.

    Returns:
        All items as raw records and decoded (listings are small), and the first page
        (whose body carries summaries such as `phases`).

    Raises:
        PaginationError: the listing still changed between reads after several re-reads.
    """
    read = _Read.of(
        await _read_by_count(api, paginator, route=route, beta=beta, stream=stream), key_fields
    )
    problem = read.count_problem()
    if not problem:
        return read.items, read.records, read.pages[0]
    previous = read  # complete too, unless the count understated the listing
    for attempt in range(1, DRIFT_REREADS + 1):
        log.info(
            "%s: listing disagrees with its count (%s); re-reading (%d)", route, problem, attempt
        )
        read = _Read.of(
            await _read_by_links(api, paginator, route=route, beta=beta, stream=stream), key_fields
        )
        problem = read.count_problem()
        if not problem:
            return read.items, read.records, read.pages[0]
        if read.identities == previous.identities and not read.repeats:
            message = (
                f"{paginator.path}: the server's totalCount disagrees with its items ({problem}), "
                "the same on a re-read; loaded the items it served"
            )
            log.warning("%s", message)
            if warn is not None:
                warn(message)
            return read.items, read.records, read.pages[0]
        previous = read
    raise PaginationError(
        f"{paginator.path}: the listing kept changing while it was read ({problem}) "
        f"after {DRIFT_REREADS} re-reads"
    )
