"""RedisRateLimiter: one rate-limit budget shared by many processes and hosts through Redis.

Needs the `redis` extra: `pip install "inbox-async[redis]"`.

Each window is a sorted set of slots scored by the time they expire. One Lua script per acquire
drops expired slots, checks every window and the shared 429 gate, and takes a slot in all
windows at once, so there is no read-then-write race between processes. Time comes from the
Redis server's clock (`TIME`), the one clock every process shares.

A slot is first held with a provisional expiry (window + the request's timeout, so a process that
dies mid-request cannot hold it for ever); when the response comes back it is re-scored to expire
one window after that moment, the latest the request can have arrived at Inbox. Keys share one
hash tag, so the limiter works on Redis Cluster too.

Every Redis round trip is bounded by `redis_timeout` (and by the request's own timeout when that
is shorter), also on a borrowed client whose socket timeouts are its owner's: a stuck Redis costs
a caller seconds, not a hang. Redis failures are raised as `APIConnectionError` whose message
names the server without its password, with nothing of redis-py's exception attached.

The gate never lives longer than a day (or the longest window, if longer), whatever Retry-After
says. While it has more than a minute to run, one probe request may go about once a minute,
across every process: the acquire script takes a probe lease (`SET NX PX`), and the release of a
2xx probe deletes the gate, reopening it for everyone.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import count
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

from ._config import check_timeout
from ._constants import DEFAULT_RATE_LIMITS, DEFAULT_REDIS_TIMEOUT, PROBE_INTERVAL
from ._exceptions import CLIENT_RATE_LIMITED, APIConnectionError, RateLimitError
from ._headers import ResetReader, gate_jitter, hold_cap, parse_count, parse_retry_after
from ._limiter import (
    RateLimitSnapshot,
    ThrottleEvent,
    ThrottleReason,
    WindowState,
    check_limits,
    check_probe_interval,
)
from ._log import logger
from ._types import Priority

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import AuthenticationError, BusyLoadingError, RedisError, TryAgainError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'RedisRateLimiter needs the redis extra: pip install "inbox-async[redis]"'
    ) from exc

__all__ = ["RedisRateLimiter"]

# Polling interval while every slot is held by requests still in flight somewhere.
_POLL: Final = 0.05
# Extra hold on a provisional slot beyond the request's timeout.
_HOLD_MARGIN: Final = 5.0
# Errors Redis itself calls passing (loading its dataset, a cluster slot moving): worth the
# retry stage's backoff, unlike every other Redis failure (see _failure).
_TRANSIENT: Final = (BusyLoadingError, TryAgainError)

# KEYS: window keys..., gate key, probe key. ARGV: member id, hold seconds, (limit, seconds) per
# window, then callers of this process waiting ahead, probe interval, longest gate (seconds).
# Returns {granted (0, 1, or 2 for a probe), wait seconds (string), reason, in-use count per
# window..., expected wait counting the callers ahead (string), seconds until a probe may go
# (string, -1: none)}.
_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = #KEYS - 2
local ahead = tonumber(ARGV[3 + 2 * n])
local interval = tonumber(ARGV[4 + 2 * n])
local cap = tonumber(ARGV[5 + 2 * n])
local counts = {}
-- A gate written by anything (an older version, a hand) holds no longer than the cap.
local gate = math.min(tonumber(redis.call('GET', KEYS[n + 1]) or '0') or 0, now + cap)
local wait, reason = 0, ''
local eta = 0
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local seconds = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local used = redis.call('ZCARD', KEYS[i])
  counts[i] = used
  if used >= limit then
    local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local w = tonumber(first[2]) - now
    local r = 'window'
    if string.sub(first[1], 1, 2) == 'f:' then r = 'inflight' end
    if w > wait then wait, reason = w, r end
    -- With `ahead` callers of this process before it, it needs a later slot: answered
    -- slots free at their score; one in flight may come back unsent, so no wait is claimed
    -- for it; each `limit` slots further on come a window later at the soonest.
    local index = used - limit + ahead
    local rounds = 0
    if index >= used then
      rounds = math.floor((index - used) / limit) + 1
      index = index - rounds * limit
    end
    local e = rounds * seconds
    if index >= 0 then
      local entry = redis.call('ZRANGE', KEYS[i], index, index, 'WITHSCORES')
      if string.sub(entry[1], 1, 2) == 'd:' then e = e + tonumber(entry[2]) - now end
    end
    if e > eta then eta = e end
  end
end
local probe_in = -1
if gate > now then
  if wait <= 0 and gate - now > interval then
    -- Windows allow it and the gate has more than a probe interval to run: one probe at a
    -- time, across every process, about once an interval.
    local lease = math.ceil(tonumber(ARGV[2]) * 1000)
    if redis.call('SET', KEYS[n + 2], ARGV[1], 'NX', 'PX', lease) then
      wait = -1
    end
  end
  if wait >= 0 then
    if gate - now > wait then wait, reason = gate - now, 'gate' end
    if gate - now > eta then eta = gate - now end
    local pttl = redis.call('PTTL', KEYS[n + 2])
    if pttl == -2 then pttl = 0 end
    if pttl >= 0 and gate - now - pttl / 1000 > interval then probe_in = pttl / 1000 end
  end
end
if wait > 0 then
  local out = {0, tostring(wait), reason}
  for i = 1, n do out[#out + 1] = counts[i] end
  out[#out + 1] = tostring(eta)
  out[#out + 1] = tostring(probe_in)
  return out
end
local hold = tonumber(ARGV[2])
local out = {1, '0', ''}
if wait < 0 then out[1] = 2 end
for i = 1, n do
  local seconds = tonumber(ARGV[2 + 2 * i])
  redis.call('ZADD', KEYS[i], now + seconds + hold, 'f:' .. ARGV[1])
  -- Never shortened: another caller's slot in this key may be held for longer.
  local ttl = math.ceil((seconds + hold) * 1000) + 1000
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  out[#out + 1] = counts[i] + 1
end
out[#out + 1] = '0'
out[#out + 1] = '-1'
return out
"""

