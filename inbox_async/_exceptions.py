"""The SDK's exceptions, and the one warning it issues.

Everything the SDK raises on purpose derives from `InboxError`; bad arguments raise the built-in
`ValueError` or `TypeError` before anything is sent. Only `asyncio.CancelledError` passes through
untouched.

    InboxError
    ├── ClientClosedError            the client was used after aclose()
    ├── JournalMismatchError         a bulk journal made for another job (also a ValueError)
    ├── APIConnectionError           no usable response: refused, reset, DNS, TLS, ...
    │   └── APITimeoutError          the request took longer than its timeout
    ├── APIResponseValidationError   a 2xx whose body is not the expected JSON
    └── APIStatusError               a response with a 3xx/4xx/5xx status
        ├── BadRequestError            400
        ├── AuthenticationError        401
        ├── PermissionDeniedError      403
        ├── NotFoundError              404
        ├── ConflictError              409
        ├── UnprocessableEntityError   422
        ├── RateLimitError             429
        └── InternalServerError        5xx

`ApiDeprecationWarning` (a `UserWarning`, not an error) says the API marked an endpoint as going
away; the transport issues it once per client.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "ApiDeprecationWarning",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "InboxError",
    "InternalServerError",
    "JournalMismatchError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
]


class InboxError(Exception):
    """Base class of every error the SDK raises on purpose."""


class ClientClosedError(InboxError, RuntimeError):
    """The client was used after it was closed."""


class JournalMismatchError(InboxError, ValueError):
    """A bulk journal belongs to another job (list or server), or to none: it is not reused."""


class APIConnectionError(InboxError):
    """The request got no usable response (refused, reset, DNS failure, TLS error, ...)."""

    method: str
    """HTTP method of the failed request."""
    path: str
    """Path of the failed request, relative to the base URL."""
    request_sent: bool
    """False only where the request provably never reached the server (connection refused)."""
    retryable: bool
    """False where another attempt cannot help (an untrusted TLS certificate, a Redis password
    refused): the retry stage raises such an error at once."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        request_sent: bool = True,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.request_sent = request_sent
        self.retryable = retryable


class APITimeoutError(APIConnectionError):
    """The request took longer than its timeout."""


class APIResponseValidationError(InboxError):
    """A successful response whose body is not the JSON the SDK expected."""

    status_code: int
    """HTTP status of the response."""
    request_id: str | None
    """Value of the response's X-Request-Id header, if any."""

    def __init__(self, message: str, *, status_code: int, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.request_id = request_id


class APIStatusError(InboxError):
    """The API answered with an error status."""

    status_code: int
    """HTTP status of the response."""
    code: str | None
    """Machine-readable error code from the body (e.g. "RATE_LIMITED"), if any."""
    message: str
    """Human-readable message from the body, or a summary of a body that was not JSON."""
    request_id: str | None
    """Value of the response's X-Request-Id header, if any."""
    headers: Mapping[str, str]
    """Headers of the response."""
    body: bytes
    """Raw response body (truncated to 4 KiB)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.headers = headers if headers is not None else {}
        self.body = body[:4096]

    def __str__(self) -> str:
        parts = [f"{self.status_code}"]
        if self.code:
            parts.append(self.code)
        text = f"{' '.join(parts)}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class BadRequestError(APIStatusError):
    """400: bad parameters or malformed JSON."""


class AuthenticationError(APIStatusError):
    """401: missing, invalid, expired or revoked token."""


class PermissionDeniedError(APIStatusError):
    """403: another team's resource, or the plan or role lacks it."""


class NotFoundError(APIStatusError):
    """404: the list, lead, prospect or import job does not exist."""


class ConflictError(APIStatusError):
    """409: duplicate or state conflict."""


class UnprocessableEntityError(APIStatusError):
    """422: valid JSON, invalid data."""


class RateLimitError(APIStatusError):
    """429: the team's rate limit is exhausted."""

    retry_after: float | None
    """Seconds the server (or the local limiter) asked to wait, if known."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        code: str | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            code=code,
            request_id=request_id,
            headers=headers,
            body=body,
        )
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the server (or a proxy in front of it) failed."""


class ApiDeprecationWarning(UserWarning):
    """The API answered with a Deprecation or Sunset header: the endpoint is going away."""


# The `code` of a RateLimitError raised by the SDK's own limiter rather than by the server.
CLIENT_RATE_LIMITED = "CLIENT_RATE_LIMITED"

STATUS_ERRORS: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return InternalServerError
    return STATUS_ERRORS.get(status, APIStatusError)
