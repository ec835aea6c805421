"""The sandbox's route families beyond the first routes (`app.py`): one line each.

A family is a module with `NAME`, `register(app)` (its routes), `truth(dataset)` (what a
complete sync of its streams must hold, as served: `Dataset.truth().extras[NAME]`) and
`counts(dataset)` (totals and per-scope counts, merged into `Dataset.counts()` and so into
`/_sandbox/truth/counts`, the benchmark floor's input). Its data is derived from the dataset
(seed, projects, environments, `origin_ms`, `now_ms`), so `advance()` moves it too.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from etl.sandbox import flags, teams


class RouteFamily(Protocol):
    """What `app.py` and `Dataset` need of a route family module."""

    NAME: str

    def register(self, app: web.Application) -> None:
        """Add the family's routes to the app."""

    def truth(self, dataset: Any) -> Any:
        """Everything a complete sync of the family's streams holds, as served now."""

    def counts(self, dataset: Any) -> dict[str, int]:
        """Totals and per-scope counts (`<stream>/<scope>…`), for the floor."""


FAMILIES: tuple[RouteFamily, ...] = (flags, teams)