# KEYS: window keys..., gate key, probe key. ARGV: member id, sent (0/1), gate seconds (0: none),
# seconds per window, then probe (0/1), answered 2xx (0/1), probe interval in ms.
_RELEASE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = #KEYS - 2
for i = 1, n do
  redis.call('ZREM', KEYS[i], 'f:' .. ARGV[1])
  if ARGV[2] == '1' then
    local seconds = tonumber(ARGV[3 + i])
    redis.call('ZADD', KEYS[i], now + seconds, 'd:' .. ARGV[1])
    -- The ZREM may have emptied the key (Redis then deletes it): the ZADD recreates it with no
    -- expiry of its own. Never shortened, as in acquire.
    local ttl = math.ceil(seconds * 1000) + 1000
    if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
local interval_ms = tonumber(ARGV[6 + n])
if ARGV[4 + n] == '1' then
  local mine = redis.call('GET', KEYS[n + 2]) == ARGV[1]
  if ARGV[2] == '1' and ARGV[5 + n] == '1' then
    -- The server answers normally again: reopen the gate for every process.
    redis.call('DEL', KEYS[n + 1])
    if mine then redis.call('DEL', KEYS[n + 2]) end
  elseif mine then
    if ARGV[2] == '1' then
      redis.call('SET', KEYS[n + 2], 'wait', 'PX', interval_ms)
    else
      redis.call('DEL', KEYS[n + 2])  -- it never left: the next caller probes
    end
  end
end
local gate_for = tonumber(ARGV[3])
if gate_for > 0 then
  local current = tonumber(redis.call('GET', KEYS[n + 1]) or '0') or 0
  if now + gate_for > current then
    -- The key lives exactly as long as the gate it holds (the caller capped that).
    redis.call('SET', KEYS[n + 1], tostring(now + gate_for), 'PX', math.ceil(gate_for * 1000))
    -- The first probe goes an interval after the gate closed.
    redis.call('SET', KEYS[n + 2], 'wait', 'NX', 'PX', interval_ms)
  end
