"""The HTTP boundary: one aiohttp session, retries, status policy and error mapping.

Every aiohttp exception and every non-2xx status is turned into an `etl.errors` class here
and nowhere else (httpx's "one mapping boundary"), so the rest of the package never imports
aiohttp. The token travels only in the `Authorization` header; messages name the method,
the path and query, the status and an excerpt of the body.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import msgspec
import orjson

from etl.apistats import RequestLedger
from etl.errors import (
    ApiError,
    AuthError,
    DataError,
    FatalApiError,
    RetryableApiError,
    WaitTooLongError,
)
from etl.paginate import Page, PageRequest
from etl.ratelimit import RateLimiter, retry_after_seconds
from etl.rawjson import InvalidTextError, NotAnObjectError, RawRecord, split_page
from etl.secret import Secret

log = logging.getLogger(__name__)

# LaunchDarkly's beta resources need this header; the rest get the current dated version.
BETA_VERSION = "beta"
STABLE_VERSION = "20240415"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try before giving up on one request.

    Attributes:
        max_attempts: attempts for 5xx, dropped connections, timeouts and bad bodies.
        max_rate_limited: 429 answers tolerated for one request (each waits Retry-After).
        backoff_base_s: first backoff; doubles each attempt, with full jitter.
        backoff_cap_s: the longest single backoff.
        max_wait_s: the longest wait the server may ask for (Retry-After) before the run
            gives up instead of sleeping.
    """

    max_attempts: int = 6
    max_rate_limited: int = 20
    backoff_base_s: float = 0.25
    backoff_cap_s: float = 20.0
    max_wait_s: float = 300.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff for the given 1-based attempt."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = body[:limit].decode("utf-8", errors="replace")
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return text
    if isinstance(decoded, dict) and "message" in decoded:
        code = decoded.get("code", "")
        return f"{code}: {decoded['message']}" if code else str(decoded["message"])
    return text


def _not_json(content_type: str, raw: bytes) -> str:
    """What a 200 that is not JSON looks like, for the message (a proxy's or login page?)."""
    if "json" in content_type or not content_type:
        return ""
    return f"; it is {content_type.split(';')[0].strip()}, not JSON (a proxy or login page?)"


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """Certificate-verifying TLS: the system's CAs, or only those in `ca_bundle`."""
    return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)


def _classify(status: int, body: bytes, where: str, headers: Mapping[str, str]) -> ApiError:
    """The one status policy: which answers are retried and which stop a stream or the run."""
    detail = _excerpt(body)
    message = f"{where} → HTTP {status}: {detail}"
    if status == 429:
        retry_after = retry_after_seconds(headers, time.time())
        return RetryableApiError(message, status=status, url=where, retry_after_s=retry_after)
    if status >= 500 or status in (408, 409):
        return RetryableApiError(message, status=status, url=where)
    if status == 401:
        return AuthError(
            f"{message} (the token in the configured environment variable was rejected)",
            status=status,
            url=where,
        )
    if status == 403:
        return FatalApiError(
            f"{message} (the token lacks access, or the beta header was refused)",
            status=status,
            url=where,
        )
    return FatalApiError(message, status=status, url=where)


