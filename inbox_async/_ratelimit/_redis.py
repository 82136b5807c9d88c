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

Priorities follow the rules of the local `RateLimiter` (see `_local.py`), across processes:
callers that cannot go at once queue in Redis, interactive ones before background ones, first
come first served within each; background callers fill at most `background_limit` slots of each
window, leave the server's reserve to the team's other tools (rule 3: with a shared window of
the server's size, the others' usage is the server's count less that window's, estimated at each
release that carries a reading and kept in Redis with it; without one, the server's last
Remaining is kept above the reserve), and their grants are paced one gap apart (the gap kept in
Redis).

Waiters do not poll. Every script (an ask, a release, a waiter leaving) grants free slots to the
head of the queue and publishes each grant on its owner's wake-up channel (one subscription per
limiter), so a request costs its acquire and its release, or one round trip for both where they
coalesce: the release of a 2xx answer (not a probe's) waits a few milliseconds for the same
process's next ask, which carries it into Redis in the same script call (a bulk worker releases
and asks again within one turn of the loop), or goes on its own when no ask comes; its slot
frees one window after the answer, not after the call that carried it. A 429, a probe or a
request not sent is released at once, and `aclose` sends what is pending. A grant may start up
to 0.1 s after the script that made it (its caller sleeps until then), so a release that runs
just before a slot frees hands it out. Only the head of the queue keeps a timer, for when its
slot is due; the script that makes a new head tells it when that is, and a release tells a head
that only its answer could time. Every waiter asks again at least every 30 s, which keeps its
queue entry from lapsing (a dead process's entries lapse). What is published while a process is
not subscribed is lost: each new subscription (and reconnection) catches that process's waiters
up in one round trip (a grant they missed is taken; the head of the queue asks again; a waiter
behind it is told later, when it is the head). A waiter that gives up leaves the queue and hands
back a slot granted meanwhile. `round_trips` counts the Redis calls a limiter made.

The gate never lives longer than a day (or the longest window, if longer), whatever Retry-After
says. While it has more than a minute to run, one probe request may go about once a minute,
across every process: the acquire script takes a probe lease (`SET NX PX`), and the release of a
2xx probe deletes the gate, reopening it for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from itertools import count
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

from .._config import check_timeout
from .._constants import (
    DEFAULT_GATE_JITTER,
    DEFAULT_RATE_LIMITS,
    DEFAULT_REDIS_TIMEOUT,
    DEFAULT_RESERVE,
    PROBE_INTERVAL,
    RATE_LIMIT_HEADER,
    RATE_LIMIT_RECHECK,
    RATE_REMAINING_HEADER,
    RATE_RESET_HEADER,
)
from .._constants import REDIS_HOLD_MARGIN as _HOLD_MARGIN
from .._exceptions import APIConnectionError
from .._headers import MAX_COUNT, ResetReader, hold_cap, parse_count
from .._log import logger
from .._types import Priority
from ._base import (
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
)
from ._base import too_long as _too_long

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

# A grant may start this far ahead of the script that makes it (its caller sleeps until then):
# a release that runs a moment before a slot frees hands it out, sparing the waiter a round
# trip. It bounds how long a 429 or an interactive arrival can be too late to hold such a grant.
_HORIZON: Final = 0.1
# A waiter asks Redis again at least this often: its queue entry lapses (its process may have
# died) a little later than that.
_MAX_NAP: Final = 30.0
# How long a waiter naps when only an answer can tell when its slot frees: the release that
# tells wakes it (the first such waiter in the queue, one per release); this bounds a wake-up
# lost with a dropped connection (a new subscription catches every waiter up anyway).
_BLIND_NAP: Final = _MAX_NAP
# How often the caller waiting for the next probe asks when Redis cannot say when it is due.
_PROBE_RECHECK: Final = 1.0
# A failed subscription is not tried again sooner than this.
_RELISTEN: Final = 1.0
# How long the release of a 2xx answer waits for the same process's next ask to carry it (one
# round trip for both) before it goes on its own. Short: until it is in, other processes'
# waiters that only its answer can time wait too.
_RELEASE_DELAY: Final = 0.005
_STATE_KEYS: Final = (
    "gate",
    "probe",
    "queue",
    "queue-meta",
    "queue-lapse",
    "pace",
    "server",
    "queue-blind",
)
# Errors Redis itself calls passing (loading its dataset, a cluster slot moving): worth the
# retry stage's backoff, unlike every other Redis failure (see _failure).
_TRANSIENT: Final = (BusyLoadingError, TryAgainError)

# One script for every operation, so that each runs atomically against the same state.
# KEYS: window keys..., gate, probe, queue, queue meta, queue lapse, pace, server, blind waiters.
# ARGV: op ('a' ask, 'l' leave, 'r' releases only, 'w' catch up), member, background gap,
# horizon, wake-channel prefix, reserve, longest hold, lapse grace, longest nap, then (limit,
# seconds, background limit) per window, then the op's own arguments (see each op).
#
# A window is a sorted set of at most `limit` chains, each scored by the time it frees: a slot
# answered at t frees at t + window ('d:' members); one granted and not yet answered holds a
# provisional expiry, start + window + hold ('f:' members). A grant takes a free chain, or one
# that frees by its start: the request it replaces arrived a whole window before, so no window
# ever counts more than `limit` arrivals. Background callers may take only `background limit`
# chains of each window. A grant may start up to `horizon` seconds ahead (the caller sleeps
# until then): a script that runs a little before a slot frees can still hand it out.
_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = #KEYS - 8
local GATE, PROBE, Q, META, LAPSE, PACE, SRV, BLIND =
  KEYS[n + 1], KEYS[n + 2], KEYS[n + 3], KEYS[n + 4], KEYS[n + 5], KEYS[n + 6], KEYS[n + 7],
  KEYS[n + 8]
local op, id = ARGV[1], ARGV[2]
local gap, horizon, wake = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local reserve, cap = tonumber(ARGV[6]), tonumber(ARGV[7])
local grace, max_nap = tonumber(ARGV[8]), tonumber(ARGV[9])
local limit, seconds, bglimit = {}, {}, {}
for i = 1, n do
  limit[i] = tonumber(ARGV[7 + 3 * i])
  seconds[i] = tonumber(ARGV[8 + 3 * i])
  bglimit[i] = tonumber(ARGV[9 + 3 * i])
end
local A = 9 + 3 * n
-- Background entries of the queue sort after every interactive one (scores are enqueue times).
local BG = 1e11

local function keep(key, ms)
  -- Never shortened: another caller's entry in this key may need it for longer.
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end

for i = 1, n do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now) end
-- Waiters that stopped asking (their process died) leave the queue.
local lapsed = redis.call('ZRANGEBYSCORE', LAPSE, '-inf', now)
for _, m in ipairs(lapsed) do
  redis.call('ZREM', Q, m)
  redis.call('HDEL', META, m)
  redis.call('ZREM', BLIND, m)
