"""The request pipeline: stages composed once, in front of the transport.

A call goes through auth, then retry and backoff, then the transport (which holds a rate-limit
slot for each attempt, see `ratelimit`), then decoding. Auth is a request hook (`BearerAuth`):
its header is the same for every attempt, so the client applies it once, when it builds the
request. The stages that wrap an attempt are callables `(request, next) -> response`; `compose`
binds each to the next in front of the transport. The client decodes once the pipeline has a
response.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from .._types import Handler, Stage

__all__ = ["compose"]


def compose(stages: Sequence[Stage], transport: Handler) -> Handler:
    """Bind the stages, outermost first, in front of the transport."""
    handler = transport
    for stage in reversed(stages):
        # partial() is a C call: no extra Python frame per stage on the hot path.
        handler = partial(stage, next=handler)
    return handler
