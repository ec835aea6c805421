"""Chain runners: the stateful half of paging (I/O, loop checks, count verification).

A cursor chain streams each page to the loader as it arrives (bounded memory however long
the history). An offset listing is small (one project's pipelines, one pipeline's releases):
it is read whole — first page, then the rest concurrently — and checked against `totalCount`
before anything is emitted, so a listing that shifted while it was read is read again
rather than loaded with a row missing or doubled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from etl.client import ApiClient
from etl.errors import PaginationError
from etl.paginate import CursorPaginator, OffsetPaginator, Page, total_count
from etl.rawjson import RawRecord, decode

log = logging.getLogger(__name__)

OnPage = Callable[[Page, bool], Awaitable[None]]

DRIFT_REREADS = 3


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


async def read_offset_listing(
    api: ApiClient,
    paginator: OffsetPaginator,
    *,
    route: str,
    beta: bool,
    stream: str,
    key_fields: tuple[str, ...],
) -> tuple[list[RawRecord], list[dict[str, Any]], Page]:
    """Read a whole offset-paged listing and verify it against `totalCount`.

    Returns:
        All items as raw records and decoded (listings are small), and the first page
        (whose body carries summaries such as `phases`).

    Raises:
        PaginationError: the count still disagrees after several re-reads.
    """
    problem = ""
    for attempt in range(1, DRIFT_REREADS + 1):
        first = await api.get_page(paginator.first(), route=route, beta=beta, stream=stream)
        total = total_count(first)
        rest = await asyncio.gather(
            *(api.get_page(r, route=route, beta=beta, stream=stream) for r in paginator.rest(first))
        )
        pages = [first, *rest]
        items = [item for page in pages for item in page.items]
        records = [decode(item) for item in items]
        totals = {total_count(page) for page in pages}
        distinct = {_identity(record, key_fields) for record in records}
        if totals == {total} and len(items) == total and len(distinct) == total:
            return items, records, first
        problem = f"totalCount {sorted(totals)}, {len(items)} items read, {len(distinct)} distinct"
        log.info("%s: listing drifted (%s); re-reading (%d)", route, problem, attempt)
    raise PaginationError(
        f"{paginator.path}: the listing kept changing while it was read ({problem}) "
        f"after {DRIFT_REREADS} attempts"
    )
