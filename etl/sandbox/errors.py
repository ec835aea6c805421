"""Error bodies and JSON responses in LaunchDarkly's shapes.

Every error the sandbox sends is `{"code", "message"}` (the shape shared by LaunchDarkly's
`*ErrorRep` schemas and the release-policies `Error`), and 400s add the `errors` list of
`ValidationFailedErrorRep` naming each bad attribute, so a client can always parse an error
body the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from aiohttp import web

from etl.sandbox.records import JSON

UNAUTHORIZED = ("unauthorized", "Invalid access token")
FORBIDDEN_BETA = (
    "forbidden",
    "Forbidden. Access to the requested resource was denied. "
    "This is a beta resource: send the header LD-API-Version: beta.",
)
NOT_FOUND = ("not_found", "Invalid resource identifier")
METHOD_NOT_ALLOWED = ("method_not_allowed", "Method not allowed")
RATE_LIMITED = ("rate_limited", "You've exceeded the API rate limit. Try again later.")
SERVER_ERRORS: dict[int, tuple[str, str]] = {
    500: ("internal_server_error", "An unexpected error occurred. Try again later."),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "The service is temporarily unavailable. Try again later."),
}


class ApiError(Exception):
    """Raised by handlers to answer with an error body; turned into a response by `make_app`.

    Attributes:
        status: HTTP status.
        code: LaunchDarkly error class, e.g. "invalid_request".
        message: Human-readable text.
        errors: (attribute, reason) pairs; present only on validation failures.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = tuple(errors)

    @classmethod
    def validation(cls, errors: Sequence[tuple[str, str]]) -> ApiError:
        """A 400 `ValidationFailedErrorRep` naming every bad attribute."""
        return cls(400, "invalid_request", "validation failed", errors)

    @classmethod
    def not_found(cls) -> ApiError:
        """A 404 `NotFoundErrorRep`."""
        return cls(404, *NOT_FOUND)

    def body(self) -> JSON:
        """The JSON body."""
        body: JSON = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = [
                {"attribute": attribute, "reason": reason} for attribute, reason in self.errors
            ]
        return body

    def response(self, headers: Mapping[str, str] | None = None) -> web.Response:
        """The error as a JSON response."""
        return json_response(self.body(), status=self.status, headers=headers)


def json_response(
    body: JSON | bytes, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response serialized with orjson (bytes are sent as they are)."""
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(
        body=payload, status=status, headers=headers, content_type="application/json"
    )


def error_response(
    status: int, error: tuple[str, str], headers: Mapping[str, str] | None = None
) -> web.Response:
    """A `{code, message}` error response from one of the constants above."""
    return ApiError(status, *error).response(headers)
