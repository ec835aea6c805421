"""Helpers for the sandbox's own tests: an `Api` that speaks to one sandbox."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import orjson
import pytest
from multidict import CIMultiDictProxy

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class Api:
    """GETs/POSTs against one sandbox with its token and (by default) the beta header."""

    http: aiohttp.ClientSession
    sandbox: Any

    def headers(self, *, beta: bool = True, auth: bool = True) -> dict[str, str]:
        headers = {}
        if auth:
            headers["Authorization"] = self.sandbox.config.token
        if beta:
            headers["LD-API-Version"] = "beta"
        return headers

    async def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        beta: bool = True,
        auth: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = headers if headers is not None else self.headers(beta=beta, auth=auth)
        async with self.http.get(self.sandbox.url(path), params=params, headers=sent) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    async def post(self, path: str, params: Mapping[str, str] | None = None) -> Reply:
        async with self.http.post(
            self.sandbox.url(path), params=params, headers=self.headers()
        ) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    async def collect_deployments(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Follow `_links.next` like a careful client: original params, `after` from the href."""
        items: list[dict[str, Any]] = []
        query = dict(params)
        seen: set[str] = set()
        while True:
            reply = await self.get(DEPLOYMENTS, query)
            assert reply.status == 200, reply.body
            body = reply.json()
            items.extend(body["items"])
            next_link = body["_links"].get("next")
            if next_link is None:
                return items
            after = dict(parse_qsl(next_link["href"].split("?", 1)[1]))["after"]
            assert after not in seen, "cursor repeated"
            seen.add(after)
            query = {**params, "after": after}

    async def collect_offset(self, path: str, params: Mapping[str, str] | None = None) -> list[Any]:
        """Page an offset collection by totalCount, the way ld-api.md recommends."""
        items: list[Any] = []
        offset = 0
        while True:
            reply = await self.get(path, {**(params or {}), "limit": "7", "offset": str(offset)})
            assert reply.status == 200, reply.body
            body = reply.json()
            items.extend(body["items"])
            offset += len(body["items"])
            if not body["items"] or offset >= body["totalCount"]:
                return items


@pytest.fixture
def api_for(http: aiohttp.ClientSession) -> Callable[[Any], Api]:
    return lambda sandbox: Api(http, sandbox)


@pytest.fixture
def api(http: aiohttp.ClientSession, sandbox: Any) -> Api:
    return Api(http, sandbox)