end
return 1
"""


class RedisRateLimiter:
    """A limiter whose windows and 429 gate live in Redis, shared by every process using `key`.

    limiter = RedisRateLimiter("redis://localhost:6379/0", key="inbox:team-42")
    async with InboxClient(limiter=limiter) as client:
        ...
    await limiter.aclose()
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        limits: Sequence[tuple[int, float]] = DEFAULT_RATE_LIMITS,
        key: str = "inbox_async:ratelimit",
        redis: Any = None,
        on_throttle: Callable[[ThrottleEvent], None] | None = None,
        gate_jitter: float = 1.0,
        redis_timeout: float = DEFAULT_REDIS_TIMEOUT,
        probe_interval: float = PROBE_INTERVAL,
    ) -> None:
        """Connect by `url` (owned, closed by aclose) or pass a `redis.asyncio.Redis` (borrowed).

        `redis_timeout` bounds each Redis round trip, connecting included.
        """
        try:
            self._setup(
                url, limits, key, redis, on_throttle, gate_jitter, redis_timeout, probe_interval
            )
        except (TypeError, ValueError) as exc:
            # Tracebacks with locals render this frame: the URL (and its password) leaves it,
            # and the frames below, which hold it too, are cut.
            url = None
            raise exc.with_traceback(None)  # noqa: B904 - the error is re-raised, not wrapped

    def _setup(
        self,
        url: str | None,
        limits: Sequence[tuple[int, float]],
        key: str,
        redis: Any,
        on_throttle: Callable[[ThrottleEvent], None] | None,
        gate_jitter: float,
        redis_timeout: float,
        probe_interval: float,
    ) -> None:
        windows = check_limits(limits, "limits")
        if not windows:
            raise ValueError("limits must hold at least one (requests, seconds) window")
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty str")
        if (url is None) == (redis is None):
            raise ValueError("pass exactly one of url=... or redis=...")
        self._redis_timeout = check_timeout(redis_timeout, "redis_timeout")
        if url is not None:
            if not isinstance(url, str):
                raise TypeError(f"url must be a str, not {type(url).__name__}")
            self._redis = aioredis.from_url(
                url,
                socket_timeout=self._redis_timeout,
                socket_connect_timeout=self._redis_timeout,
                # One immediate reconnect, on connection errors only, covers a pooled connection
                # the server has dropped (a restart, its idle timeout). redis-py's default (10
                # retries with backoff, timeouts included) would multiply every wait, and retry
                # a refused password as if it were a network error.
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            )
            self._owns_redis = True
            self._where = _redacted_url(url)
        else:
            self._redis = redis
            self._owns_redis = False
            self._where = _describe(redis)
        self._windows = windows
        tag = "{" + key + "}"
        self._keys = [f"{tag}:w{i}:{n}/{s:g}" for i, (n, s) in enumerate(windows)]
        self._keys.append(f"{tag}:gate")
        self._keys.append(f"{tag}:probe")
        self._acquire_script = self._redis.register_script(_ACQUIRE)
        self._release_script = self._redis.register_script(_RELEASE)
        self._on_throttle = on_throttle
        self._gate_jitter = float(gate_jitter)
        self._probe_interval = check_probe_interval(probe_interval)
        self._max_hold = hold_cap(seconds for _, seconds in windows)
        self._probes: set[str] = set()
        """Tickets of this process's probes in flight."""
        self._probe_waiter = False
        """Whether a caller of this process waits for the next probe."""
        self._pending = 0
        """Callers of this process inside `acquire`."""
        self._read_reset = ResetReader(self._max_hold, "rate limit (redis)")
        self._prefix = f"{os.getpid()}.{random.getrandbits(48):x}."
        self._ids = count()
        self._counts: list[int] = [0] * len(windows)
        self._in_flight = 0
        self._waiting = 0
        self._gate_until = 0.0
        self._throttled_since = 0.0
        self._throttled_total = 0.0
        self._server: tuple[int | None, int | None, float | None] = (None, None, None)

    @property
    def limits(self) -> tuple[tuple[int, float], ...]:
        """The shared windows as `(requests, seconds)` pairs."""
        return self._windows

    def __repr__(self) -> str:
        # Works on a half-built limiter too: tracebacks with locals render the constructor's.
        if not hasattr(self, "_keys"):
            return "RedisRateLimiter(<not constructed>)"
        return f"RedisRateLimiter({list(self._windows)!r}, key={self._keys[-2][:-5]!r})"

    async def aclose(self) -> None:
        """Close the Redis connection if this limiter opened it."""
        if self._owns_redis:
            await self._redis.aclose()

    async def __aenter__(self) -> RedisRateLimiter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def acquire(
        self, *, max_wait: float, timeout: float | None = None, priority: Priority = "interactive"
    ) -> str:
        """Take a slot in every shared window, waiting (at most `max_wait`) for one."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        hold = (timeout if timeout is not None else 60.0) + _HOLD_MARGIN
        member = self._prefix + str(next(self._ids))
        args: list[Any] = [member, hold]
        for limit, seconds in self._windows:
            args += [limit, seconds]
        args += [0, self._probe_interval, self._max_hold]
        waited = False
        probing = False  # this caller waits for the next probe
        # The callers of this process that came first and still wait are ahead of this one.
        ahead = self._pending
        self._pending += 1
        try:
            while True:
                ahead = args[-3] = min(ahead, self._pending - 1)
                granted, wait, reason, eta, probe_in = await self._run_acquire(args, timeout)
                if granted:
                    self._in_flight += 1
                    if granted == 2:
                        self._probes.add(member)
                    elif self._gate_until:
                        self._gate_until = 0.0  # another process's probe may have reopened it
                    return member
                elapsed = loop.time() - started
                left = max_wait - elapsed
                if elapsed >= max_wait:
                    # A slot held in flight frees by its provisional expiry at the latest.
                    raise _too_long(max(eta, wait), max_wait)
                if eta > left:
                    # Only the next probe could let it through in time; one caller of this
                    # process counts on that, the others are told the wait at once.
                    if not probing and (self._probe_waiter or probe_in is None or probe_in > left):
                        raise _too_long(eta, max_wait)
                    probing = self._probe_waiter = True
                    wait, reason = (_POLL if probe_in is None else probe_in), "probe"
                if not waited:
                    waited = True
                    self._waiting += 1
                    if self._waiting == 1:
                        self._throttled_since = loop.time()
                    self._throttled(reason, None if reason == "inflight" else wait)
                delay = min(wait, _POLL) if reason == "inflight" else wait
                delay = min(delay, max(0.0, left))
                # Processes told the same wait should not all come back in the same instant.
                await asyncio.sleep(delay + random.uniform(0, min(0.02, 0.1 * delay + 0.001)))
        finally:
            self._pending -= 1
            if probing:
                self._probe_waiter = False
            if waited:
                self._waiting -= 1
                if self._waiting == 0:
                    self._throttled_total += loop.time() - self._throttled_since

    async def release(
        self,
        ticket: object,
        *,
        sent: bool,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Re-score the slot to expire one window from now (or free it if never sent)."""
        self._in_flight -= 1
        probe = ticket in self._probes
        if probe:
            self._probes.discard(ticket)
        ok = status is not None and 200 <= status < 300
        gate_for = 0.0
        if probe and sent and ok:
            self._gate_until = 0.0
        if headers is not None:
            self._observe(headers)
            if status == 429:
                retry_after = parse_retry_after(headers.get("Retry-After"), cap=self._max_hold)
                base = 1.0 if retry_after is None else retry_after
                gate_for = min(base + gate_jitter(base, self._gate_jitter), self._max_hold)
                self._gate_until = time.monotonic() + gate_for
                self._throttled("gate", base)
        args: list[Any] = [ticket, 1 if sent else 0, gate_for]
        args += [seconds for _, seconds in self._windows]
        args += [1 if probe else 0, 1 if ok else 0, math.ceil(self._probe_interval * 1000)]
        try:
            # Bounded like every Redis call: the response is in, the caller must not wait on
            # a stuck Redis for its slot's bookkeeping.
            await self._call(self._release_script, args, self._redis_timeout)
        except APIConnectionError as exc:
            # The provisional expiry frees the slot on its own; nothing is lost but time.
            logger.warning("rate limiter: could not release a slot in Redis: %s", exc)

    def snapshot(self) -> RateLimitSnapshot:
        """The state as last seen from this process."""
        gate = max(0.0, self._gate_until - time.monotonic())
        limit, remaining, reset = self._server
        return RateLimitSnapshot(
            windows=tuple(
                WindowState(n, s, used)
                for (n, s), used in zip(self._windows, self._counts, strict=True)
            ),
            server_limit=limit,
            server_remaining=remaining,
            server_reset=reset,
            gate_closed=gate > 0,
            gate_reopens_in=gate,
            in_flight=self._in_flight,
            waiting=self._waiting,
            throttled_seconds=self._throttled_total
            + (time.monotonic() - self._throttled_since if self._waiting else 0.0),
        )

    async def _run_acquire(
        self, args: list[Any], timeout: float | None = None
    ) -> tuple[int, float, str, float, float | None]:
        # A request's own timeout, when shorter, bounds its Redis round trips too: a caller
        # who said 2 s is not kept 3 s by a stuck Redis before anything is sent.
        limit = self._redis_timeout
        if timeout is not None and 0 < timeout < limit:
            limit = timeout
        # A script that ran after all, its answer too late, holds a provisional slot that
        # expires on its own: the shared budget errs on the safe side.
        result = await self._call(self._acquire_script, args, limit)
        n = len(self._windows)
        try:
            self._counts = [int(c) for c in result[3 : 3 + n]]
            reason = result[2].decode() if isinstance(result[2], bytes) else str(result[2])
            granted = int(result[0])
            # Bounded before trusted: a wait is never negative nor longer than the longest hold.
            wait = _bounded(float(result[1]), self._max_hold)
            eta = _bounded(float(result[3 + n]), self._max_hold)
            probe_in = float(result[4 + n])
        except (IndexError, TypeError, ValueError) as exc:
            raise APIConnectionError(
                "rate limiter: Redis answered the acquire script with something unexpected",
                request_sent=False,
            ) from exc
        return (
            granted,
            wait,
            reason,
            eta,
            (_bounded(probe_in, self._max_hold) if probe_in >= 0 else None),
        )

    async def _call(self, script: Any, args: list[Any], limit: float) -> Any:
        """Run a script in Redis within `limit` seconds, or raise the SDK's error for it."""
        try:
            # The deadline holds whatever the client's own socket timeouts (a borrowed client's
            # may have none) and however often it retries inside.
            return await asyncio.wait_for(script(keys=self._keys, args=args), limit)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            failure = self._failure(exc, limit)
        # Raised here, past the except block, so that redis-py's exception is not even chained
        # as __context__: its frames hold the connection's auth_args (the password) as locals,
        # which error trackers and rich tracebacks print.
        raise failure

    def _failure(self, exc: BaseException, limit: float) -> APIConnectionError:
        """The SDK's error for a failed Redis call: a summary, the password scrubbed from it.

        Nothing reached Inbox (request_sent=False). Only what Redis calls passing is retried.
        A timeout is not: the next attempt would wait as long again, so the retry stage's
        backoff would turn seconds into minutes. Nor is a refused or dropped connection, once
        redis-py has reconnected at once (the owned client does): what is left is Redis down or
        a wrong host or port, which the backoff (up to ~15 s with the default retries) would
        only delay reporting, on every call, while bulk runs stall; riding out a Redis outage
        is the caller's choice (retry later, or fall back to the local RateLimiter). Errors
        Redis answered (a refused password, NOAUTH, a wrong database, an unknown command) are
        configuration, which no retry fixes.
        """
        where = self._where
        # On Python 3.10 asyncio's TimeoutError is not the built-in one (an OSError there).
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError, RedisTimeoutError)):
            # The owned client's socket timeout is redis_timeout, never shorter than `limit`; a
            # borrowed client's own may be, and its message says which it was.
            detail = ""
            if not self._owns_redis and isinstance(exc, RedisTimeoutError):
                detail = f": {self._scrub(str(exc))}"
            return APIConnectionError(
                f"rate limiter: Redis did not answer within {limit:g} s ({where}{detail})",
                request_sent=False,
                retryable=False,
            )
        text = str(exc)
        # Recent redis-py keeps the reply's code (WRONGPASS, NOAUTH, ...) apart from its text.
        code = getattr(exc, "status_code", None)
        if isinstance(code, str) and code and not text.startswith(code):
            text = f"{code} {text}"
        summary = self._scrub(f"{type(exc).__name__}: {text}")
        if isinstance(exc, _TRANSIENT):
            return APIConnectionError(
                f"rate limiter: Redis at {where} is not ready ({summary})", request_sent=False
            )
        if isinstance(exc, (RedisConnectionError, OSError)) and not isinstance(
            exc, AuthenticationError
        ):
            message = f"rate limiter: could not reach Redis at {where} ({summary})"
        else:
            message = (
                f"rate limiter: Redis at {where} refused the limiter ({summary}); "
                "check the URL's password and database"
            )
        return APIConnectionError(message, request_sent=False, retryable=False)

    def _scrub(self, text: str) -> str:
        """`text` without the password the Redis client connects with, in any spelling."""
        pool = getattr(self._redis, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", None)
        password = kwargs.get("password") if isinstance(kwargs, dict) else None
        if isinstance(password, str) and password:
            spellings = {password, quote(password), quote(password, safe="")}
            for spelling in sorted(spellings, key=len, reverse=True):
                text = text.replace(spelling, "***")
        return text

    def _observe(self, headers: Mapping[str, str]) -> None:
        remaining = parse_count(headers.get("X-RateLimit-Remaining"))
        if remaining is None:
            return
        reset = self._read_reset(headers.get("X-RateLimit-Reset"))
        self._server = (parse_count(headers.get("X-RateLimit-Limit")), remaining, reset)

    def _throttled(self, reason: str, wait: float | None) -> None:
        shown: ThrottleReason = "gate" if reason in ("gate", "probe") else "window"
        if logger.isEnabledFor(logging.INFO):
            text = "until a slot frees" if wait is None else f"{wait:.2f} s"
            logger.info("rate limit (redis): callers wait %s for the %s", text, shown)
        if self._on_throttle is not None:
            self._on_throttle(ThrottleEvent(shown, wait, max(1, self._waiting)))


def _redacted_url(url: str) -> str:
    """The Redis URL to show in messages: its password masked, its query (options) left out."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the Redis URL given"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hostport}"
    # A query may carry password=..., which redis-py accepts too.
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _describe(client: Any) -> str:
    """Where a borrowed client connects, as far as its pool says (never its password)."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if isinstance(kwargs, dict):
        if kwargs.get("path"):
            return f"unix://{kwargs['path']}"
        if kwargs.get("host"):
            return f"{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    return "the Redis client passed as redis="


def _bounded(value: float, cap: float) -> float:
    return min(max(value, 0.0), cap) if value == value else 0.0  # NaN: nothing known


def _too_long(wait: float, max_wait: float) -> RateLimitError:
    return RateLimitError(
        f"waiting for the shared rate limit would take {wait:.1f} s, "
        f"more than max_wait={max_wait:g} s",
        status_code=429,
        code=CLIENT_RATE_LIMITED,
        retry_after=wait if math.isfinite(wait) else None,
    )
