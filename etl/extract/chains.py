"""Chain runners: the stateful half of paging (I/O, loop checks, count verification).

A cursor chain streams each page to the loader as it arrives (bounded memory however long
the history). An offset listing is small (one project's pipelines, one pipeline's releases):
it is read whole — first page, then the rest concurrently — and checked against `totalCount`
before anything is emitted, so a listing that shifted while it was read is read again
rather than loaded with a row missing or doubled; a count that is wrong but steady is
accepted with a warning (see `read_offset_listing`).

Pages that repeat: a server that answers every request with the same page (LaunchDarkly's
own spec examples do: a fixed list, a fixed `next` link) must cost a few requests, not a
thousand. An offset listing ends, with a warning, at the first page whose items were all
read before on earlier pages of the same read; a cursor chain whose `next` repeats a cursor,
or serves a page already read, fails its partition naming the cursor (the run goes on,
`partial`). An item's identity there is its raw bytes or its key: the bytes need no
knowledge of the listing (flag statuses have no key at all) and the key catches a page
served again with a volatile field changed. Items repeated within one page are the server's
own duplicates, not drift: exact copies are dropped with a warning (the normalizers keep one
row per key anyway; dropping them also keeps a pipeline listed twice from being read twice).
"""

from __future__ import annotations

import asyncio
import hashlib
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
        PaginationError: the API handed out a cursor it had already given in this chain, or
            served a page it had already served (same items) for a new cursor.
    """
    seen_cursors: set[str] = set()
    # One digest per page, not per item: a chain may run to 100k deployments.
    seen_pages: dict[bytes, int] = {}
    request: Any = paginator.first()
    items = 0
    while request is not None:
        page = await api.get_page(request, route=route, beta=beta, stream=stream)
        digest = _page_digest(page)  # an empty page with a `next` link counts too
        if digest in seen_pages:
            raise PaginationError(
                f"{page.request.describe()}: the page at cursor "
                f"after={page.request.params.get('after')!r} repeats page "
                f"{seen_pages[digest]} of this chain; stopping this chain instead of looping"
            )
        seen_pages[digest] = len(seen_pages) + 1
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


def _page_digest(page: Page) -> bytes:
    """What tells one page of a cursor chain from another: its length, first and last items.

    Two pages of a well-behaved chain never share a first item; hashing whole pages would
    cost a large sync a pass over every byte it receives.
    """
    digest = hashlib.blake2b(len(page.items).to_bytes(8, "big"), digest_size=16)
    for item in (page.items[0], page.items[-1]) if page.items else ():
        digest.update(len(item).to_bytes(8, "big"))
        digest.update(item)
    return digest.digest()


class _Seen:
    """The items of one listing read so far, to tell a page that only repeats them.

    Keys are decoded only once a second page comes: most listings are one page.
    """

    def __init__(self, key_fields: tuple[str, ...]) -> None:
        self._key_fields = key_fields
        self._raw: set[bytes] = set()
        self._keys: set[tuple[Any, ...]] = set()
        self._unkeyed: list[RawRecord] = []

    def _key(self, item: RawRecord) -> tuple[Any, ...] | None:
        key = _identity(decode(item), self._key_fields)
        return None if None in key else key

    def repeats(self, page: Page) -> bool:
        """Whether every item of `page` was on an earlier page; else remember its items.

        An empty page repeats nothing (it ends a listing on its own).
        """
        raws = [bytes(item) for item in page.items]
        if self._raw:
            self._keys.update(key for key in map(self._key, self._unkeyed) if key is not None)
            self._unkeyed = []
            keys = [self._key(item) for item in page.items]
            if raws and all(
                raw in self._raw or key in self._keys for raw, key in zip(raws, keys, strict=True)
            ):
                return True
            self._keys.update(key for key in keys if key is not None)
        else:
            self._unkeyed = list(page.items)
        self._raw.update(raws)
        return False


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
    repeated: PageRequest | None
    """The page the read ended at because it only repeated earlier pages."""
    repeats: bool
    """Whether an item is on two pages (it moved between pages while they were read)."""

    @classmethod
    def of(cls, read: tuple[list[Page], PageRequest | None], key_fields: tuple[str, ...]) -> _Read:
        pages, repeated = read
        items = [item for page in pages for item in page.items]
        records = [decode(item) for item in items]
        identities = [_identity(record, key_fields) for record in records]
        page_of: dict[tuple[Any, ...], int] = {}
        repeats = False
        start = 0
        for number, page in enumerate(pages):
            for identity in identities[start : start + len(page.items)]:
                repeats = repeats or page_of.setdefault(identity, number) != number
            start += len(page.items)
        return cls(pages, items, records, identities, repeated, repeats)

    def count_problem(self) -> str:
        """Empty when every page's `totalCount` equals the items read; else what disagrees."""
        totals = {_advertised(page) for page in self.pages}
        if totals == {len(self.items)} and not self.repeats:
            return ""
        shown = sorted("missing" if total is None else str(total) for total in totals)
        distinct = len(set(self.identities))
        return f"totalCount {', '.join(shown)}; {len(self.items)} items read, {distinct} distinct"