end
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', LAPSE, '-inf', now) end

-- The queue's head as the script found it: a new head is told when its slot is due.
local first_head = redis.call('ZRANGE', Q, 0, 0)[1]

-- A gate written by anything (an older version, a hand) holds no longer than the cap.
local gate = math.min(tonumber(redis.call('GET', GATE) or '0') or 0, now + cap)

local function same_size(lim)
  -- The window of the server's size, if there is one.
  for i = 1, n do
    if limit[i] == lim then return i end
  end
  return nil
end

local function server_hold()
  -- Until when the server's Remaining keeps background work back (0: it does not).
  if reserve <= 0 then return 0 end
  local s = redis.call('HMGET', SRV, 'budget', 'limit', 'until', 'others')
  local budget, lim, till = tonumber(s[1]), tonumber(s[2]), tonumber(s[3])
  if not budget or not lim or not till or till <= now then return 0 end
  till = math.min(till, now + cap)
  local j = same_size(lim)
  if j then
    -- The window counts our own usage: only the team's other tools' takes room (rule 3).
    local others = math.min(tonumber(s[4]) or 0, lim)
    if others <= 0 then return 0 end
    local c = redis.call('ZCARD', KEYS[j])
    local room = bglimit[j] - others
    if c < room then return 0 end
    if room > 0 then
      -- Below `room` once the (c - room + 1)-th oldest slot frees, if it is answered.
      local e = redis.call('ZRANGE', KEYS[j], c - room, c - room, 'WITHSCORES')
      if e[1] and string.sub(e[1], 1, 2) == 'd:' then return math.min(till, tonumber(e[2])) end
    end
    return till
  end
  local bl = math.max(1, math.floor(lim * (1 - reserve) + 1e-9))
  if budget > lim - bl then return 0 end
  return till
end

local function share(i, prio)
  if prio == 'b' then return bglimit[i] end
  return limit[i]
end

local function start_for(prio)
  -- The earliest start for a caller of `prio`; nil when only an answer can tell.
  local T = now
  for i = 1, n do
    local s = share(i, prio)
    local c = redis.call('ZCARD', KEYS[i])
    if c >= s then
      local e = redis.call('ZRANGE', KEYS[i], c - s, c - s, 'WITHSCORES')
      if string.sub(e[1], 1, 2) == 'f:' then return nil end
      local at = tonumber(e[2])
      if at > T then T = at end
    end
  end
  if prio == 'b' then
    if gap > 0 then
      local nx = math.min(tonumber(redis.call('GET', PACE) or '0') or 0, now + cap)
      if nx > T then T = nx end
    end
    local h = server_hold()
    if h > T then T = h end
  end
  return T
end

local function commit(m, hold, prio, T)
  for i = 1, n do
    local s = share(i, prio)
    local c = redis.call('ZCARD', KEYS[i])
    if c >= s then
      local e = redis.call('ZRANGE', KEYS[i], c - s, c - s)
      redis.call('ZREM', KEYS[i], e[1])
    end
    redis.call('ZADD', KEYS[i], T + seconds[i] + hold, 'f:' .. m)
    keep(KEYS[i], math.ceil((T - now + seconds[i] + hold) * 1000) + 1000)
  end
  if prio == 'b' and gap > 0 then
    -- Paced with a tolerance of one gap: a grant that comes late does not lose its turn.
    local nx = math.min(tonumber(redis.call('GET', PACE) or '0') or 0, now + cap)
    nx = math.max(nx, T - gap) + gap
    redis.call('SET', PACE, tostring(nx), 'PX', math.ceil((nx - now) * 1000) + 1000)
  end
  if redis.call('EXISTS', SRV) == 1 then redis.call('HINCRBY', SRV, 'budget', -1) end
end

local function unqueue(m)
  redis.call('ZREM', Q, m)
  redis.call('HDEL', META, m)
  redis.call('ZREM', LAPSE, m)
  redis.call('ZREM', BLIND, m)
end

local function dispatch()
  -- Grant slots to the queue's head while they start within the horizon; tell their owners.
  -- Returns the start of the calling member's own grant, if it got one.
  local mine = nil
  if gate > now then return nil end
  for _ = 1, 10000 do
    local head = redis.call('ZRANGE', Q, 0, 0)
    if #head == 0 then break end
    local m = head[1]
    local meta = redis.call('HGET', META, m)
    local hold, prio = nil, nil
    if meta then
      local h, p = string.match(meta, '^(%S+) (%S+)$')
      hold, prio = tonumber(h), p
    end
    if not hold then
      unqueue(m)
    else
      local T = start_for(prio)
      if T == nil or T > now + horizon then break end
      commit(m, hold, prio, T)
      unqueue(m)
      if m == id then
        mine = T
      else
        local owner = string.match(m, '^(.*)/')
        if owner then redis.call('PUBLISH', wake .. owner, m .. ' ' .. tostring(T - now)) end
      end
    end
  end
  return mine
