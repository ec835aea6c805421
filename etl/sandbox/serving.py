"""What every sandbox route module shares: the app's keys and the ways a body is served.

`app.py` builds the app and serves the first routes; a family of routes in its own module
(`flags.py`, …, listed in `families.py`) uses these to serve its bodies the same way (the
response hook, the config's wrong `totalCount`, offset paging).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from etl.sandbox.config import SandboxConfig
from etl.sandbox.data import Dataset
from etl.sandbox.errors import json_response
from etl.sandbox.links import offset_links
from etl.sandbox.params import QueryReader
from etl.sandbox.records import JSON

ResponseHook = Callable[[web.Request, dict[str, Any]], dict[str, Any] | bytes]
"""Rewrites a successful API body before serialization (tests use it to break responses)."""

DATASET: web.AppKey[Dataset] = web.AppKey("dataset")
CONFIG: web.AppKey[SandboxConfig] = web.AppKey("config")
RESPONSE_HOOK: web.AppKey[ResponseHook | None] = web.AppKey("response_hook")

BETA_PREFIX = "/api/v2/engineering-insights/"
"""Every engineering-insights route is beta (`ld-api.md` §1, §6)."""


def respond(request: web.Request, body: JSON) -> web.Response:
    """200 with `body`, passed through the response hook when one is set."""
    hook = request.app[RESPONSE_HOOK]
    if hook is None:
        return json_response(body)
    return json_response(hook(request, _materialize(body)))


def listing_count(request: web.Request, actual: int) -> int:
    """An offset listing's `totalCount`: the true one, or the config's wrong one."""
    wrong = request.app[CONFIG].listing_total_count
    return actual if wrong is None else wrong


def _materialize(value: Any) -> Any:
    """Replace orjson fragments with plain values so a hook sees ordinary dicts."""
    if isinstance(value, orjson.Fragment):
        return orjson.loads(orjson.dumps(value))
    if isinstance(value, dict):
        return {key: _materialize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_materialize(item) for item in value]
    return value


def offset_page(
    request: web.Request, items: Sequence[JSON], *, links: bool = True
) -> tuple[list[JSON], JSON]:
    """Slice `items` by limit/offset; return the page and `_links` (empty when not wanted)."""
    reader = QueryReader(request.query)
    limit = reader.integer("limit", 20, minimum=1)
    offset = reader.integer("offset", 0, minimum=0)
    reader.check()
    page = list(items[offset : offset + limit])
    if not links:
        return page, {}
    params = list(request.query.items())
    return page, offset_links(request.path, params, offset=offset, limit=limit, total=len(items))