async def _read_by_count(
    api: ApiClient,
    paginator: OffsetPaginator,
    *,
    route: str,
    beta: bool,
    stream: str,
    key_fields: tuple[str, ...],
) -> tuple[list[Page], PageRequest | None]:
    """The first page, then the pages its `totalCount` implies, concurrently in waves.

    The page after the first is read alone: a server that ignores `offset` shows it there,
    at the cost of one request rather than a wave. A wave stops at an empty or short page,
    so a count that overstates the listing (say 10,000 beside 2 items) costs one wave of
    requests, not one per page it claims.

    Returns:
        The pages, and the request of the page the read ended at because it only repeated
        earlier ones (None when it did not).
    """
    first = await api.get_page(paginator.first(), route=route, beta=beta, stream=stream)
    if _advertised(first) is None:
        return [first], None
    pages = [first]
    seen = _Seen(key_fields)
    seen.repeats(first)
    remaining = paginator.offsets(first)
    step = len(first.items)
    wave_size = 1
    while remaining:
        wave, remaining = remaining[:wave_size], remaining[wave_size:]
        wave_size = COUNT_WAVE
        received = await asyncio.gather(
            *(api.get_page(paginator.at(o), route=route, beta=beta, stream=stream) for o in wave)
        )
        for page in received:
            if seen.repeats(page):
                return pages, page.request
            pages.append(page)
        if any(not page.items or len(page.items) < step for page in received):
            break
    return pages, None


async def _read_by_links(
    api: ApiClient,
    paginator: OffsetPaginator,
    *,
    route: str,
    beta: bool,
    stream: str,
    key_fields: tuple[str, ...],
) -> tuple[list[Page], PageRequest | None]:
    """Page by page without trusting `totalCount`.

    On while `_links.next` says so or pages come full, to the first empty or short page:
    the API's own end-of-listing signals; or to a page that only repeats earlier ones.
    """
    pages: list[Page] = []
    seen = _Seen(key_fields)
    request: PageRequest | None = paginator.first()
    full = 0  # the server's page size: the first page's length, when it caps ours
    while request is not None:
        page = await api.get_page(request, route=route, beta=beta, stream=stream)
        if seen.repeats(page):
            return pages, request
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
        request = paginator.at(int(request.params.get("offset", "0")) + served)
    return pages, None


def _once(items: list[RawRecord], records: list[Any]) -> tuple[list[RawRecord], list[Any]]:
    """The items without exact copies (the same bytes served twice), first one kept."""
    seen: set[bytes] = set()
    kept = []
    for item, record in zip(items, records, strict=True):
        raw = bytes(item)
        if raw not in seen:
            seen.add(raw)
            kept.append((item, record))
    if len(kept) == len(items):
        return items, records
    return [item for item, _ in kept], [record for _, record in kept]


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
    are drift, and fail this listing only. A read ends early at a page that only repeats
    earlier ones; the items before it are loaded and `warn` is told.

    Returns:
        All items as raw records and decoded (listings are small), and the first page
        (whose body carries summaries such as `phases`).

    Raises:
        PaginationError: the listing still changed between reads after several re-reads.
    """

    def accept(read: _Read, *doubts: str) -> tuple[list[RawRecord], list[Any], Page]:
        items, records = _once(read.items, read.records)
        if read.repeated is not None:
            doubts = (
                f"the page at offset {read.repeated.params.get('offset')} only repeats items "
                f"read on earlier pages; the listing ends there ({len(read.items)} items)",
                *doubts,
            )
        if len(items) < len(read.items):
            copies = len(read.items) - len(items)
            doubts += (f"{copies} exact cop{'y' if copies == 1 else 'ies'} of items served "
                       "earlier in the listing; each item loaded once",)  # fmt: skip
        for doubt in doubts:
            log.warning("%s: %s", paginator.path, doubt)
            if warn is not None:
                warn(f"{paginator.path}: {doubt}")
        return items, records, read.pages[0]

    read = _Read.of(
        await _read_by_count(
            api, paginator, route=route, beta=beta, stream=stream, key_fields=key_fields
        ),
        key_fields,
    )
    problem = read.count_problem()
    if not problem:
        return accept(read)
    previous = read  # complete too, unless the count understated the listing
    for attempt in range(1, DRIFT_REREADS + 1):
        log.info(
            "%s: listing disagrees with its count (%s); re-reading (%d)", route, problem, attempt
        )
        read = _Read.of(
            await _read_by_links(
                api, paginator, route=route, beta=beta, stream=stream, key_fields=key_fields
            ),
            key_fields,
        )
        problem = read.count_problem()
        if not problem:
            return accept(read)
        if read.identities == previous.identities and not read.repeats:
            return accept(
                read,
                f"the server's totalCount disagrees with its items ({problem}), "
                "the same on a re-read; loaded the items it served",
            )
        previous = read
    raise PaginationError(
        f"{paginator.path}: the listing kept changing while it was read ({problem}) "
        f"after {DRIFT_REREADS} re-reads"
    )
