"""Error responses become typed exceptions that keep status, code, message and request id."""

from __future__ import annotations

import pytest

from inbox_async import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InboxClient,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from inbox_async._headers import parse_retry_after
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import LEADS, TOKEN, UPDATE, RecordingSleep


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (418, APIStatusError),
        (500, InternalServerError),
        (503, InternalServerError),
    ],
)
async def test_each_status_maps_to_its_exception(
    client: InboxClient,
    server: FakeInboxServer,
    list_id: str,
    status: int,
    cls: type[APIStatusError],
) -> None:
    server.add_fault(Fault.status(status), times=10)
    with pytest.raises(cls) as info:
        await client.leads.update(list_id, LEADS[0], UPDATE, max_retries=0)
    err = info.value
    assert type(err) is cls
    assert err.status_code == status
    assert err.message
    assert err.request_id and err.request_id == err.headers["X-Request-Id"]
    assert str(status) in str(err)


async def test_the_flat_error_form_is_understood(list_id: str, sleep: RecordingSleep) -> None:
    async with (
        FakeInboxServer(token=TOKEN, error_format="flat") as server,
        InboxClient("wrong-token", base_url=server.url, sleep=sleep) as client,
    ):
        with pytest.raises(AuthenticationError) as info:
            await client.leads.update("abc", "1", UPDATE)
    assert info.value.status_code == 401
    assert info.value.code == "UNAUTHORIZED"
    assert info.value.message and info.value.message != "Unauthorized"


async def test_a_proxy_html_page_keeps_its_status(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    server.add_fault(Fault.html(502))
    with pytest.raises(InternalServerError) as info:
        await client.leads.update(list_id, LEADS[0], UPDATE, max_retries=0)
    assert info.value.status_code == 502
    assert info.value.code is None
    assert "<" not in info.value.message
    assert info.value.message.startswith("HTTP 502")


@pytest.mark.parametrize("status", [429, 502])
async def test_an_empty_error_body_keeps_its_status(
    client: InboxClient, server: FakeInboxServer, list_id: str, status: int
) -> None:
    server.add_fault(Fault.empty(status))
    with pytest.raises(APIStatusError) as info:
        await client.leads.update(list_id, LEADS[0], UPDATE, max_retries=0)
    assert info.value.status_code == status
    assert "empty body" in info.value.message


async def test_rate_limit_error_carries_retry_after(
    unpaced_client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    server.add_fault(Fault.status(429, retry_after=12))
    with pytest.raises(RateLimitError) as info:
        await unpaced_client.leads.update(list_id, LEADS[0], UPDATE, max_retries=0)
    assert info.value.retry_after == 12
    assert info.value.code == "RATE_LIMITED"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("60", 60.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("-3", None),
        ("nan", None),
        ("later", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
