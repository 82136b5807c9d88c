"""Leads of a list: `client.leads`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar

from .._constants import (
    DEFAULT_BULK_CONCURRENCY,
    DEFAULT_BULK_MAX_WAIT,
    MAX_PLATFORM_IDS_PER_REQUEST,
)
from .._decode import decode
from .._types import Priority
from .._validation import (
    check_column_data,
    check_id,
    check_platform_id,
    check_platform_ids,
    segment,
)
from ..bulk import BulkProgress, BulkReport, BulkUpdateStream, UpdateInput, _BulkRun
from ..models.leads import AddLeadsResult, Lead, RemoveLeadsResult
from ._base import Resource

__all__ = ["Leads"]

T = TypeVar("T")


class Leads(Resource):
    """Update a lead's custom columns, and add or remove leads of a list."""

    __slots__ = ()

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
        # client.request() in two steps, inline: bulk jobs make this call millions of times,
        # and each coroutine layer between the caller and the socket costs CPU on every one.
        request = client._prepare(
            "PATCH",
            f"/lists/{list_id}/leads/{segment(pid)}",
            {"data": values},
            None,
            True,
            timeout,
            max_retries,
            max_rate_limit_wait,
            priority,
        )
        return decode(await client._send(request), Lead)

    async def add(
        self,
        list_id: str,
        platform_ids: Iterable[str | int],
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> AddLeadsResult:
        """Add prospects to a list by platform id, 2,000 per request, merging the results.

        The requests run one after another; if one fails, the ones before it have been applied
        and the call can simply be repeated (ids already in the list come back as `skipped`).
        """
        result = AddLeadsResult()
        async for part in self._in_chunks(
            "POST", list_id, platform_ids, AddLeadsResult, timeout, max_retries
        ):
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
    ) -> RemoveLeadsResult:
        """Remove leads from a list by platform id, 2,000 per request, summing the counts.

        If one request fails, the ones before it have been applied; repeating the call is safe.
        """
        removed = 0
        async for part in self._in_chunks(
            "DELETE", list_id, platform_ids, RemoveLeadsResult, timeout, max_retries
        ):
            removed += part.removed
        return RemoveLeadsResult(removed=removed)

    async def _in_chunks(
        self,
        method: str,
        list_id: str,
        platform_ids: Iterable[str | int],
        cast: type[T],
        timeout: float | None,
        max_retries: int | None,
    ) -> AsyncIterator[T]:
        """Send the ids 2,000 per request, one request after another; yield each answer."""
        check_id("list_id", list_id)
        ids = check_platform_ids("platform_ids", platform_ids)
        size = MAX_PLATFORM_IDS_PER_REQUEST
        for start in range(0, len(ids), size):
            yield await self._client.request(
                method,
                f"/lists/{list_id}/leads",
                cast,
                json={"platformIds": ids[start : start + size]},
                retry_safe=True,
                timeout=timeout,
                max_retries=max_retries,
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
        priority: Priority = "background",
    ) -> BulkReport:
        """Update many leads, `concurrency` at a time; one failure never stops the others.

        `updates` is any iterable or async iterable of `(platform_id, data)` pairs or
        `LeadUpdate` objects, pulled only as workers free up. Every item ends applied (counted
        in `.succeeded`) or failed (listed in `.failed` with its error). With `journal`, a rerun
        of the same job skips what an earlier run applied. Each request goes through the
        client's rate limiter and retries; an item waits up to `max_rate_limit_wait` seconds
        for the rate limit (a day by default: a bulk job outlasts a window rather than fail).
        Its requests are `priority="background"` by default: interactive calls beside it go
        first, and it leaves the limiter's reserve of every window to them.

            report = await client.leads.bulk_update(list_id, ((pid, {col: v}) for pid, v in rows))
            print(report.succeeded, [(f.platform_id, f.error) for f in report.failed])
        """
        run = _BulkRun(
            self,
            list_id,
            updates,
            concurrency=concurrency,
            on_progress=on_progress,
            journal=journal,
            max_wait=max_rate_limit_wait,
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
        priority: Priority = "background",
    ) -> BulkUpdateStream:
        """Like `bulk_update`, but yields each item's `BulkOutcome` as it finishes.

        async with client.leads.bulk_update_stream(list_id, updates) as stream:
            async for outcome in stream:
                write_result(outcome.platform_id, outcome.ok, outcome.error)
        """
        run = _BulkRun(
            self,
            list_id,
            updates,
            concurrency=concurrency,
            on_progress=on_progress,
            journal=journal,
            max_wait=max_rate_limit_wait,
            keep_leads=True,
            priority=priority,
        )
        return BulkUpdateStream(run)
