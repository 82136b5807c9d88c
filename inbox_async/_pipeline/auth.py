"""Auth stage: adds the bearer token to every attempt."""

from __future__ import annotations

from .._types import Handler, Request, Response

__all__ = ["BearerAuth"]


class BearerAuth:
    """Sets `Authorization: Bearer <token>`; the token never shows in the repr."""

    __slots__ = ("_header",)

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __repr__(self) -> str:
        return "BearerAuth(token=<redacted>)"

    async def __call__(self, request: Request, next: Handler) -> Response:
        request.headers["Authorization"] = self._header
        return await next(request)
