"""What every resource shares: a reference to the client that sends its calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._client import InboxClient


class Resource:
    """A group of endpoints hanging off an InboxClient."""

    __slots__ = ("_client",)

    def __init__(self, client: InboxClient) -> None:
        self._client = client
