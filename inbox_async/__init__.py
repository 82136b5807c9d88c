"""inbox_async: an asyncio-first Python SDK for the Inbox API (inboxapp.com)."""

from ._client import InboxClient
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    InboxError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from ._limiter import RateLimiter, RateLimitSnapshot, ThrottleEvent, WindowState
from ._transport import ApiDeprecationWarning
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

__version__ = "0.1.0.dev0"

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AddLeadsResult",
    "ApiDeprecationWarning",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ColumnMapping",
    "ConflictError",
    "Context",
    "ImportJob",
    "ImportJobPage",
    "InboxClient",
    "InboxError",
    "InternalServerError",
    "Lead",
    "NotFoundError",
    "PermissionDeniedError",
    "PlatformData",
    "Prospect",
    "ProspectWithContext",
    "RateLimitError",
    "RateLimitSnapshot",
    "RateLimiter",
    "RemoveLeadsResult",
    "Thread",
    "ThrottleEvent",
    "UnprocessableEntityError",
    "UrlEntity",
    "WindowState",
    "__version__",
]
