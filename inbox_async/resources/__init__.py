"""Endpoint groups, one module per API group (named like the modules of `models`)."""

from .import_jobs import ImportJobIterator, ImportJobs, ImportJobsWithRawResponse
from .leads import Leads, LeadsWithRawResponse
from .prospects import Prospects, ProspectsWithRawResponse

__all__ = [
    "ImportJobIterator",
    "ImportJobs",
    "ImportJobsWithRawResponse",
    "Leads",
    "LeadsWithRawResponse",
    "Prospects",
    "ProspectsWithRawResponse",
]
