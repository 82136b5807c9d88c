"""Rate limiting: one `Limiter` protocol, two limiters, one set of rules.

    _base.py    what the transport needs of a limiter (`Limiter`, `nowait_limiter`), the state
                types (`RateLimitSnapshot`, `WindowState`, `ThrottleEvent`, `ThrottleReason`),
                and what both limiters share: the option checks, `background_limit`, how long
                a 429 closes the gate (`gate_hold`), the "waiting would take too long" error
    _local.py   `RateLimiter`: every window in this process, synced from the server's headers;
                on the hot path (`try_acquire` / `release_nowait` answer without a coroutine).
                Its docstring states the priority and reserve rules.
    _redis.py   `RedisRateLimiter`: the same rules across processes, its state in Redis (one
                Lua script). Needs the redis extra, so it is imported on its own, never here.

Imports point one way: `_local` and `_redis` import `_base`, which imports neither; headers are
read by `.._headers`, tunables come from `.._constants`.

This package re-exports `_base` and `RateLimiter`: the rest of the SDK imports from
`inbox_async._ratelimit` and does not care which file holds a name. The public names are
re-exported once more, by `inbox_async`.
"""

from __future__ import annotations

from ._base import (
    Limiter,
    RateLimitSnapshot,
    ThrottleEvent,
    ThrottleReason,
    WindowState,
    background_limit,
    check_gate_jitter,
    check_limits,
    check_probe_interval,
    check_reserve,
    gate_hold,
    nowait_limiter,
    too_long,
)
from ._local import RateLimiter

__all__ = [
    "Limiter",
    "RateLimitSnapshot",
    "RateLimiter",
    "ThrottleEvent",
    "ThrottleReason",
    "WindowState",
    "background_limit",
    "check_gate_jitter",
    "check_limits",
    "check_probe_interval",
    "check_reserve",
    "gate_hold",
    "nowait_limiter",
    "too_long",
]
