"""Import jobs of a list: `client.import_jobs`."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import ClassVar, Final, TypeAlias

from .._config import check_call_options
from .._constants import MAX_IMPORT_JOBS_PAGE
from .._response import to_raw
from .._types import Priority
from .._validation import check_id
from ..models.import_jobs import (
    ColumnMapping,
    CreateImportJobBody,
    CsvImport,
    ImportJob,
    ImportJobPage,
)
from ._base import RawView, Resource

__all__ = ["ImportJobIterator", "ImportJobs", "ImportJobsWithRawResponse"]

IMPORT_JOB_STATUSES: Final = frozenset(
    {"queued", "starting", "running", "paused", "completed", "failed", "canceled"}
)
_MERGE_STRATEGIES: Final = frozenset({"overwrite"})
# timeout, max_retries, max_rate_limit_wait, priority: what each page's request is sent with.
_Options: TypeAlias = tuple[float | None, int | None, float | None, Priority]


class ImportJobs(Resource):
    """List, create and cancel the import jobs of a list."""

    __slots__ = ()

    @property
    def with_raw_response(self) -> ImportJobsWithRawResponse:
        """The same methods, returning a `RawResponse` (status, headers, timing) each."""
        view = self._raw_view
        if view is None:
            view = self._raw_view = ImportJobsWithRawResponse(self._raw_twin())
        return view  # type: ignore[no-any-return]

    def list(
        self,
        list_id: str,
        *,
        status: str | Iterable[str] | None = None,
        limit: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> ImportJobIterator:
        """Every import job of the list, newest first, fetched a page at a time as you iterate.

        The options apply to each page's request.

        async for job in client.import_jobs.list(list_id, status="running"):
            print(job.id, job.processed_count)
        """
        check_id("list_id", list_id)
        statuses = _check_statuses(status)
        _check_limit(limit)
        options = (timeout, max_retries, max_rate_limit_wait, priority)
        # Now, not at the first page: the iterator may be handed on before it is used.
        check_call_options(*options)
        return ImportJobIterator(self._page, list_id, statuses, limit, options=options)

    async def list_page(
        self,
        list_id: str,
        *,
        status: str | Iterable[str] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> ImportJobPage:
        """One page of the list's import jobs; pass `next_cursor` back for the next one."""
        check_id("list_id", list_id)
        statuses = _check_statuses(status)
        _check_limit(limit)
        if cursor is not None and (not isinstance(cursor, str) or not cursor):
            raise TypeError("cursor must be a non-empty str or None")
        return await self._page(
            list_id, statuses, cursor, limit, (timeout, max_retries, max_rate_limit_wait, priority)
        )

    async def _page(
        self,
        list_id: str,
        statuses: builtins.list[str],
        cursor: str | None,
        limit: int | None,
        options: _Options,
    ) -> ImportJobPage:
        params = [("status", status) for status in statuses]
        if cursor is not None:
            params.append(("cursor", cursor))
        if limit is not None:
            params.append(("limit", str(limit)))
        timeout, max_retries, max_rate_limit_wait, priority = options
        return await self._request(
            "GET",
            f"/lists/{list_id}/import-jobs",
            ImportJobPage,
            params=params,
            retry_safe=True,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            priority=priority,
        )

    async def create_csv(
        self,
        list_id: str,
        content: str,
        *,
        file_name: str,
        column_mapping: Mapping[str, str] | Iterable[ColumnMapping] = (),
        merge_strategy: str = "overwrite",
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> ImportJob:
        """Start importing CSV text into the list; `column_mapping` maps CSV headers to columns.

        Not retried after a timeout or a 5xx, since a repeat could start a second import: only
        a connection that was refused (the request never left) is tried again.
        """
        check_id("list_id", list_id)
        if not isinstance(content, str):
            raise TypeError(f"content must be CSV text (str), not {type(content).__name__}")
        if not content.strip():
            raise ValueError("content must not be empty")
        if not isinstance(file_name, str) or not file_name:
            raise ValueError("file_name must be a non-empty str")
        if merge_strategy not in _MERGE_STRATEGIES:
            raise ValueError(f"merge_strategy must be one of {sorted(_MERGE_STRATEGIES)}")
        mapping = _check_mapping(column_mapping)
        body = CreateImportJobBody(
            CsvImport(
                content=content,
                file_name=file_name,
                column_mapping=mapping,
                merge_strategy=merge_strategy,
            )
        )
        return await self._request(
            "POST",
            f"/lists/{list_id}/import-jobs",
            ImportJob,
            json=body,
            retry_safe=False,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            priority=priority,
        )

    async def cancel(
        self,
        list_id: str,
        import_job_id: str,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> ImportJob:
        """Cancel a queued or running import job."""
        check_id("list_id", list_id)
        check_id("import_job_id", import_job_id)
        return await self._request(
            "POST",
            f"/lists/{list_id}/import-jobs/{import_job_id}/cancel",
            ImportJob,
            json={},
            retry_safe=True,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            priority=priority,
        )


class ImportJobsWithRawResponse(RawView):
    """`client.import_jobs.with_raw_response`: each method returns the call's `RawResponse`.

    `list` is not offered (one request per page): page with `list_page` instead.
    """

    __slots__ = ("cancel", "create_csv", "list_page")

    _many_requests: ClassVar[Mapping[str, str]] = {
        "list": "it sends one request per page; use with_raw_response.list_page()",
    }

    def __init__(self, raw: ImportJobs) -> None:
        """Wrap `raw`, an `ImportJobs` in raw mode."""
        self.list_page = to_raw(raw.list_page)
        """`ImportJobs.list_page`, returning the raw response."""
        self.create_csv = to_raw(raw.create_csv)
        """`ImportJobs.create_csv`, returning the raw response."""
        self.cancel = to_raw(raw.cancel)
        """`ImportJobs.cancel`, returning the raw response."""


class ImportJobIterator:
    """Async iterator over every import job of a list, one page request at a time."""

    def __init__(
        self,
        fetch: Callable[
            [str, builtins.list[str], str | None, int | None, _Options], Awaitable[ImportJobPage]
        ],
        list_id: str,
        statuses: list[str],
        limit: int | None,
        *,
        options: _Options,
    ) -> None:
        # The resource's page request: a bound method, so the iterator needs nothing else of it.
        self._fetch = fetch
        self._list_id = list_id
        self._statuses = statuses
        self._limit = limit
        self._options = options

    def __aiter__(self) -> AsyncIterator[ImportJob]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ImportJob]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = await self._fetch(
                self._list_id,
                self._statuses,
                cursor,
                self._limit,
                self._options,
            )
            for job in page.data:
                yield job
            if not page.next_cursor or page.next_cursor in seen:
                # A cursor seen before would loop forever; the server has nothing new.
                return
            seen.add(page.next_cursor)
            cursor = page.next_cursor


def _check_statuses(status: str | Iterable[str] | None) -> list[str]:
    if status is None:
        return []
    statuses = [status] if isinstance(status, str) else list(status)
    for value in statuses:
        if value not in IMPORT_JOB_STATUSES:
            raise ValueError(f"status must be one of {sorted(IMPORT_JOB_STATUSES)}, got {value!r}")
    return statuses


def _check_limit(limit: int | None) -> None:
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int, not {type(limit).__name__}")
    if not 1 <= limit <= MAX_IMPORT_JOBS_PAGE:
        raise ValueError(f"limit must be 1..{MAX_IMPORT_JOBS_PAGE}, got {limit}")


def _check_mapping(
    column_mapping: Mapping[str, str] | Iterable[ColumnMapping],
) -> list[ColumnMapping]:
    if isinstance(column_mapping, Mapping):
        items = [
            ColumnMapping(csv_header=header, target_column_id=column)
            for header, column in column_mapping.items()
        ]
    elif isinstance(column_mapping, (str, bytes)):
        raise TypeError("column_mapping must be a mapping or an iterable of ColumnMapping")
    else:
        items = list(column_mapping)
    for item in items:
        if not isinstance(item, ColumnMapping):
            raise TypeError("column_mapping items must be ColumnMapping")
        if not isinstance(item.csv_header, str) or not item.csv_header:
            raise ValueError("column_mapping headers must be non-empty str")
        if not isinstance(item.target_column_id, str) or not item.target_column_id:
            raise ValueError("column_mapping column ids must be non-empty str")
    return items
