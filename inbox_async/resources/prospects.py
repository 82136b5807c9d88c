"""Prospects: `client.prospects`."""

from __future__ import annotations

from msgspec import UNSET, UnsetType

from .._response import to_raw
from .._types import Priority
from .._validation import check_id, check_platform_id
from ..models.prospects import ContextUpdate, ProspectWithContext
from ._base import RawView, Resource

__all__ = ["Prospects", "ProspectsWithRawResponse"]


class Prospects(Resource):
    """Look up prospects and update the team's context on them."""

    __slots__ = ()

    @property
    def with_raw_response(self) -> ProspectsWithRawResponse:
        """The same methods, returning a `RawResponse` (status, headers, timing) each."""
        view = self._raw_view
        if view is None:
            view = self._raw_view = ProspectsWithRawResponse(self._raw_twin())
        return view  # type: ignore[no-any-return]

    async def lookup(
        self,
        platform_id: str | int,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> ProspectWithContext | None:
        """The prospect with this platform id, or None if Inbox does not know it."""
        pid = check_platform_id("platform_id", platform_id)
        return await self._request(
            "GET",
            "/prospects/lookup",
            ProspectWithContext | None,  # type: ignore[arg-type]
            params=[("platformId", pid)],
            retry_safe=True,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            priority=priority,
        )

    async def get(
        self,
        prospect_id: str,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> ProspectWithContext:
        """The prospect with this Inbox prospect id."""
        check_id("prospect_id", prospect_id)
        return await self._request(
            "GET",
            f"/prospects/{prospect_id}",
            ProspectWithContext,
            retry_safe=True,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            priority=priority,
        )

    async def update_context(
        self,
        prospect_id: str,
        *,
        notes: str | UnsetType | None = UNSET,
        valuation: float | UnsetType | None = UNSET,
        status_id: str | UnsetType | None = UNSET,
        add_tags: list[str] | UnsetType = UNSET,
        remove_tags: list[str] | UnsetType = UNSET,
        assignee_id: str | UnsetType | None = UNSET,
        done: bool | UnsetType = UNSET,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> ProspectWithContext:
        """Change the team's context on a prospect; fields left out are left alone.

        None clears `notes`, `valuation`, `status_id` or `assignee_id`. `assignee_id` and `done`
        apply to every thread of the prospect on the team.
        """
        check_id("prospect_id", prospect_id)
        _check_optional("notes", notes, str)
        _check_optional("valuation", valuation, (int, float))
        _check_optional("status_id", status_id, str)
        _check_optional("assignee_id", assignee_id, str)
        _check_tags("add_tags", add_tags)
        _check_tags("remove_tags", remove_tags)
        if done is not UNSET and not isinstance(done, bool):
            raise TypeError(f"done must be a bool, not {type(done).__name__}")
        update = ContextUpdate(
            notes=notes,
            valuation=valuation,
            status_id=status_id,
            add_tags=add_tags,
            remove_tags=remove_tags,
            assignee_id=assignee_id,
            done=done,
        )
        if update == ContextUpdate():
            raise ValueError("update_context needs at least one field to change")
        return await self._request(
            "PATCH",
            f"/prospects/{prospect_id}/context",
            ProspectWithContext,
            json=update,
            retry_safe=True,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            priority=priority,
        )


class ProspectsWithRawResponse(RawView):
    """`client.prospects.with_raw_response`: each method returns the call's `RawResponse`."""

    __slots__ = ("get", "lookup", "update_context")

    def __init__(self, raw: Prospects) -> None:
        """Wrap `raw`, a `Prospects` in raw mode."""
        self.lookup = to_raw(raw.lookup)
        """`Prospects.lookup`, returning the raw response (`parse()` may give None)."""
        self.get = to_raw(raw.get)
        """`Prospects.get`, returning the raw response."""
        self.update_context = to_raw(raw.update_context)
        """`Prospects.update_context`, returning the raw response."""


def _check_optional(name: str, value: object, types: type | tuple[type, ...]) -> None:
    if value is UNSET or value is None:
        return
    if isinstance(value, bool) or not isinstance(value, types):
        raise TypeError(f"{name} has the wrong type: {type(value).__name__}")


def _check_tags(name: str, value: object) -> None:
    if value is UNSET:
        return
    if not isinstance(value, list) or not all(isinstance(tag, str) and tag for tag in value):
        raise TypeError(f"{name} must be a list of non-empty tag id strings")
