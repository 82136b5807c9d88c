"""inbox_async: an asyncio-first Python SDK for the Inbox API (inboxapp.com)."""

from typing import TYPE_CHECKING

from ._client import ClientStats, InboxClient
from ._constants import SDK_VERSION as __version__
from ._exceptions import (
    APIConnectionError,
    ApiDeprecationWarning,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    InboxError,
    InternalServerError,
    JournalMismatchError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from ._ratelimit import RateLimiter, RateLimitSnapshot, ThrottleEvent, WindowState
from ._response import RawResponse
from ._sync import SyncInboxClient
from .bulk import BulkFailure, BulkOutcome, BulkProgress, BulkReport, BulkUpdateStream, LeadUpdate

if TYPE_CHECKING:
    from ._ratelimit._redis import RedisRateLimiter
from .models import (
    AddLeadsResult,
    ColumnMapping,
    Context,
    ImportJob,
    ImportJobPage,
    Lead,
    PlatformData,
    Prospect,
    ProspectWithContext,
    RemoveLeadsResult,
    Thread,
    UrlEntity,
)


def __getattr__(name: str) -> object:
    # RedisRateLimiter needs the optional redis extra: import it only when asked for.
    if name == "RedisRateLimiter":
        from ._ratelimit._redis import RedisRateLimiter

        return RedisRateLimiter
    raise AttributeError(f"module 'inbox_async' has no attribute {name!r}")


__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AddLeadsResult",
    "ApiDeprecationWarning",
    "AuthenticationError",
    "BadRequestError",
    "BulkFailure",
    "BulkOutcome",
    "BulkProgress",
    "BulkReport",
    "BulkUpdateStream",
    "ClientClosedError",
    "ClientStats",
    "ColumnMapping",
    "ConflictError",
    "Context",
    "ImportJob",
    "ImportJobPage",
    "InboxClient",
    "InboxError",
    "InternalServerError",
    "JournalMismatchError",
    "Lead",
    "LeadUpdate",
    "NotFoundError",
    "PermissionDeniedError",
    "PlatformData",
    "Prospect",
    "ProspectWithContext",
    "RateLimitError",
    "RateLimitSnapshot",
    "RateLimiter",
    "RawResponse",
    "RedisRateLimiter",
    "RemoveLeadsResult",
    "SyncInboxClient",
    "Thread",
    "ThrottleEvent",
    "UnprocessableEntityError",
    "UrlEntity",
    "WindowState",
    "__version__",
]
