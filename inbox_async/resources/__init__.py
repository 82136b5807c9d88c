"""Endpoint groups, one module per API group (named like the modules of `models`)."""

from .import_jobs import ImportJobIterator, ImportJobs
from .leads import Leads
from .prospects import Prospects

__all__ = ["ImportJobIterator", "ImportJobs", "Leads", "Prospects"]
