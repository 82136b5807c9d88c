"""Leads of a list: `client.leads`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._constants import MAX_PLATFORM_IDS_PER_REQUEST
from .._validation import (
    check_column_data,
    check_id,
    check_platform_id,
    check_platform_ids,
    segment,
)
from ..models.leads import AddLeadsResult, Lead, RemoveLeadsResult
from ._base import Resource

__all__ = ["Leads"]


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
    ) -> Lead:
        """Set custom column values of one lead; a value of None clears that column.

        `data` maps column ids (`custom_...`, not column names) to str, int, float, bool or
        None. The columns must already exist on the list. Safe to retry: it sets values.
        """
        check_id("list_id", list_id)
        pid = check_platform_id("platform_id", platform_id)
        values = check_column_data("data", data)
        return await self._client.request(
            "PATCH",
            f"/lists/{list_id}/leads/{segment(pid)}",
            Lead,
            json={"data": values},
            retry_safe=True,
            timeout=timeout,
            max_retries=max_retries,
        )

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
        check_id("list_id", list_id)
        ids = check_platform_ids("platform_ids", platform_ids)
        result = AddLeadsResult()
        for chunk in _chunks(ids):
            part = await self._client.request(
                "POST",
                f"/lists/{list_id}/leads",
                AddLeadsResult,
                json={"platformIds": chunk},
                retry_safe=True,
                timeout=timeout,
                max_retries=max_retries,
            )
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
        check_id("list_id", list_id)
        ids = check_platform_ids("platform_ids", platform_ids)
        removed = 0
        for chunk in _chunks(ids):
            part = await self._client.request(
                "DELETE",
                f"/lists/{list_id}/leads",
                RemoveLeadsResult,
                json={"platformIds": chunk},
                retry_safe=True,
                timeout=timeout,
                max_retries=max_retries,
            )
            removed += part.removed
        return RemoveLeadsResult(removed=removed)


def _chunks(ids: list[str]) -> list[list[str]]:
    size = MAX_PLATFORM_IDS_PER_REQUEST
    return [ids[i : i + size] for i in range(0, len(ids), size)]
