"""Typed models of the API's payloads, one module per API group."""

from .import_jobs import ColumnMapping, ImportJob, ImportJobPage
from .leads import AddLeadsResult, Lead, RemoveLeadsResult
from .prospects import Context, PlatformData, Prospect, ProspectWithContext, Thread, UrlEntity

__all__ = [
    "AddLeadsResult",
    "ColumnMapping",
    "Context",
    "ImportJob",
    "ImportJobPage",
    "Lead",
    "PlatformData",
    "Prospect",
    "ProspectWithContext",
    "RemoveLeadsResult",
    "Thread",
    "UrlEntity",
]
