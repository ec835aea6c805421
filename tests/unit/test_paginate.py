from __future__ import annotations

import pytest

from etl.errors import PaginationError
from etl.paginate import CursorPaginator, OffsetPaginator, Page, PageRequest

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
PARAMS = {"projectKey": "p", "environmentKey": "prod", "from": "1", "to": "2", "limit": "100"}


def page(request: PageRequest, items: list[dict], **body: object) -> Page:
    return Page(request=request, items=items, body={"items": items, **body})


def test_cursor_keeps_chain_params_when_href_carries_only_after():
    paginator = CursorPaginator(DEPLOYMENTS, PARAMS)
    first = paginator.first()
    nxt = paginator.next(page(first, [{}], _links={"next": {"href": f"{DEPLOYMENTS}?after=abc"}}))
    assert nxt == PageRequest(DEPLOYMENTS, {**PARAMS, "after": "abc"})


def test_cursor_takes_only_after_from_a_full_href():
    paginator = CursorPaginator(DEPLOYMENTS, PARAMS)
    href = f"{DEPLOYMENTS}?projectKey=OTHER&limit=5&after=xyz"
    nxt = paginator.next(page(paginator.first(), [{}], _links={"next": {"href": href}}))
    assert nxt is not None
    assert nxt.params == {**PARAMS, "after": "xyz"}


def test_cursor_ends_when_next_link_is_absent():
    paginator = CursorPaginator(DEPLOYMENTS, PARAMS)
    assert paginator.next(page(paginator.first(), [], _links={"self": {"href": "x"}})) is None


def test_cursor_href_without_after_is_a_pagination_error():
    paginator = CursorPaginator(DEPLOYMENTS, PARAMS)
    with pytest.raises(PaginationError, match="no 'after'"):
        paginator.next(page(paginator.first(), [{}], _links={"next": {"href": DEPLOYMENTS}}))


def test_offset_rest_lists_every_remaining_page():
    paginator = OffsetPaginator("/x", {}, limit=20)
    first = page(paginator.first(), [{}] * 20, totalCount=45)
    offsets = [r.params["offset"] for r in paginator.rest(first)]
    assert offsets == ["20", "40"]


def test_offset_rest_steps_by_the_page_size_the_server_served():
    paginator = OffsetPaginator("/x", {}, limit=100)
    first = page(paginator.first(), [{}] * 20, totalCount=45)
    assert [r.params["offset"] for r in paginator.rest(first)] == ["20", "40"]


def test_offset_next_stops_at_total_and_on_empty_page():
    paginator = OffsetPaginator("/x", {}, limit=2)
    assert paginator.next(page(paginator.first(), [{}, {}], totalCount=2)) is None
    assert paginator.next(page(paginator.first(), [], totalCount=9)) is None


def test_offset_limit_outside_1_to_100_is_rejected_at_construction():
    with pytest.raises(ValueError, match=r"1\.\.100"):
        OffsetPaginator("/x", {}, limit=101)


def test_missing_total_count_is_a_pagination_error():
    paginator = OffsetPaginator("/x", {}, limit=2)
    with pytest.raises(PaginationError, match="totalCount"):
        paginator.rest(page(paginator.first(), [{}]))


def test_offset_offsets_of_a_huge_count_cost_nothing_until_read():
    paginator = OffsetPaginator("/x", {}, limit=100)
    first = page(paginator.first(), [{}] * 100, totalCount=2**53)
    offsets = paginator.offsets(first)
    assert (offsets[0], offsets[1], len(offsets)) == (100, 200, 90_071_992_547_409)
