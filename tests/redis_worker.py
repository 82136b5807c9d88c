"""One worker process of the shared-limiter test: updates a slice of leads, prints a summary.

Run as: python -m tests.redis_worker BASE_URL REDIS_URL KEY LIST_ID PLATFORM_ID...
"""

from __future__ import annotations

import asyncio
import sys

from inbox_async import InboxClient, InboxError
from inbox_async._ratelimit._redis import RedisRateLimiter

COLUMN = "custom_q5cktl47a6pqa74eu06fz89v"


async def main(base_url: str, redis_url: str, key: str, list_id: str, ids: list[str]) -> int:
    semaphore = asyncio.Semaphore(8)
    failures = 0
    async with (
        RedisRateLimiter(redis_url, limits=[(30, 1.0)], key=key) as limiter,
        InboxClient("test-token", base_url=base_url, limiter=limiter) as client,
    ):

        async def one(pid: str) -> None:
            nonlocal failures
            async with semaphore:
                try:
                    await client.leads.update(list_id, pid, {COLUMN: pid})
                except InboxError as exc:
                    failures += 1
                    print(f"failed {pid}: {exc}", file=sys.stderr)

        await asyncio.gather(*(one(pid) for pid in ids))
    print(f"done {len(ids) - failures} failed {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    base_url, redis_url, key, list_id, *ids = sys.argv[1:]
    sys.exit(asyncio.run(main(base_url, redis_url, key, list_id, ids)))
