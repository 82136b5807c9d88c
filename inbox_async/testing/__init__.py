"""A fake Inbox API server for tests and benchmarks, in the spirit of stripe-mock.

Example::

    from inbox_async.testing import FakeInboxServer, Fault

    async with FakeInboxServer() as server:
        list_id = server.create_list(columns=["custom_q5cktl47a6pqa74eu06fz89v"])
        server.add_leads(list_id, ["44196397"])
        server.add_fault(Fault.status(503), method="PATCH")
        ...  # point a client at server.url with the token "test-token"

From blocking code (``SyncInboxClient``) use ``with FakeInboxServer() as server:``: the server
then runs on a thread of its own. For pytest, ``pytest_plugins =
["inbox_async.testing.pytest_plugin"]`` gives the fixtures ``fake_inbox`` and ``inbox_client``.
"""

from ._faults import Fault
from ._server import FakeInboxServer, RecordedRequest

__all__ = ["FakeInboxServer", "Fault", "RecordedRequest"]
