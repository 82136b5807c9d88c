"""Auth: the bearer token on every request, before it enters the retry loop."""

from __future__ import annotations

from ._types import Request

__all__ = ["BearerAuth"]


class BearerAuth:
    """Sets `Authorization: Bearer <token>`; the token never shows in the repr."""

    __slots__ = ("_header",)

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __repr__(self) -> str:
        return "BearerAuth(token=<redacted>)"

    def __call__(self, request: Request) -> None:
        """Add the header to `request`; every attempt of the call sends it."""
        request.headers["Authorization"] = self._header
