"""The request pipeline: stages composed once, in front of the transport.

A stage is a callable `(request, next) -> response`; `compose` binds each to the next so that a
call runs auth, then retry and backoff (which runs the rate limiter before every attempt), then
the transport. Decoding happens on the way out, in the client, once the pipeline has a response.
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
