"""Raw JSON records: split a page into its items' exact bytes; read keys without the values.

A page is decoded once and shallowly (msgspec): the envelope's few fields (`_links`,
`totalCount`, `phases`, …) become Python values, while every item stays the bytes the API
sent — a `msgspec.Raw`, a zero-copy slice of the body. The normalizers hand those bytes to
Polars, which decodes them with an explicit dtype outside the GIL, and `_raw` is exactly what
the API sent. Decoding every record into Python dicts (then serialising each back for `_raw`)
was the largest single cost of a CPU-bound sync, and the dicts were most of its Python heap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import orjson

RawRecord = msgspec.Raw
"""One record's JSON bytes as received (supports the buffer protocol)."""

_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


class _PullRequests(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


class _WithPullRequests(msgspec.Struct):
    pullRequests: _PullRequests | None = None


_DEPLOYMENT_PULL_REQUESTS = msgspec.json.Decoder(_WithPullRequests)


class NotAnObjectError(ValueError):
    """The body is valid JSON but not an object."""


class InvalidTextError(ValueError):
    """The body is not UTF-8 (msgspec does not check the text inside a raw slice)."""


def split_page(body: bytes) -> tuple[list[RawRecord] | None, dict[str, Any]]:
    """A page's items as raw records (None unless `items` is an array) and its other fields.

    Raises:
        msgspec.DecodeError: the body is not (complete) JSON.
        NotAnObjectError: the body is JSON but not an object.
        InvalidTextError: the body is not UTF-8.
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidTextError(f"body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        top = _OBJECT.decode(body)
    except msgspec.ValidationError:
        raise NotAnObjectError("body is not a JSON object") from None
    raw_items = top.pop("items", None)
    items: list[RawRecord] | None = None
    if raw_items is not None:
        try:
            items = _ARRAY.decode(raw_items)
        except msgspec.ValidationError:
            items = None
    return items, {key: decode(value) for key, value in top.items()}


def keys_of(record: RawRecord) -> Iterable[str]:
    """A record's top-level field names (none when it is not an object: decoding names it)."""
    try:
        return _OBJECT.decode(record).keys()
    except msgspec.ValidationError:
        return ()


def text(record: RawRecord) -> str:
    """The record's JSON text (pages are checked to be UTF-8 when they arrive)."""
    return str(memoryview(record), "utf-8")


def decode(record: RawRecord) -> Any:
    """The record as Python values (for small listings and for naming a bad record)."""
    return orjson.loads(memoryview(record))


def encode(value: Any) -> RawRecord:
    """Python values as a raw record (tests; environments after their secrets are dropped)."""
    return msgspec.Raw(orjson.dumps(value))


def pull_requests_of(deployments: Sequence[RawRecord]) -> list[RawRecord]:
    """The raw pull requests embedded in each deployment (`expand=pullRequests`), in order."""
    found: list[RawRecord] = []
    for deployment in deployments:
        try:
            embedded = _DEPLOYMENT_PULL_REQUESTS.decode(deployment).pullRequests
        except msgspec.ValidationError:
            continue  # the typed decode of the deployment names what is wrong with it
        if embedded is not None and embedded.items:
            found.extend(embedded.items)
    return found
