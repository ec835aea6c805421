"""What extraction hands to the loader: fetched items plus the state they complete.

A `Fetched` unit is one page (or one verified offset listing) of one stream in one scope.
Its `marks` are state changes that become true once these items are committed: a deployment
window read down to a page's oldest deployment or fully read, or a full listing of a scope
finished (so rows of that scope not seen in this run can be soft-deleted). The loader commits
marks in the same transaction as the items, which is what makes a crash resumable without loss
or duplication.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from etl.config import Stream
from etl.rawjson import RawRecord, Sliced


@dataclass(frozen=True, slots=True)
class WindowDone:
    """Every record of one (project, environment) in [from_at, to_at) has been fetched.

    Its fields are `sync_windows`' key, column for column (`stream`: which timeline).
    """

    project_key: str
    environment_key: str
    from_at: datetime
    to_at: datetime
    stream: str = "deployments"


@dataclass(frozen=True, slots=True)
class WindowProgress:
    """Every deployment of one window in [remaining_to, to_at) has been fetched.

    Deployments come newest first, so after a page only [from_at, remaining_to) is left:
    `remaining_to` lies just past the page's oldest `startedAt`, which is read again with
    the rest (another deployment may share its millisecond).
    """

    project_key: str
    environment_key: str
    from_at: datetime
    to_at: datetime
    remaining_to: datetime
    stream: str = "deployments"


@dataclass(frozen=True, slots=True)
class ScopeComplete:
    """A full listing of `stream` within `scope` (e.g. one project's pipelines) has been read."""

    stream: Stream
    scope: Mapping[str, str]


Mark = WindowDone | WindowProgress | ScopeComplete


@dataclass(frozen=True, slots=True)
class Fetched:
    """Items of one stream from one scope (raw records), with the page body they came in."""

    stream: Stream
    context: Mapping[str, str]
    items: Sequence[RawRecord]
    body: Mapping[str, Any] = field(default_factory=dict)
    """The page's other fields, decoded."""
    marks: tuple[Mark, ...] = ()
    source: bytes = b""
    """The response the items are slices of, when they came in one (see `rawjson.Sliced`)."""

    @property
    def size(self) -> int:
        """The items' JSON bytes."""
        return sum(len(item) for item in self.items)

    @property
    def sliced(self) -> Sliced:
        """The items with the buffer they are slices of."""
        return Sliced(self.source, self.items)


class StreamRejected(Exception):
    """Raised by `emit` once the loader has rejected a stream's data.

    The partition that gets it stops quietly (its failure is already reported); every other
    partition and stream goes on.
    """