class ApiClient:
    """Fetches pages from the LaunchDarkly REST API with retries and shared rate limiting.

    Usage::

        async with ApiClient(base_url, token, limiter) as api:
            page = await api.get_page(PageRequest("/api/v2/projects", {"limit": "100"}),
                                      route="/api/v2/projects", beta=False, stream="projects")
    """

    def __init__(
        self,
        base_url: str,
        token: Secret,
        limiter: RateLimiter,
        *,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 16,
        rng: random.Random | None = None,
        ca_bundle: Path | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._limiter = limiter
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(10.0, timeout_s))
        self._retry = retry or RetryPolicy()
        self._max_connections = max_connections
        self._rng = rng or random.Random()
        self._ca_bundle = ca_bundle
        self._session: aiohttp.ClientSession | None = None
        self.stats = RequestLedger()
        """What the requests bought, per stream (read it live: `stats.snapshot()`)."""
        self.on_page: Callable[[str, PageRequest, Page], None] | None = None
        """Told of every page received, with its stream (the progress display)."""

    async def __aenter__(self) -> ApiClient:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(
                limit=self._max_connections, ssl=tls_context(self._ca_bundle)
            ),
            headers={
                "Authorization": self._token.reveal(),
                "Accept": "application/json",
                "User-Agent": "ld-insights-etl",
            },
            raise_for_status=False,
        )
        # aiohttp silently resends an idempotent request once when a kept-alive connection
        # closes under it. That resend bypasses the rate limiter (it spent a budget the
        # limiter had not counted: a 429 in a faulty run), so a dropped connection surfaces
        # here instead and is retried through the limiter and our backoff. The switch is
        # private; aiohttp's own test client turns it off the same way.
        self._session._retry_connection = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get_page(
        self, request: PageRequest, *, route: str, beta: bool, stream: str, whole: bool = False
    ) -> Page:
        """Fetch one page, retrying transient failures; raise an `ApiError` otherwise.

        Args:
            request: path and query to fetch.
            route: the URL pattern the server rate-limits by (e.g. with `{projectKey}`).
            beta: send `LD-API-Version: beta` (insights, pipelines, policies).
            stream: the stream the request is charged to in the ledger (`etl.apistats`).
            whole: the body is one record, not a listing (Insights scores): the page's one
                item is the whole body.
        """
        counters = self.stats.stream(stream)
        attempts = 0
        rate_limited = 0
        while True:
            try:
                decoded = await self._fetch_split(request, route=route, beta=beta, stream=stream)
            except RetryableApiError as err:
                if err.status == 429:
                    rate_limited += 1
                    counters.rate_limited += 1
                    if rate_limited > self._retry.max_rate_limited:
                        raise ApiError(
                            f"{err} (still rate limited after {rate_limited} waits)",
                            status=429,
                            url=err.url,
                        ) from None
                    pause = err.retry_after_s
                    if pause is None:
                        pause = self._retry.backoff(rate_limited, self._rng)
                    if pause > self._retry.max_wait_s:
                        raise WaitTooLongError(
                            f"{err} (the server asks us to wait {pause:,.0f} s, more than "
                            f"api.max_wait_s = {self._retry.max_wait_s:g}; giving up instead "
                            "of sleeping: run again later)",
                            status=429,
                            url=err.url,
                        ) from None
                    self._limiter.pause(pause)
                else:
                    attempts += 1
                    if attempts >= self._retry.max_attempts:
                        raise ApiError(
                            f"{err} (gave up after {attempts} attempts)",
                            status=err.status,
                            url=err.url,
                        ) from None
                    delay = self._retry.backoff(attempts, self._rng)
                    log.debug("retrying %s in %.2fs: %s", request.describe(), delay, err)
                    counters.wait_s += delay
                    await asyncio.sleep(delay)
                counters.retries += 1
                continue
            items, body, source = decoded
            if whole:  # a listing of one record, as progress and the ledger count it
                items, body = [msgspec.Raw(source)], {"totalCount": 1}
            elif items is None:
                raise DataError(f"GET {request.describe()}: response has no 'items' list")
            counters.pages += 1
            counters.records += len(items)
            page = Page(request=request, items=items, body=body, source=source)
            if self.on_page is not None:
                self.on_page(stream, request, page)
            return page

    async def _fetch_split(
        self, request: PageRequest, *, route: str, beta: bool, stream: str
    ) -> tuple[list[RawRecord] | None, dict[str, Any], bytes]:
        """One attempt: send, read the whole body, split it; map every failure to an ApiError.

        Returns the items as raw records (see `etl.rawjson`), the rest of the body, and the
        body itself (the items are slices of it).
        """
        assert self._session is not None, "ApiClient used outside 'async with'"
        where = f"GET {request.describe()}"
        headers = {"LD-API-Version": BETA_VERSION if beta else STABLE_VERSION}
        counters = self.stats.stream(stream)
        async with self._limiter.slot(route, counters):
            counters.requests += 1
            try:
                async with self._session.get(
                    self._base_url + request.path, params=dict(request.params), headers=headers
                ) as response:
                    raw = await response.read()
                    status = response.status
                    response_headers = response.headers
            except aiohttp.ClientConnectorCertificateError as exc:
                raise FatalApiError(
                    f"{where}: the server's TLS certificate failed verification "
                    f"({exc.certificate_error}); behind a TLS-inspecting proxy, set "
                    "api.ca_bundle to its CA file",
                    url=where,
                ) from None
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                raise RetryableApiError(
                    f"{where}: {type(exc).__name__}: {exc}", url=where
                ) from None
            except TimeoutError:
                raise RetryableApiError(f"{where}: timed out", url=where) from None
        self._limiter.observe(route, response_headers)
        self.stats.bytes_received += len(raw)
        if status != 200:
            raise _classify(status, raw, where, response_headers)
        try:
            items, body = split_page(raw)
        except msgspec.DecodeError as exc:
            kind = _not_json(response_headers.get("Content-Type", ""), raw)
            raise RetryableApiError(
                f"{where}: invalid JSON body ({exc}; {len(raw)} bytes){kind}",
                status=status,
                url=where,
            ) from None
        except (NotAnObjectError, InvalidTextError) as exc:
            raise RetryableApiError(f"{where}: {exc}", url=where) from None
        return items, body, raw