end

local function tell(head)
  -- Only the head of the queue keeps a timer of its own (the others wait to be told): it hears
  -- when its slot is due, or, when only an answer can tell, that the release will tell it.
  local meta = redis.call('HGET', META, head)
  if not meta then return end
  local _, prio = string.match(meta, '^(%S+) (%S+)$')
  local nap = -1
  if gate > now then
    nap = gate - now
  else
    local T = start_for(prio)
    if T then nap = math.max(0, T - now - horizon / 10) end
  end
  if nap < 0 then
    -- Waiting to be told already (as it did behind the head): nothing to say yet.
    redis.call('ZADD', BLIND, redis.call('ZSCORE', Q, head), head)
    local lapse = tonumber(redis.call('ZSCORE', LAPSE, head) or '0') or 0
    if lapse < now + max_nap + grace then redis.call('ZADD', LAPSE, now + max_nap + grace, head) end
    local ms = math.ceil((max_nap + grace) * 1000) + 1000
    for _, key in ipairs({BLIND, LAPSE, Q, META}) do keep(key, ms) end
    return
  end
  nap = math.min(nap, max_nap)
  local lapse = tonumber(redis.call('ZSCORE', LAPSE, head) or '0') or 0
  if lapse < now + nap + grace then redis.call('ZADD', LAPSE, now + nap + grace, head) end
  local ms = math.ceil((nap + grace) * 1000) + 1000
  for _, key in ipairs({LAPSE, Q, META}) do keep(key, ms) end
  local owner = string.match(head, '^(.*)/')
  if owner then redis.call('PUBLISH', wake .. owner, head .. ' ~' .. tostring(nap)) end
end

local function tell_head()
  local head = redis.call('ZRANGE', Q, 0, 0)[1]
  if head and head ~= first_head and head ~= id then tell(head) end
end

local function give_back(m, start, prio)
  -- A slot granted and never used: its chain frees when it would have started.
  for i = 1, n do
    if redis.call('ZREM', KEYS[i], 'f:' .. m) == 1 and start > now then
      redis.call('ZADD', KEYS[i], start, 'd:' .. m)
    end
  end
  if prio == 'b' and gap > 0 then
    local nx = tonumber(redis.call('GET', PACE) or '0') or 0
    if nx - gap > now then
      redis.call('SET', PACE, tostring(nx - gap), 'PX', math.ceil((nx - gap - now) * 1000) + 1000)
    end
  end
  if redis.call('EXISTS', SRV) == 1 then redis.call('HINCRBY', SRV, 'budget', 1) end
end

local function counts()
  local out = {}
  for i = 1, n do out[i] = redis.call('ZCARD', KEYS[i]) end
  return out
end

local function reply(kind, value, reason, probe_in, recheck)
  local out = {kind, tostring(value), reason, tostring(probe_in), tostring(recheck)}
  for _, c in ipairs(counts()) do out[#out + 1] = c end
  return out
end

local function release(b)
  -- One slot back, from ARGV[b+1..b+10]: member, sent (0/1), gate seconds (0: none), probe
  -- (0/1), answered 2xx (0/1), probe interval in ms, the server's Remaining and Limit (-1:
  -- none), for how long that reading holds (seconds), and how long ago the answer came (a
  -- release may go with a later script: its slot frees a window after the answer, not after
  -- the script). Returns whether the request was sent.
  local m, sent = ARGV[b + 1], ARGV[b + 2]
  local at = now - tonumber(ARGV[b + 10])
  for i = 1, n do
    redis.call('ZREM', KEYS[i], 'f:' .. m)
    if sent == '1' and at + seconds[i] > now then
      redis.call('ZADD', KEYS[i], at + seconds[i], 'd:' .. m)
      -- The ZREM may have emptied the key (Redis then deletes it): the ZADD recreates it with
      -- no expiry of its own.
      keep(KEYS[i], math.ceil((at + seconds[i] - now) * 1000) + 1000)
    end
  end
  local interval_ms = tonumber(ARGV[b + 6])
  if ARGV[b + 4] == '1' then
    local mine = redis.call('GET', PROBE) == m
    if sent == '1' and ARGV[b + 5] == '1' then
      -- The server answers normally again: reopen the gate for every process.
      redis.call('DEL', GATE)
      gate = 0
      if mine then redis.call('DEL', PROBE) end
    elseif mine then
      if sent == '1' then
        redis.call('SET', PROBE, 'wait', 'PX', interval_ms)
      else
        redis.call('DEL', PROBE)  -- it never left: the next caller probes
      end
    end
  end
  local gate_for = tonumber(ARGV[b + 3])
  if gate_for > 0 then
    if now + gate_for > gate then
      -- The key lives exactly as long as the gate it holds (the caller capped that).
      redis.call('SET', GATE, tostring(now + gate_for), 'PX', math.ceil(gate_for * 1000))
      gate = now + gate_for
      -- The first probe goes an interval after the gate closed.
      redis.call('SET', PROBE, 'wait', 'NX', 'PX', interval_ms)
    end
  end
  local remaining, server_limit = tonumber(ARGV[b + 7]), tonumber(ARGV[b + 8])
  local holds = tonumber(ARGV[b + 9]) - (now - at)
  if remaining >= 0 and server_limit > 0 and holds > 0 then
    local till = tostring(now + holds)
    -- What the server counts beyond our own window of its size (this answer in it): the
    -- team's other tools' usage, replaced by each reading and forgotten with it.
    local others = 0
    local j = same_size(server_limit)
    if j then others = math.max(0, server_limit - remaining - redis.call('ZCARD', KEYS[j])) end
    redis.call('HSET', SRV, 'budget', remaining, 'limit', server_limit, 'until', till,
      'others', others)
    redis.call('PEXPIRE', SRV, math.ceil(holds * 1000) + 1000)
  end
  return sent == '1'
