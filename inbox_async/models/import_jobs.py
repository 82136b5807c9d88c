"""Import jobs: bulk additions to a list from a CSV file, followers or likes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from ._base import Body, Model

__all__ = ["ColumnMapping", "CreateImportJobBody", "CsvImport", "ImportJob", "ImportJobPage"]


class ImportJob(Model):
    """An import into a list."""

    id: str | None = None
    """Import job id."""
    type: str | None = None
    """"csv", "followers" or "likes" (others kept as given)."""
    status: str | None = None
    """queued, starting, running, paused, completed, failed or canceled (others kept)."""
    total_count: int | None = None
    """Rows or accounts to import, once known."""
    processed_count: int | None = None
    """Rows processed so far."""
    added_count: int | None = None
    """Leads added."""
    skipped_count: int | None = None
    """Rows skipped (already in the list)."""
    failed_count: int | None = None
    """Rows that failed."""
    error: str | None = None
    """Why the job failed, if it did."""
    created_at: datetime | None = None
    """When the job was created."""
    updated_at: datetime | None = None
    """When the job last changed."""
    completed_at: datetime | None = None
    """When the job finished."""


class ImportJobPage(Model):
    """One page of a list's import jobs."""

    data: list[ImportJob] = msgspec.field(default_factory=list)
    """The jobs on this page."""
    next_cursor: str | None = None
    """Cursor of the next page, or None on the last one."""


class ColumnMapping(msgspec.Struct, kw_only=True, rename="camel", frozen=True):
    """Maps a CSV header to the list column it fills."""

    csv_header: str
    """Header of the CSV column."""
    target_column_id: str
    """Id of the list column (e.g. "custom_q5cktl47a6pqa74eu06fz89v")."""


class CsvImport(Body, kw_only=True):
    """What to import from CSV text: the `data` of a `CreateImportJobBody`."""

    type: Literal["csv"] = "csv"
    """The import's kind; the SDK creates CSV imports only."""
    content: str
    """The CSV text."""
    file_name: str
    """The name the import shows under in Inbox."""
    column_mapping: list[ColumnMapping]
    """CSV header -> list column."""
    merge_strategy: str
    """What to do with leads already in the list ("overwrite")."""


class CreateImportJobBody(Body):
    """The body of creating an import job: `{"data": {...}}`."""

    data: CsvImport
    """The import."""
