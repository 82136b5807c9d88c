"""Pytest fixtures for testing code that uses inbox_async, against the fake server.

Enable it in your top-level ``conftest.py``::

    pytest_plugins = ["inbox_async.testing.pytest_plugin"]

Fixtures:

- ``fake_inbox``: a started ``FakeInboxServer`` (token ``test-token``) on the test's loop.
- ``inbox_client``: an ``InboxClient`` pointed at it whose retry backoff does not really sleep,
  so an injected fault costs no second of waiting. Closed after the test.
- ``sync_fake_inbox`` and ``sync_inbox_client``: the same for blocking code and plain ``def``
  tests: the server runs on a thread of its own, the client is a ``SyncInboxClient``.

The async fixtures need pytest-asyncio. They are declared with ``pytest_asyncio.fixture``, so
they work in its default strict mode, where a test that uses them is marked
``@pytest.mark.asyncio``, and in ``asyncio_mode = "auto"``, where no marker is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from .._client import InboxClient
from .._sync import SyncInboxClient
from ._server import FakeInboxServer

try:
    import pytest_asyncio
except ImportError as exc:  # pragma: no cover - depends on what the user installed
    raise ImportError(
        "inbox_async.testing.pytest_plugin needs pytest-asyncio for its async fixtures: "
        "pip install pytest-asyncio"
    ) from exc

__all__ = ["fake_inbox", "inbox_client", "no_sleep", "sync_fake_inbox", "sync_inbox_client"]


async def no_sleep(seconds: float) -> None:
    """A retry backoff that only yields to the loop: the fixtures' clients never wait."""
    await asyncio.sleep(0)


@pytest_asyncio.fixture
async def fake_inbox() -> AsyncIterator[FakeInboxServer]:
    """A started fake Inbox server; seed it with ``create_list`` and ``add_leads``."""
    async with FakeInboxServer() as server:
        yield server


@pytest_asyncio.fixture
async def inbox_client(fake_inbox: FakeInboxServer) -> AsyncIterator[InboxClient]:
    """An InboxClient on ``fake_inbox`` whose retries do not sleep for real."""
    async with InboxClient("test-token", base_url=fake_inbox.url, sleep=no_sleep) as client:
        yield client


@pytest.fixture
def sync_fake_inbox() -> Iterator[FakeInboxServer]:
    """A fake Inbox server started on a thread of its own, for blocking code."""
    with FakeInboxServer() as server:
        yield server


@pytest.fixture
def sync_inbox_client(sync_fake_inbox: FakeInboxServer) -> Iterator[SyncInboxClient]:
    """A SyncInboxClient on ``sync_fake_inbox`` whose retries do not sleep for real."""
    with SyncInboxClient("test-token", base_url=sync_fake_inbox.url, sleep=no_sleep) as client:
        yield client