end

local function wake_blind(sent)
  -- Each sent answer tells when its slot frees: the head, if it waited to be told, hears when.
  for _ = 1, sent do
    local told = redis.call('ZPOPMIN', BLIND)
    if #told == 0 then break end
    if told[1] == redis.call('ZRANGE', Q, 0, 0)[1] and told[1] ~= id then tell(told[1]) end
  end
end

-- The releases a script carries, run before its op: ARGV[at] is their count, then 10
-- arguments each (see release). An ask carries the releases of its process that waited for
-- it, so a request and the next one's ask cost one round trip; 'r' is releases alone.
local released, sent_count = 0, 0
local function run_releases(at)
  released = tonumber(ARGV[at]) or 0
  for j = 0, released - 1 do
    if release(at + 10 * j) then sent_count = sent_count + 1 end
  end
end
if op == 'r' then run_releases(A + 1) end
if op == 'a' then run_releases(A + 5) end

if op == 'w' then
  -- After a (re)subscription, what each waiter of one process may have missed meanwhile.
  -- ARGV[A+1..]: (member, hold) pairs. Per member: a grant's start (seconds from now, >= 0);
  -- -1: queued behind the head, it will be told when it is the head; -2: it must ask again.
  local head = redis.call('ZRANGE', Q, 0, 0)[1]
  local out = {}
  for k = A + 1, #ARGV - 1, 2 do
    local m, hold = ARGV[k], tonumber(ARGV[k + 1])
    local held = redis.call('ZSCORE', KEYS[1], 'f:' .. m)
    local v = -2
    if held then
      v = math.max(0, tonumber(held) - seconds[1] - hold - now)
    elseif m ~= head and redis.call('ZSCORE', Q, m) then
      v = -1
    end
    out[#out + 1] = tostring(v)
  end
  return out
end

if op == 'a' then
  -- ARGV[A+1..]: hold, priority ('i'/'b'), seconds left to wait, probe interval, then the
  -- releases it carries (run above).
  local hold, prio, left = tonumber(ARGV[A + 1]), ARGV[A + 2], tonumber(ARGV[A + 3])
  local interval = tonumber(ARGV[A + 4])
  local blind_nap = max_nap
  -- Granted already, by a script whose notification did not arrive?
  local held = redis.call('ZSCORE', KEYS[1], 'f:' .. id)
  if held then
    if released > 0 then
      dispatch()
      tell_head()
      wake_blind(sent_count)
    end
    return reply(1, math.max(0, tonumber(held) - seconds[1] - hold - now), '', -1, 0)
  end
  if not redis.call('ZSCORE', Q, id) then
    local score = now
    if prio == 'b' then score = BG + now end
    redis.call('ZADD', Q, score, id)
    redis.call('HSET', META, id, tostring(hold) .. ' ' .. prio)
  end
  local mine = dispatch()
  tell_head()
  wake_blind(sent_count)
  if mine then return reply(1, mine - now, '', -1, 0) end
  -- Still waiting: how long, judged from its place in the queue.
  local rank = redis.call('ZRANK', Q, id)
  -- `eta` judges max_wait (optimistic); `due` is when to ask again: a slot in flight frees a
  -- window after its answer at the soonest, so asking then is never too late.
  local eta, due, reason = 0, 0, 'window'
  for i = 1, n do
    local s = share(i, prio)
    local used = redis.call('ZCARD', KEYS[i])
    local index = used - s + rank
    if index >= 0 then
      -- Answered slots free at their score; one in flight may come back unsent, so no wait
      -- is claimed for it; each `s` slots further on come a window later at the soonest.
      local rounds = 0
      if index >= used then
        rounds = math.floor((index - used) / s) + 1
        index = index - rounds * s
      end
      local e = rounds * seconds[i]
      local d = e
      if index >= 0 then
        local entry = redis.call('ZRANGE', KEYS[i], index, index, 'WITHSCORES')
        if string.sub(entry[1], 1, 2) == 'd:' then
          e = e + tonumber(entry[2]) - now
          d = e
        else
          d = d + seconds[i]
        end
      end
      if e > eta then eta = e end
      if d > due then due = d end
    end
  end
  if prio == 'b' then
    local ahead = rank - redis.call('ZCOUNT', Q, '-inf', '(' .. BG)
    if gap > 0 then
      local nx = math.min(tonumber(redis.call('GET', PACE) or '0') or 0, now + cap)
      local e = math.max(nx, now) + ahead * gap - now
      if e > eta then eta = e end
      if e > due then due = e end
    end
    local h = server_hold()
    if h - now > eta then eta, reason = h - now, 'server' end
    if h - now > due then due = h - now end
  end
  local probe_in = -1
  if gate > now then
    local first = prio == 'i' or redis.call('ZCOUNT', Q, '-inf', '(' .. BG) == 0
    local T = start_for('i')
    if first and T ~= nil and T <= now and gate - now > interval then
      -- Windows allow it and the gate has more than a probe interval to run: one probe at a
      -- time, across every process, about once an interval.
      local lease = math.ceil(hold * 1000)
      if redis.call('SET', PROBE, id, 'NX', 'PX', lease) then
        commit(id, hold, 'i', now)  -- the windows allow it (the reserve may not)
        unqueue(id)
        return reply(2, 0, '', -1, 0)
      end
    end
    if gate - now > eta then eta, reason = gate - now, 'gate' end
    local pttl = redis.call('PTTL', PROBE)
    if pttl == -2 then pttl = 0 end
    if pttl >= 0 and gate - now - pttl / 1000 > interval then probe_in = pttl / 1000 end
  end
  if eta > left then
    unqueue(id)
    return reply(0, eta, reason, probe_in, 0)
  end
  local recheck = blind_nap
  if gate > now then
    recheck = gate - now
  elseif rank > 0 then
    -- Not the head: told when it is (a lost word costs at most the longest nap).
    recheck = max_nap
  elseif due > horizon then
    -- Just before its slot is due: a script of any process that runs earlier hands it out.
    recheck = due - horizon / 10
  end
  recheck = math.min(recheck, max_nap)
  redis.call('ZADD', LAPSE, now + recheck + grace, id)
  local ms = math.ceil((recheck + grace) * 1000) + 1000
  if recheck == blind_nap and rank == 0 then
    -- Only an answer can tell: the next release wakes the first such waiter.
    redis.call('ZADD', BLIND, redis.call('ZSCORE', Q, id), id)
    keep(BLIND, ms)
  else
    redis.call('ZREM', BLIND, id)
  end
  keep(Q, ms)
  keep(META, ms)
  keep(LAPSE, ms)
  return reply(3, eta, reason, probe_in, recheck)
end

if op == 'l' then
  -- ARGV[A+1..]: hold, priority, take (1: keep a slot granted meanwhile, 0: hand it back).
  local hold, prio, take = tonumber(ARGV[A + 1]), ARGV[A + 2], ARGV[A + 3]
  unqueue(id)
  local held = redis.call('ZSCORE', KEYS[1], 'f:' .. id)
  if held then
    local start = tonumber(held) - seconds[1] - hold
    if take == '1' then return reply(1, math.max(0, start - now), '', -1, 0) end
    give_back(id, start, prio)
    if redis.call('GET', PROBE) == id then redis.call('DEL', PROBE) end
  end
  dispatch()
  tell_head()
  return reply(0, 0, '', -1, 0)
end

-- op == 'r': the releases it carries (see above), then the grants they make possible.
dispatch()
tell_head()
wake_blind(sent_count)
return 1
"""


class _Waiting:
    """A caller of this process inside `acquire`, as the wake-up listener finds it."""

    __slots__ = ("future", "granted", "hold", "rearm")

    def __init__(self, hold: float = 0.0) -> None:
        self.future: asyncio.Future[float | None] | None = None
        """Set while it naps: resolved with a grant's delay, or None to ask Redis again."""
        self.granted: float | None = None
        """A grant's delay that arrived while no nap was under way."""
        self.rearm: float | None = None
        """How long to nap on, as a script told it, without asking Redis first."""
        self.hold = hold
        """How long its slot is held before its answer (what its grant's expiry adds)."""


class RedisRateLimiter:
    """A limiter whose windows, queue and 429 gate live in Redis, shared by every process on `key`.

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
        gate_jitter: float = DEFAULT_GATE_JITTER,
        redis_timeout: float = DEFAULT_REDIS_TIMEOUT,
        probe_interval: float = PROBE_INTERVAL,
        reserve: float = DEFAULT_RESERVE,
    ) -> None:
        """Connect by `url` (owned, closed by aclose) or pass a `redis.asyncio.Redis` (borrowed).

        `redis_timeout` bounds each Redis round trip, connecting included. Background callers
        leave the last `reserve` fraction of every window, and of the server's Remaining, to
        interactive ones.
        """
        try:
            self._setup(
                url,
                limits,
                key,
                redis,
                on_throttle,
                gate_jitter,
                redis_timeout,
                probe_interval,
                reserve,
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
        reserve: float,
    ) -> None:
        windows = check_limits(limits, "limits")
        if not windows:
            raise ValueError("limits must hold at least one (requests, seconds) window")
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty str")
        if (url is None) == (redis is None):
            raise ValueError("pass exactly one of url=... or redis=...")
        self._reserve = check_reserve(reserve)
        self._gate_jitter = check_gate_jitter(gate_jitter)
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
        self._keys += [f"{tag}:{name}" for name in _STATE_KEYS]
        self._script = self._redis.register_script(_SCRIPT)
        self._on_throttle = on_throttle
        self._probe_interval = check_probe_interval(probe_interval)
        self._max_hold = hold_cap(seconds for _, seconds in windows)
        # Arguments every script call starts with (ARGV[3] onwards; the op and member first).
        shortest = min(windows, key=lambda w: w[1])
        gap = shortest[1] / background_limit(shortest[0], self._reserve)
        self._common: list[Any] = [gap, _HORIZON, f"{tag}:wake:", self._reserve, self._max_hold]
        self._common += [2 * self._redis_timeout + 1, _MAX_NAP]
        for limit, seconds in windows:
            self._common += [limit, seconds, background_limit(limit, self._reserve)]
        self._owner = f"{os.getpid()}.{random.getrandbits(48):x}"
        self._channel = f"{tag}:wake:{self._owner}"
        self._ids = count()
        self._waiters: dict[str, _Waiting] = {}
        """Callers of this process inside `acquire`, by member id."""
        self._listener: asyncio.Task[None] | None = None
        self._listen_tried = -math.inf
        self._chores: set[asyncio.Task[None]] = set()
        """Hand-backs of slots of cancelled callers, still running."""
        self._probes: set[str] = set()
        """Tickets of this process's probes in flight."""
        self._probe_waiter = False
        """Whether a caller of this process waits for the next probe."""
        self._pending: list[tuple[float, list[Any]]] = []
        """Releases waiting for the next ask to carry them: (answered at, their arguments)."""
        self._flush: asyncio.Handle | None = None
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._read_reset = ResetReader(self._max_hold, "rate limit (redis)")
        self._counts: list[int] = [0] * len(windows)
        self._in_flight = 0
        self._waiting = 0
        self._waiting_by: dict[str, int] = {"interactive": 0, "background": 0}
        self._gate_until = 0.0
        self._throttled_since = 0.0
        self._throttled_total = 0.0
        self._server: tuple[int | None, int | None, float | None] = (None, None, None)
        self.round_trips = 0
        """Redis round trips this limiter has made: scripts run and subscriptions made."""

    @property
    def limits(self) -> tuple[tuple[int, float], ...]:
        """The shared windows as `(requests, seconds)` pairs."""
        return self._windows

    @property
    def reserve(self) -> float:
        """The fraction of every window that background callers leave to interactive ones."""
        return self._reserve

    def __repr__(self) -> str:
        # Works on a half-built limiter too: tracebacks with locals render the constructor's.
        if not hasattr(self, "_keys"):
            return "RedisRateLimiter(<not constructed>)"
        return f"RedisRateLimiter({list(self._windows)!r}, key={self._keys[-1][:-7]!r})"

    async def aclose(self) -> None:
        """Stop listening for wake-ups; close the Redis connection if this limiter opened it."""
        listener, self._listener = self._listener, None
        if listener is not None and not listener.done():
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        if self._pending:
            await self._send_releases()
        if self._chores:
            # Slots of cancelled callers go back before the connection closes (each bounded).
            await asyncio.gather(*self._chores, return_exceptions=True)
        if self._owns_redis:
            await self._redis.aclose()

    async def __aenter__(self) -> RedisRateLimiter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def acquire(
        self, *, max_wait: float, timeout: float | None = None, priority: Priority = "interactive"
    ) -> str:
        """Take a slot in every shared window, waiting (at most `max_wait`) for one.

        Waiters queue in Redis, interactive ones before background ones, and are woken when a
        script of any process grants them a slot; between wake-ups they ask again only when
        their slot is due.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + max_wait
        hold = (timeout if timeout is not None else 60.0) + _HOLD_MARGIN
        member = f"{self._owner}/{next(self._ids)}"
        args: list[Any] = ["a", member, *self._common]
        # The last argument is how many releases the ask carries (see _ask).
        args += [hold, "b" if priority == "background" else "i", 0.0, self._probe_interval, 0]
        left_at = len(args) - 3
        me = _Waiting(hold)
        self._waiters[member] = me
        waited = False
        probing = False  # this caller waits for the next probe
        queued = False  # it may have an entry (or a grant) in Redis
        eta = 0.0
        try:
            while True:
                args[left_at] = max(0.0, deadline - loop.time())
                queued = True
                kind, value, reason, probe_in, recheck = await self._ask(args, timeout)
                if kind == 0:
                    queued = False
                if kind in (1, 2):
                    return await self._granted(member, value, kind == 2)
                if me.granted is not None:
                    return await self._granted(member, me.granted, False)
                now = loop.time()
                left = deadline - now
                eta = value
                if kind == 0:
                    if left <= 0:
                        raise _too_long(eta, max_wait)
                    # Only the next probe could let it through in time; one caller of this
                    # process counts on that, the others are told the wait at once.
                    if not probing and (self._probe_waiter or probe_in is None or probe_in > left):
                        raise _too_long(eta, max_wait)
                    probing = self._probe_waiter = True
                    nap, reason = (_PROBE_RECHECK if probe_in is None else probe_in), "probe"
                else:
                    nap = recheck
                    self._listen(loop)
                if not waited:
                    waited = True
                    self._waiting += 1
                    self._waiting_by[priority] += 1
                    if self._waiting == 1:
                        self._throttled_since = now
                    self._throttled(reason, eta)
                if left <= 0:
                    # Its time is up: leave the queue, unless a slot came meanwhile.
                    kind, value = await self._leave(member, hold, priority, take=True)
                    queued = False
                    if kind == 1:
                        return await self._granted(member, value, False)
                    raise _too_long(eta, max_wait)
                # Processes told the same wait should not all come back in the same instant.
                nap = min(nap, left) + random.uniform(0, min(0.02, 0.1 * nap + 0.001))
                while True:
                    future = me.future = loop.create_future()
                    timer = loop.call_later(nap, _wake, future, None)
                    try:
                        delay = await future
                    finally:
                        timer.cancel()
                        me.future = None
                    if delay is None:
                        delay = me.granted  # it came before this caller ran again
                    if delay is not None:
                        return await self._granted(member, delay, False)
                    if me.rearm is None:
                        break  # ask again
                    # Told when its slot is due (it became the head of the queue): nap on.
                    nap, me.rearm = min(me.rearm, max(0.0, deadline - loop.time())), None
        except asyncio.CancelledError:
            if queued:
                # Leave the queue, and hand back a slot granted just as the caller gave up.
                self._chore(self._leave(member, hold, priority, take=False))
            raise
        finally:
            del self._waiters[member]
            if probing:
                self._probe_waiter = False
            if waited:
                self._waiting -= 1
                self._waiting_by[priority] -= 1
                if self._waiting == 0:
                    self._throttled_total += loop.time() - self._throttled_since

    async def _granted(self, member: str, delay: float, probe: bool) -> str:
        """The slot is this caller's: wait for its start (within the horizon) and take it."""
        if delay > 0:
            await asyncio.sleep(delay)
        self._in_flight += 1
        if probe:
            self._probes.add(member)
        elif self._gate_until:
            self._gate_until = 0.0  # another process's probe may have reopened it
        return member

    async def release(
        self,
        ticket: object,
        *,
        sent: bool,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Re-score the slot to expire one window after its answer (or free it if never sent)."""
        self._in_flight -= 1
        probe = ticket in self._probes
        if probe:
            self._probes.discard(ticket)
        ok = status is not None and 200 <= status < 300
        gate_for = 0.0
        if probe and sent and ok:
            self._gate_until = 0.0
        remaining, server_limit, holds = -1, -1, 0.0
        if headers is not None:
            reading = self._observe(headers)
            if reading is not None:
                remaining, server_limit, holds = reading
            if status == 429:
                base, gate_for = gate_hold(headers, self._gate_jitter, self._max_hold)
                self._gate_until = time.monotonic() + gate_for
                self._throttled("gate", base)
        group: list[Any] = [ticket, 1 if sent else 0, gate_for, 1 if probe else 0, 1 if ok else 0]
        group += [math.ceil(self._probe_interval * 1000), remaining, server_limit, holds]
        self._pending.append((time.monotonic(), group))
        if sent and ok and not probe and not self._near_reserve(remaining, server_limit):
            # Only this slot's expiry is at stake: the next ask of this process carries it.
            loop = asyncio.get_running_loop()
            if self._flush is None or self._flush_loop is not loop:
                self._flush = loop.call_later(_RELEASE_DELAY, self._flush_now)
                self._flush_loop = loop
            return
        # What every process must hear at once (a gate, a probe's end, a slot never used) goes
        # now, with anything pending.
        await self._send_releases()

    def _near_reserve(self, remaining: int, server_limit: int) -> bool:
        """Whether a reading of the server holds background work back in every process.

        Without a window of the server's size, background work stops as the server's
        Remaining reaches the reserve: a reading within twice that goes to Redis at once, not a
        few milliseconds later with another call. With one (the default windows mirror the
        server's), a reading only estimates the team's other tools' usage, which a few
        milliseconds' delay changes by what was granted meanwhile.
        """
        if server_limit <= 0 or self._reserve <= 0:
            return False
        if any(limit == server_limit for limit, _ in self._windows):
            return False
        return remaining <= 2 * (server_limit - background_limit(server_limit, self._reserve))

    def _take_pending(self) -> tuple[list[tuple[float, list[Any]]], list[Any]]:
        """The pending releases, and their script arguments (their count first), now."""
        pending, self._pending = self._pending, []
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        now = time.monotonic()
        args: list[Any] = [len(pending)]
        for answered, group in pending:
            args += group
            args.append(max(0.0, now - answered))
        return pending, args

    def _flush_now(self) -> None:
        """No ask came to carry the pending releases: send them on their own."""
        self._flush = None
        if not self._pending:
            return
        task = asyncio.get_running_loop().create_task(self._send_releases())
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _send_releases(self) -> None:
        """Send every pending release in one script call."""
        _, carried = self._take_pending()
        args: list[Any] = ["r", "", *self._common, *carried]
        try:
            # Bounded like every Redis call: the response is in, the caller must not wait on
            # a stuck Redis for its slot's bookkeeping.
            await self._call(self._script, args, self._redis_timeout)
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
            reserve=self._reserve,
            waiting_interactive=self._waiting_by["interactive"],
            waiting_background=self._waiting_by["background"],
        )

    async def _ask(
        self, args: list[Any], timeout: float | None
    ) -> tuple[int, float, str, float | None, float]:
        """Run the ask op: (kind, delay or wait, reason, probe in, ask again in)."""
        # A request's own timeout, when shorter, bounds its Redis round trips too: a caller
        # who said 2 s is not kept 3 s by a stuck Redis before anything is sent.
        limit = self._redis_timeout
        if timeout is not None and 0 < timeout < limit:
            limit = timeout
        # A script that ran after all, its answer too late, holds a provisional slot (or a
        # queue entry) that expires on its own: the shared budget errs on the safe side.
        if not self._pending:
            result = await self._call(self._script, args, limit)
            return self._read_reply(result)
        pending, carried = self._take_pending()
        try:
            result = await self._call(self._script, [*args[:-1], *carried], limit)
        except BaseException:
            # Whether the script ran is unknown: the releases go again (running one twice
            # changes nothing, its expiry being counted from its answer).
            self._pending[:0] = pending
            if self._flush is None:
                self._flush_loop = loop = asyncio.get_running_loop()
                self._flush = loop.call_soon(self._flush_now)
            raise
        return self._read_reply(result)

    def _read_reply(self, result: Any) -> tuple[int, float, str, float | None, float]:
        n = len(self._windows)
        try:
            kind = int(result[0])
            reason = result[2].decode() if isinstance(result[2], bytes) else str(result[2])
            # Bounded before trusted: no wait is negative nor longer than the longest hold,
            # and a grant starts within the horizon.
            cap = _HORIZON if kind in (1, 2) else self._max_hold
            value = _bounded(float(result[1]), cap)
            probe_in = float(result[3])
            recheck = _bounded(float(result[4]), _MAX_NAP)
            counts = [min(max(int(c), 0), MAX_COUNT) for c in result[5 : 5 + n]]
            if len(counts) != n or kind not in (0, 1, 2, 3):
                raise ValueError("unexpected reply")
        except (IndexError, TypeError, ValueError) as exc:
            raise APIConnectionError(
                "rate limiter: Redis answered the limiter's script with something unexpected",
                request_sent=False,
            ) from exc
        self._counts = counts
        return (
            kind,
            value,
            reason,
            (_bounded(probe_in, self._max_hold) if probe_in >= 0 else None),
            recheck,
        )

    async def _leave(
        self, member: str, hold: float, priority: Priority, *, take: bool
    ) -> tuple[int, float]:
        """Take a waiter out of the queue: keep (`take`) or hand back a slot granted meanwhile."""
        args: list[Any] = ["l", member, *self._common]
        args += [hold, "b" if priority == "background" else "i", 1 if take else 0]
        kind, value, _, _, _ = self._read_reply(
            await self._call(self._script, args, self._redis_timeout)
        )
        return kind, value

    def _chore(self, work: Coroutine[Any, Any, object]) -> None:
        """Run Redis bookkeeping that nobody waits for; aclose waits for what is left."""

        async def run() -> None:
            try:
                await work
            except APIConnectionError as exc:
                # The queue entry lapses, and a slot granted to it expires, on their own.
                logger.warning("rate limiter: could not leave the queue in Redis: %s", exc)

        task = asyncio.get_running_loop().create_task(run())
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    # -- wake-ups ----------------------------------------------------------------------------

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make sure a subscription to this limiter's wake-up channel is (being) made."""
        listener = self._listener
        # A listener left on another loop (a limiter kept across asyncio.run calls) hears
        # nothing here.
        if listener is not None and not listener.done() and listener.get_loop() is loop:
            return
        now = loop.time()
        if now - self._listen_tried < _RELISTEN:
            return  # it failed a moment ago: the waiters' own timers carry them meanwhile
        self._listen_tried = now
        self._listener = loop.create_task(self._listen_loop())

    async def _listen_loop(self) -> None:
        while True:
            pubsub: Any = self._redis.pubsub()
            try:
                try:
                    self.round_trips += 1
                    await asyncio.wait_for(pubsub.subscribe(self._channel), self._redis_timeout)
                    # redis-py reconnects (and subscribes again) on its own after a dropped
                    # connection; what was published meanwhile is lost, so it tells us too.
                    connection = getattr(pubsub, "connection", None)
                    if connection is not None:
                        connection.register_connect_callback(self._reconnected)
                    self._wake_all()
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=None
                        )
                        if message is not None and message.get("type") == "message":
                            self._woken(message.get("data"))
                except (RedisError, OSError, asyncio.TimeoutError) as exc:
                    logger.info(
                        "rate limiter: wake-ups from Redis stopped (%s)",
                        self._scrub(f"{type(exc).__name__}: {exc}"),
                    )
            finally:
                with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                    await asyncio.wait_for(pubsub.aclose(), self._redis_timeout)
            if not self._waiters:
                return  # the next caller to queue subscribes again
            # Callers wait to be told: subscribe again in a moment (their own asks go on).
            await asyncio.sleep(_RELISTEN)

    def _reconnected(self, connection: object) -> None:
        self._wake_all()

    def _wake_all(self) -> None:
        """Catch the waiting callers up on what was said while nobody listened (it is lost)."""
        if not self._waiters:
            return
        task = asyncio.get_running_loop().create_task(self._catch_up())
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _catch_up(self) -> None:
        """One round trip for every waiter: take a grant it missed; the head asks again.

        A waiter queued behind the head missed nothing it needs: it is told when it becomes
        the head. Should Redis not answer, every waiter asks again on its own.
        """
        waiters = [(m, me) for m, me in self._waiters.items() if me.future is not None]
        if not waiters:
            return
        args: list[Any] = ["w", "", *self._common]
        for member, me in waiters:
            args += [member, me.hold]
        try:
            result = await self._call(self._script, args, self._redis_timeout)
            told = [float(v) for v in result]
            if len(told) != len(waiters):
                raise ValueError("reply of the wrong length")
        except (APIConnectionError, TypeError, ValueError, UnicodeDecodeError):
            told = [-2.0] * len(waiters)
        for (member, me), value in zip(waiters, told, strict=True):
            if self._waiters.get(member) is not me:
                continue  # it went meanwhile
            if value >= 0:
                grant = _bounded(value, _HORIZON)
                if me.future is not None and not me.future.done():
                    me.future.set_result(grant)
                else:
                    me.granted = grant
            elif value != -1 or value != value:
                me.rearm = None
                if me.future is not None and not me.future.done():
                    me.future.set_result(None)

    def _woken(self, data: object) -> None:
        """A script granted a slot to a caller of this process (or moved it up): tell it."""
        try:
            text = data.decode() if isinstance(data, bytes) else str(data)
            member, _, delay_text = text.partition(" ")
            told = delay_text.startswith("~")
            delay = float(delay_text[1:] if told else delay_text)
        except (UnicodeDecodeError, ValueError):
            return  # not ours to read; the waiter asks again when due
        # A negative delay is no grant: the waiter asks again now.
        woken = None if told or delay < 0 or delay != delay else min(delay, _HORIZON)
        me = self._waiters.get(member)
        if me is None:
            # Its caller is gone: one that gave up left the queue (handing back what it was
            # granted) in the same script; one whose Redis call failed has its slot expire.
            return
        if me.future is not None and not me.future.done():
            if told:
                me.rearm = _bounded(delay, _MAX_NAP)
            me.future.set_result(woken)
        elif woken is not None:
            me.granted = woken
        elif not told:
            me.rearm = None  # asking again now overrides a nap told a moment before
        elif me.rearm is not None:
            me.rearm = _bounded(delay, _MAX_NAP)  # the latest word on its nap holds

    async def _call(self, script: Any, args: list[Any], limit: float) -> Any:
        """Run a script in Redis within `limit` seconds, or raise the SDK's error for it."""
        self.round_trips += 1
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

    def _observe(self, headers: Mapping[str, str]) -> tuple[int, int, float] | None:
        """Note the server's rate-limit headers; the reading to share, if it has a Limit."""
        remaining = parse_count(headers.get(RATE_REMAINING_HEADER))
        if remaining is None:
            return None
        reset = self._read_reset(headers.get(RATE_RESET_HEADER))
        limit = parse_count(headers.get(RATE_LIMIT_HEADER))
        self._server = (limit, remaining, reset)
        if limit is None or limit <= 0:
            return None
        # Stale at its reset, or a probe interval on without one; never within a second.
        holds = self._probe_interval if reset is None else reset - time.time()
        return remaining, limit, min(max(holds, RATE_LIMIT_RECHECK), self._max_hold)

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


def _wake(future: asyncio.Future[float | None], value: float | None) -> None:
    if not future.done():
        future.set_result(value)


def _bounded(value: float, cap: float) -> float:
    return min(max(value, 0.0), cap) if value == value else 0.0  # NaN: nothing known
