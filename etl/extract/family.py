"""What a stream family declares on the extract side: how it reads, how the doctor checks it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from etl.config import Stream

if TYPE_CHECKING:
    from etl.extract.streams import StreamReader


@dataclass(frozen=True, slots=True)
class Probe:
    """One request the doctor sends to learn whether the token can read a route."""

    label: str
    path: str
    route: str
    stream: Stream
    params: dict[str, str] = field(default_factory=dict)
    beta: bool = True
    whole: bool = False
    """The answer is one record, not a listing (Insights scores)."""
    account: bool = False
    """The route is the account's, not the project's (teams): checked once, not per project."""


Start = Callable[["StreamReader", asyncio.TaskGroup, str, Sequence[str]], Awaitable[None]]
AccountStart = Callable[["StreamReader", asyncio.TaskGroup], Awaitable[None]]
Probes = Callable[[str, Sequence[str], frozenset[Stream], datetime], list[Probe]]


@dataclass(frozen=True, slots=True)
class Extract:
    """How one family's streams are read per project, and checked by the doctor.

    Attributes:
        streams: the streams it reads; `start` runs when any of them is selected.
        start: opens the family's chains for (project, its selected environments) as tasks
            of the given group; each chain runs under `StreamReader.guarded`.
        probes: the doctor's requests for (project, environments, selected streams, now).
        account: opens the family's account-wide chains (not per project: teams,
            applications) once per run, beside the projects; None: it has none.
    """

    streams: frozenset[Stream]
    start: Start
    probes: Probes
    account: AccountStart | None = None
