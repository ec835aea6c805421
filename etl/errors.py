"""The exception tree, grouped by what the caller should do.

```
* EtlError                    base: the CLI turns any of these into one line and an exit code
  x ConfigError               bad config file, flag or environment; names the key
  x ApiError                  an HTTP exchange failed; method, redacted URL, status, body excerpt
    + RetryableApiError       429, 5xx, dropped connection, truncated/invalid body, timeout
    + WaitTooLongError        the server asks for a wait past api.max_wait_s: the run stops
    + FatalApiError           400, 403, 404: reported per stream; the rest of the run continues
      - AuthError             401: the token is wrong; the whole run stops
  x PaginationError           a repeated cursor; a totalCount that keeps drifting
  x DataError                 a record that does not fit its schema; names record and field
  x WarehouseError            locked file, failed migration, failed load
```

Messages never contain the API token: URLs are built from path + query only and the token
travels in a header that is never formatted into a message.
"""

from __future__ import annotations


class EtlError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(EtlError):
    """The configuration (file, flag or environment) is invalid; the message names the key."""


class ApiError(EtlError):
    """An HTTP exchange with the API failed.

    Attributes:
        status: HTTP status, or None when no response arrived (connection dropped, timeout).
        url: path and query of the request (never the host credentials or headers).
    """

    def __init__(self, message: str, *, status: int | None = None, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class RetryableApiError(ApiError):
    """Transient: worth another attempt after a pause."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, status=status, url=url)
        self.retry_after_s = retry_after_s


class WaitTooLongError(ApiError):
    """The server asked us to wait longer than `api.max_wait_s`: the run stops, not sleeps.

    Every other request shares the same budget, so no partition could be read sooner.
    """


class FatalApiError(ApiError):
    """Will not succeed by retrying (400, 403, 404): the stream partition is reported failed."""


class AuthError(FatalApiError):
    """The token was rejected (401): nothing else can succeed, so the run stops."""


class PaginationError(EtlError):
    """The API's paging broke its own contract (repeated cursor, drifting totalCount)."""


class DataError(EtlError):
    """A record does not match its schema; the message names the stream, record and field."""


class WarehouseError(EtlError):
    """The DuckDB warehouse could not be opened, migrated or written."""
