"""Every tunable default of the SDK, in one place."""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Final

from aiohttp import __version__ as _aiohttp_version
from multidict import istr


def _sdk_version() -> str:
    """The installed distribution's version: pyproject.toml is the one place it is written."""
    try:
        return metadata.version("inbox-async")
    except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
        return "0+unknown"


DEFAULT_BASE_URL: Final = "https://inboxapp.com/api/v1"
TOKEN_ENV_VAR: Final = "INBOX_API_TOKEN"
BASE_URL_ENV_VAR: Final = "INBOX_API_BASE_URL"

# Whole-request timeout in seconds (connect, send, wait, read).
DEFAULT_TIMEOUT: Final = 30.0
# Retries after the first attempt: Inbox recommends up to 5 attempts in all.
DEFAULT_MAX_RETRIES: Final = 4
# Exponential backoff: 1 s doubling to a 60 s cap, plus up to 1 s of jitter (Inbox recommends it).
RETRY_MAX_DELAY: Final = 60.0
RETRY_JITTER: Final = 1.0
# A Retry-After longer than this is not waited out: RateLimitError is raised at once.
DEFAULT_MAX_RATE_LIMIT_WAIT: Final = 120.0

# A response body larger than this is refused rather than read into memory (a lead is ~2 KiB).
MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024

# Connections the owned session keeps to the API host.
DEFAULT_MAX_CONNECTIONS: Final = 100

# Bodies of POST/DELETE /lists/{id}/leads take 1..2000 platform ids.
MAX_PLATFORM_IDS_PER_REQUEST: Final = 2000
# Import jobs page size (the API allows 1..100, default 50).
MAX_IMPORT_JOBS_PAGE: Final = 100

# Team-wide limits of the current rate-limit page: (requests, window seconds).
DEFAULT_RATE_LIMITS: Final = ((300, 60.0), (10_000, 3600.0), (100_000, 86_400.0))
# RedisRateLimiter: the longest one Redis round trip (connect included) may take. A healthy
# Redis answers in milliseconds; past this, the caller gets APIConnectionError instead of a hang.
DEFAULT_REDIS_TIMEOUT: Final = 3.0
# No server hint (Retry-After, X-RateLimit-Reset) holds requests back longer than this, nor
# longer than the longest local window if that is longer: every window has slid by then.
MAX_SERVER_WAIT: Final = 86_400.0
# While a hint holds requests back for longer than this, one probe request goes about this often,
# so that a server that answers normally again is noticed without a restart.
PROBE_INTERVAL: Final = 60.0
# The fraction of every window (and of the server's X-RateLimit-Remaining) that background work
# (bulk jobs) leaves to interactive calls: a bulk job that runs all day is 10% slower, and the web
# app and the team's other tools keep a tenth of the quota. 0 turns the reserve off.
DEFAULT_RESERVE: Final = 0.1

# -- rate limiting (_ratelimit/, _headers.py) ----------------------------------------------
# A 429 closes the gate for its Retry-After plus a random jitter of up to
# GATE_JITTER_FRACTION * Retry-After + GATE_JITTER_FLOOR seconds, and at most DEFAULT_GATE_JITTER
# (the limiters' `gate_jitter=`): callers told the same wait do not all come back at once. The
# retry stage adds the same jitter to the waits the server asks for.
DEFAULT_GATE_JITTER: Final = 1.0
GATE_JITTER_FRACTION: Final = 0.1
GATE_JITTER_FLOOR: Final = 0.05
# A 429 without a readable Retry-After closes the gate this long; a spent server budget without
# an X-RateLimit-Reset is looked at again after this long; no reading of the server's Remaining
# is taken as stale sooner than this after it was read.
RATE_LIMIT_RECHECK: Final = 1.0
# RedisRateLimiter: a slot is held for its request's timeout plus this margin until its answer
# re-scores it, so the slot of a process that dies mid-request frees on its own.
REDIS_HOLD_MARGIN: Final = 5.0
# Read from 429s, as istr like the header names below.
RETRY_AFTER_HEADER: Final = istr("Retry-After")

SDK_VERSION: Final = _sdk_version()
# What openai-python and stripe-python send too: the SDK, the interpreter and the HTTP library,
# so that a server-side log tells which combination a report came from.
USER_AGENT: Final = (
    f"inbox-async/{SDK_VERSION} Python/{sys.version_info[0]}.{sys.version_info[1]}"
    f" aiohttp/{_aiohttp_version}"
)
# Header names the SDK reads from every response, as istr: a case-insensitive lookup by istr
# skips folding the key each time.
REQUEST_ID_HEADER: Final = istr("X-Request-Id")
RATE_LIMIT_HEADER: Final = istr("X-RateLimit-Limit")
RATE_REMAINING_HEADER: Final = istr("X-RateLimit-Remaining")
RATE_RESET_HEADER: Final = istr("X-RateLimit-Reset")
DEPRECATION_HEADER: Final = istr("Deprecation")
SUNSET_HEADER: Final = istr("Sunset")

# Bulk updates: workers at once, and how long one item may wait for the rate limit (a job
# larger than the day's budget waits for the day window to slide rather than failing).
DEFAULT_BULK_CONCURRENCY: Final = 16
DEFAULT_BULK_MAX_WAIT: Final = 90_000.0

# -- bulk updates: the worker pool and its journal (inbox_async/bulk.py, _journal.py) ---------
# on_progress is called this often (seconds), with the rate over about the last this many.
BULK_PROGRESS_INTERVAL: Final = 0.5
BULK_RATE_HORIZON: Final = 5.0
# Items handled without a request (journal skips, the count of what an aborted job left) give
# the event loop a turn this often: a resume that skips 300,000 items must not hold it.
BULK_YIELD_EVERY: Final = 256
# The body excerpt a failure keeps of its response: enough to read the error, not the whole page.
BULK_KEPT_BODY: Final = 512
# A journal is read this many bytes of lines at a time (about 10,000 lines, a few ms) between
# turns of the event loop.
JOURNAL_LOAD_BATCH: Final = 512 * 1024

# -- the command line (inbox_async/cli) -------------------------------------------------------
# bulk-update's requests at once (--concurrency's default).
CLI_CONCURRENCY: Final = 16
# A CSV cell over this many bytes fails its row (no column value is that long); a cell over
# CLI_FILE_CELL_LIMIT means the file itself is broken, most likely by a quote that never closes.
CLI_CELL_LIMIT: Final = 128 * 1024
CLI_FILE_CELL_LIMIT: Final = 16 * 1024 * 1024
# Rejected rows and failed leads listed after a run; the rest are only counted.
CLI_SHOWN_ERRORS: Final = 10
# Without a terminal (no progress bar), a progress line at most this often, in seconds.
CLI_PROGRESS_INTERVAL: Final = 5.0
# The demo: the fake server's limit and the job's concurrency; its backoff is capped so that it
# shows retries without waiting out Inbox's full 1-60 s.
CLI_DEMO_RATE_LIMIT: Final = (400, 1.0)
CLI_DEMO_CONCURRENCY: Final = 32
CLI_DEMO_MAX_BACKOFF: Final = 0.25
