"""Leads: a prospect on a list, with the list's custom column values."""

from __future__ import annotations

from typing import Any

import msgspec

from ._base import Body, Model
from .prospects import Context, Prospect

__all__ = ["AddLeadsResult", "Lead", "LeadDataBody", "PlatformIdsBody", "RemoveLeadsResult"]


class Lead(Model):
    """A lead in a list: full prospect profile, CRM context, and custom column data."""

    prospect: Prospect = msgspec.field(default_factory=Prospect)
    """The prospect's profile."""
    context: Context = msgspec.field(default_factory=Context)
    """The team's CRM context (tags, status, valuation, notes, threads)."""
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    """Custom column values keyed by column id (not name)."""


class AddLeadsResult(Model):
    """What adding platform ids to a list did, merged over every request it took."""

    added: list[str] = msgspec.field(default_factory=list)
    """Ids added to the list."""
    skipped: list[str] = msgspec.field(default_factory=list)
    """Ids already in the list."""
    failed: list[str] = msgspec.field(default_factory=list)
    """Ids that could not be resolved to a prospect."""


class RemoveLeadsResult(Model):
    """What removing platform ids from a list did, summed over every request it took."""

    removed: int = 0
    """Number of leads removed."""


class LeadDataBody(Body):
    """The body of a lead update: `{"data": {column id: value}}`."""

    data: dict[str, Any]
    """Column id -> value (None clears the column)."""


class PlatformIdsBody(Body):
    """The body of adding or removing leads: `{"platformIds": [...]}`."""

    platform_ids: list[str]
    """X user ids, at most 2,000."""
