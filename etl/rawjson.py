"""Raw JSON records: split a page into its items' exact bytes; read keys without the values.

A page is decoded once and shallowly (msgspec): the envelope's few fields (`_links`,
`totalCount`, `phases`, …) become Python values, while every item stays the bytes the API
sent — a `msgspec.Raw`, a zero-copy slice of the body. The normalizers hand those bytes to
Polars, which decodes them with an explicit dtype outside the GIL, and `_raw` is exactly what
the API sent. Decoding every record into Python dicts (then serialising each back for `_raw`)
was the largest single cost of a CPU-bound sync, and the dicts were most of its Python heap.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

RawRecord = msgspec.Raw
"""One record's JSON bytes as received (supports the buffer protocol)."""

NULL = msgspec.Raw(b"null")
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


class _PullRequests(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


class _DeploymentParts(msgspec.Struct):
    metadata: msgspec.Raw = NULL  # absent and null alike
    pullRequests: _PullRequests | None = None


class _PageOfDeploymentParts(msgspec.Struct):
    items: list[_DeploymentParts]


_DEPLOYMENT_PARTS = msgspec.json.Decoder(_DeploymentParts)
_ALL_DEPLOYMENT_PARTS = msgspec.json.Decoder(list[_DeploymentParts])
_PAGE_OF_DEPLOYMENT_PARTS = msgspec.json.Decoder(_PageOfDeploymentParts)


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


@dataclass(frozen=True, slots=True)
class Sliced:
    """Raw records, in order, and the buffer they are slices of (b"" when there is none).

    A page's records share the response body, so a column of them can point into the
    bodies instead of copying every record (`normalize.frame.raw_column`).
    """

    source: bytes
    records: Sequence[RawRecord]


# Records per joined decode: one call per record cost more in calls and Python objects than
# in parsing, while one call per batch (~10 MB) held Python's lock for tens of milliseconds
# at a time, during which the event loop could not answer a single response.
JOINED_RECORDS = 200


def joined(records: Sequence[RawRecord]) -> Iterator[bytes]:
    """The records as JSON arrays of up to `JOINED_RECORDS` each, one decode per array."""
    for start in range(0, len(records), JOINED_RECORDS):
        yield b"[" + b",".join(records[start : start + JOINED_RECORDS]) + b"]"


@functools.cache
def _only_known_decoder(known: frozenset[str]) -> msgspec.json.Decoder[list[Any]]:
    """Decodes an array of objects whose fields are all in `known`, skipping their values."""
    names = sorted(known)
    slots = [f"f{i}" for i in range(len(names))]  # field names need not be identifiers
    struct = msgspec.defstruct(
        "KnownFields",
        [(slot, msgspec.Raw, NULL) for slot in slots],
        rename=dict(zip(slots, names, strict=True)),
        forbid_unknown_fields=True,
    )
    return msgspec.json.Decoder(list[struct])  # type: ignore[valid-type]


def only_known_fields(records: Sequence[RawRecord], known: frozenset[str]) -> bool:
    """Whether every record is an object with no field outside `known` (values skipped)."""
    decoder = _only_known_decoder(known)
    try:
        for array in joined(records):
            decoder.decode(array)
    except msgspec.ValidationError:
        return False
    return True


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


@dataclass(slots=True)
class DeploymentParts:
    """What a deployment embeds, read in one shallow pass over the raw records."""

    metadata: list[str | None] = field(default_factory=list)
    """Each deployment's free-form `metadata` object as JSON text (None when absent)."""
    pull_requests: list[Sliced] = field(default_factory=list)
    """Every embedded pull request (`expand=pullRequests`), in order, page by page."""


def deployment_parts(pages: Iterable[Sliced]) -> DeploymentParts:
    """The metadata and pull requests of each deployment, without decoding anything else.

    A page whose body is at hand is decoded from the body, so that its pull requests are
    slices of it too; other records are decoded a few hundred at a time (`joined`).
    """
    parts = DeploymentParts()
    for page in pages:
        found, source = _page_parts(page), page.source
        if found is None:
            found, source = _joined_parts(page.records), b""
        pull_requests: list[RawRecord] = []
        for one in found:
            metadata = one.metadata
            parts.metadata.append(None if metadata == NULL else text(metadata))
            if one.pullRequests is not None and one.pullRequests.items:
                pull_requests.extend(one.pullRequests.items)
        parts.pull_requests.append(Sliced(source, pull_requests))
    return parts


def _page_parts(page: Sliced) -> list[_DeploymentParts] | None:
    """The parts of a page's records read from its body; None unless they are all of it."""
    if not page.source:
        return None
    try:
        found = _PAGE_OF_DEPLOYMENT_PARTS.decode(page.source).items
    except msgspec.ValidationError:
        return None
    return found if len(found) == len(page.records) else None


def _joined_parts(deployments: Sequence[RawRecord]) -> list[_DeploymentParts]:
    try:
        return [one for array in joined(deployments) for one in _ALL_DEPLOYMENT_PARTS.decode(array)]
    except msgspec.ValidationError:  # one record at a time; the typed decode names the problem
        return [_parts_of(deployment) for deployment in deployments]


def _parts_of(deployment: RawRecord) -> _DeploymentParts:
    try:
        return _DEPLOYMENT_PARTS.decode(deployment)
    except msgspec.ValidationError:
        return _DeploymentParts()
