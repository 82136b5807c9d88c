"""Leads of a list: `client.leads`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeAlias, TypeVar

from .._config import check_call_options
from .._constants import (
    DEFAULT_BULK_CONCURRENCY,
    DEFAULT_BULK_MAX_WAIT,
    MAX_PLATFORM_IDS_PER_REQUEST,
)
from .._decode import decode
from .._response import RawResponse, to_raw
from .._types import Priority
from .._validation import (
    check_column_data,
    check_id,
    check_platform_id,
    check_platform_ids,
    segment,
)
from ..bulk import BulkProgress, BulkReport, BulkUpdateStream, UpdateInput, _BulkRun
from ..models.leads import (
    AddLeadsResult,
    Lead,
    LeadDataBody,
    PlatformIdsBody,
    RemoveLeadsResult,
)
from ._base import RawView, Resource

__all__ = ["Leads", "LeadsWithRawResponse"]

T = TypeVar("T")

# timeout, max_retries, max_rate_limit_wait, priority: what add/remove pass to each request.
_Options: TypeAlias = tuple[float | None, int | None, float | None, Priority]


class Leads(Resource):
    """Update a lead's custom columns, and add or remove leads of a list."""

    __slots__ = ()

    @property
    def with_raw_response(self) -> LeadsWithRawResponse:
        """The same methods, returning a `RawResponse` (status, headers, timing) each."""
        view = self._raw_view
        if view is None:
            view = self._raw_view = LeadsWithRawResponse(self._raw_twin())
        return view  # type: ignore[no-any-return]

    async def update(
        self,
        list_id: str,
        platform_id: str | int,
        data: Mapping[str, Any],
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> Lead:
        """Set custom column values of one lead; a value of None clears that column.

        `data` maps column ids (`custom_...`, not column names) to str, int, float, bool or
        None. The columns must already exist on the list. Safe to retry: it sets values.
        `priority="background"` queues it behind interactive calls and leaves the reserve.
        """
        check_id("list_id", list_id)
        pid = check_platform_id("platform_id", platform_id)
        values = check_column_data("data", data)
        client = self._client
        # Resource._request inline: bulk jobs make this call millions of times, and each
        # coroutine layer between the caller and the socket costs CPU on every one.
        request = client.build_request(
            "PATCH",
            f"/lists/{list_id}/leads/{segment(pid)}",
            json=LeadDataBody(values),
            retry_safe=True,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            priority=priority,
        )
        if self._raw:
            request.timed = True
            return RawResponse(await client.send(request), request, Lead)  # type: ignore[return-value]
        return decode(await client.send(request), Lead)

    async def add(
        self,
        list_id: str,
        platform_ids: Iterable[str | int],
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> AddLeadsResult:
        """Add prospects to a list by platform id, 2,000 per request, merging the results.

        The requests run one after another; if one fails, the ones before it have been applied
        and the call can simply be repeated (ids already in the list come back as `skipped`).
        `with_raw_response.add` sends one request, so it takes 1 to 2,000 ids.
        """
        options = (timeout, max_retries, max_rate_limit_wait, priority)
        if self._raw:
            return await self._one_request("POST", list_id, platform_ids, AddLeadsResult, options)
        result = AddLeadsResult()
        async for part in self._in_chunks("POST", list_id, platform_ids, AddLeadsResult, options):
            result.added.extend(part.added)
            result.skipped.extend(part.skipped)
            result.failed.extend(part.failed)
        return result

    async def remove(
        self,
        list_id: str,
        platform_ids: Iterable[str | int],
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> RemoveLeadsResult:
        """Remove leads from a list by platform id, 2,000 per request, summing the counts.

        If one request fails, the ones before it have been applied; repeating the call is safe.
        `with_raw_response.remove` sends one request, so it takes 1 to 2,000 ids.
        """
        options = (timeout, max_retries, max_rate_limit_wait, priority)
        if self._raw:
            return await self._one_request(
                "DELETE", list_id, platform_ids, RemoveLeadsResult, options
            )
        removed = 0
        async for part in self._in_chunks(
            "DELETE", list_id, platform_ids, RemoveLeadsResult, options
        ):
            removed += part.removed
        return RemoveLeadsResult(removed=removed)

    async def _in_chunks(
        self,
        method: str,
        list_id: str,
        platform_ids: Iterable[str | int],
        cast: type[T],
        options: _Options,
    ) -> AsyncIterator[T]:
        """Send the ids 2,000 per request, one request after another; yield each answer."""
        check_id("list_id", list_id)
        ids = check_platform_ids("platform_ids", platform_ids)
        # Checked even when there is nothing to send: a mistake shows all the same.
        check_call_options(*options)
        size = MAX_PLATFORM_IDS_PER_REQUEST
        for start in range(0, len(ids), size):
            yield await self._send_ids(method, list_id, ids[start : start + size], cast, options)

    async def _one_request(
        self,
        method: str,
        list_id: str,
        platform_ids: Iterable[str | int],
        cast: type[T],
        options: _Options,
    ) -> T:
        """The raw form of add/remove: exactly one request, so 1 to 2,000 ids."""
        check_id("list_id", list_id)
        ids = check_platform_ids("platform_ids", platform_ids)
        check_call_options(*options)
        size = MAX_PLATFORM_IDS_PER_REQUEST
        if not 1 <= len(ids) <= size:
            name = "add" if method == "POST" else "remove"
            raise ValueError(
                f"platform_ids: with_raw_response.{name}() sends exactly one request, so it "
                f"takes 1 to {size:,} ids, got {len(ids):,}; use leads.{name}() for more"
            )
        return await self._send_ids(method, list_id, ids, cast, options)

    def _send_ids(
        self, method: str, list_id: str, ids: list[str], cast: type[T], options: _Options
    ) -> Awaitable[T]:
        timeout, max_retries, max_rate_limit_wait, priority = options
        return self._request(
            method,
            f"/lists/{list_id}/leads",
            cast,
            json=PlatformIdsBody(ids),
            retry_safe=True,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            priority=priority,
        )

    async def bulk_update(
        self,
        list_id: str,
        updates: Iterable[UpdateInput] | AsyncIterable[UpdateInput],
        *,
        concurrency: int = DEFAULT_BULK_CONCURRENCY,
        on_progress: Callable[[BulkProgress], object] | None = None,
        journal: str | os.PathLike[str] | None = None,
        max_rate_limit_wait: float = DEFAULT_BULK_MAX_WAIT,
        timeout: float | None = None,
        max_retries: int | None = None,
        priority: Priority = "background",
    ) -> BulkReport:
        """Update many leads, `concurrency` at a time; one failure never stops the others.

        `updates` is any iterable or async iterable of `(platform_id, data)` pairs or
        `LeadUpdate` objects, pulled only as workers free up. Every item ends applied (counted
        in `.succeeded`) or failed (listed in `.failed` with its error). With `journal`, a rerun
        of the same job skips what an earlier run applied. Each request goes through the
        client's rate limiter and retries; an item waits up to `max_rate_limit_wait` seconds
        for the rate limit (a day by default: a bulk job outlasts a window rather than fail);
        `timeout` and `max_retries` apply to each item's request (None: the client's). Its
        requests are `priority="background"` by default: interactive calls beside it go first,
        and it leaves the limiter's reserve of every window to them.

            report = await client.leads.bulk_update(list_id, ((pid, {col: v}) for pid, v in rows))
            print(report.succeeded, [(f.platform_id, f.error) for f in report.failed])
        """
        client = self._client
        run = _BulkRun(
            self.update,
            list_id,
            updates,
            base_url=client.base_url,
            rate_limit=lambda: client.rate_limit,
            attempts=lambda: client.stats.attempts,
            max_connections=client.max_connections,
            concurrency=concurrency,
            on_progress=on_progress,
            journal=journal,
            max_wait=max_rate_limit_wait,
            timeout=timeout,
            max_retries=max_retries,
            keep_leads=False,
            priority=priority,
        )
        return await run.run(None)

    def bulk_update_stream(
        self,
        list_id: str,
        updates: Iterable[UpdateInput] | AsyncIterable[UpdateInput],
        *,
        concurrency: int = DEFAULT_BULK_CONCURRENCY,
        on_progress: Callable[[BulkProgress], object] | None = None,
        journal: str | os.PathLike[str] | None = None,
        max_rate_limit_wait: float = DEFAULT_BULK_MAX_WAIT,
        timeout: float | None = None,
        max_retries: int | None = None,
        priority: Priority = "background",
    ) -> BulkUpdateStream:
        """Like `bulk_update`, but yields each item's `BulkOutcome` as it finishes.

        async with client.leads.bulk_update_stream(list_id, updates) as stream:
            async for outcome in stream:
                write_result(outcome.platform_id, outcome.ok, outcome.error)
        """
        client = self._client
        run = _BulkRun(
            self.update,
            list_id,
            updates,
            base_url=client.base_url,
            rate_limit=lambda: client.rate_limit,
            attempts=lambda: client.stats.attempts,
            max_connections=client.max_connections,
            concurrency=concurrency,
            on_progress=on_progress,
            journal=journal,
            max_wait=max_rate_limit_wait,
            timeout=timeout,
            max_retries=max_retries,
            keep_leads=True,
            priority=priority,
        )
        return BulkUpdateStream(run)


class LeadsWithRawResponse(RawView):
    """`client.leads.with_raw_response`: each method returns the call's `RawResponse`.

    `bulk_update` and `bulk_update_stream` are not offered (one request per lead); `add` and
    `remove` send exactly one request, so they take 1 to 2,000 ids.
    """

    __slots__ = ("add", "remove", "update")

    _many_requests: ClassVar[Mapping[str, str]] = {
        "bulk_update": "it sends one request per lead; use with_raw_response.update()",
        "bulk_update_stream": "it sends one request per lead; use with_raw_response.update()",
    }

    def __init__(self, raw: Leads) -> None:
        """Wrap `raw`, a `Leads` in raw mode."""
        self.update = to_raw(raw.update)
        """`Leads.update`, returning the raw response."""
        self.add = to_raw(raw.add)
        """`Leads.add` for 1 to 2,000 ids (one request), returning the raw response."""
        self.remove = to_raw(raw.remove)
        """`Leads.remove` for 1 to 2,000 ids (one request), returning the raw response."""
