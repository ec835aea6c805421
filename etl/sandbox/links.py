"""`_links` objects: offset-paging relations and cursor hrefs.

LaunchDarkly's hrefs are relative paths with their query string, and a relation is left out
when that page does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, urlencode

from etl.sandbox.records import JSON, link


def href(path: str, params: Iterable[tuple[str, str]]) -> str:
    """`path?query`, keeping commas and colons readable as LaunchDarkly does."""
    query = urlencode(list(params), quote_via=quote, safe=",:|")
    return f"{path}?{query}" if query else path


def offset_links(
    path: str, params: Iterable[tuple[str, str]], *, offset: int, limit: int, total: int
) -> JSON:
    """first/prev/next/last/self for an offset-paged collection.

    `params` are the request's other query parameters; `limit` and `offset` are appended.
    `prev` exists when offset > 0, `next` when items remain after this page.
    """
    kept = [(k, v) for k, v in params if k not in ("limit", "offset")]

    def at(position: int) -> JSON:
        return link(href(path, [*kept, ("limit", str(limit)), ("offset", str(position))]))

    last = max(0, (total - 1) // limit * limit)
    links: JSON = {"first": at(0)}
    if offset > 0:
        links["prev"] = at(max(0, offset - limit))
    if offset + limit < total:
        links["next"] = at(offset + limit)
    links["last"] = at(last)
    links["self"] = at(offset)
    return links
