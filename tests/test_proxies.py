"""Proxies from the environment: HTTP_PROXY / HTTPS_PROXY / NO_PROXY, like httpx and requests.

A real forward proxy on loopback (a tiny aiohttp.web app) records what reaches it and forwards
plain-http requests, which arrive with the absolute URL in the request line, to the fake server.
For https targets a client asks the proxy for a tunnel (CONNECT host:443); this one refuses
tunnels, which is enough to see that the proxy was asked and what it was told.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from inbox_async import APIConnectionError, InboxClient
from inbox_async.testing import FakeInboxServer

from .conftest import COL_COMPANY, LEADS, TOKEN, assert_no_secret, closed_port

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
# What a proxy must not pass on (RFC 9110 7.6.1), and what aiohttp recomputes.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
        "content-encoding",
    }
)


@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it."""

    method: str
    target: str
    """The request line's target: an absolute URL, or host:port for CONNECT."""
    headers: dict[str, str]


class ForwardProxy:
    """An HTTP forward proxy on loopback that records every request it gets."""

    def __init__(self, connect_status: int = 403) -> None:
        self.seen: list[Seen] = []
        self.connect_status = connect_status
        self.url = ""
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ForwardProxy:
        self._session = aiohttp.ClientSession()
        self._runner = web.ServerRunner(web.Server(self._handle))
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.raw_path, dict(request.headers)))
        if request.method == "CONNECT":
            return web.Response(status=self.connect_status, text="no tunnels here")
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method,
            request.raw_path,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=upstream.status, body=body, headers=kept)


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy setting of the machine's own leaks into these tests."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    # urllib ignores HTTP_PROXY under CGI (httpoxy): make sure that is not what we see.
    monkeypatch.delenv("REQUEST_METHOD", raising=False)


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy() as p:
        yield p


@pytest.mark.parametrize("name", ["HTTP_PROXY", "http_proxy"])
async def test_http_proxy_from_the_environment_carries_the_requests(
    server: FakeInboxServer,
    list_id: str,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    monkeypatch.setenv(name, proxy.url)
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=None) as client:
        lead = await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    assert lead.data[COL_COMPANY] == "Acme"
    path = f"/api/v1/lists/{list_id}/leads/{LEADS[0]}"
    assert [(s.method, s.target) for s in proxy.seen] == [("PATCH", server.origin + path)]
    # The proxy passed it on: the server got it, with the token (plain http: fine on loopback).
    assert [(r.method, r.path) for r in server.requests] == [("PATCH", path)]
    assert proxy.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_trust_env_false_ignores_the_environment(
    server: FakeInboxServer, list_id: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=None, trust_env=False) as client:
        await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    assert proxy.seen == []
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("no_proxy", "proxied"),
    [
        ("127.0.0.1", False),
        ("example.com, 127.0.0.1", False),
        ("*", False),
        ("example.com", True),
        ("", True),
    ],
)
async def test_no_proxy_hosts_go_direct(
    server: FakeInboxServer,
    list_id: str,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str,
    proxied: bool,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=None) as client:
        await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    assert len(proxy.seen) == (1 if proxied else 0)
    assert len(server.requests) == 1


async def test_all_proxy_is_the_fallback(
    server: FakeInboxServer, list_id: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=None) as client:
        await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    assert len(proxy.seen) == 1


async def test_https_proxy_is_not_used_for_http_base_urls(
    server: FakeInboxServer, list_id: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=None) as client:
        await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    assert proxy.seen == []


async def test_proxy_credentials_from_the_url_go_to_the_proxy_only(
    server: FakeInboxServer, list_id: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://alice:pr%40xy-pass@"))
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=None) as client:
        await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    expected = "Basic " + base64.b64encode(b"alice:pr@xy-pass").decode()
    assert proxy.seen[0].headers["Proxy-Authorization"] == expected
    assert "Proxy-Authorization" not in server.requests[0].headers


async def test_https_base_urls_tunnel_through_https_proxy(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    # No DNS lookup happens for the target: the proxy would make the connection.
    async with InboxClient(
        TOKEN,
        base_url="https://api.inbox.invalid/api/v1",
        rate_limits=None,
        max_retries=0,
        default_headers={"X-Team-Key": "team-key-that-is-secret"},
    ) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.prospects.get("p1")
    assert [(s.method, s.target) for s in proxy.seen] == [("CONNECT", "api.inbox.invalid:443")]
    # The tunnel request is plain text to the proxy: neither the token nor the caller's own
    # headers belong in it, only what the request inside the tunnel carries.
    connect_headers = proxy.seen[0].headers
    assert "Authorization" not in connect_headers
    assert "X-Team-Key" not in connect_headers
    # The proxy refused the tunnel: the request never reached the API, even a POST may be
    # sent again.
    assert caught.value.request_sent is False


# Module constants, not locals: a traceback with locals renders the test's own frame too.
PROXY_USER = "proxyuser-alice"
PROXY_PASSWORD = "proxy-password-0123456789"
PROXY_BASIC = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()


@pytest.mark.slow
@pytest.mark.parametrize("connect_status", [407, 502])
async def test_proxy_credentials_never_show_in_errors(
    monkeypatch: pytest.MonkeyPatch, connect_status: int
) -> None:
    async with ForwardProxy(connect_status=connect_status) as refusing:
        monkeypatch.setenv(
            "HTTPS_PROXY",
            refusing.url.replace("http://", f"http://{PROXY_USER}:{PROXY_PASSWORD}@"),
        )
        async with InboxClient(
            TOKEN, base_url="https://api.inbox.invalid/api/v1", rate_limits=None, max_retries=0
        ) as client:
            with pytest.raises(APIConnectionError) as caught:
                await client.prospects.get("p1")
    assert refusing.seen[0].headers["Proxy-Authorization"] == f"Basic {PROXY_BASIC}"
    assert PROXY_PASSWORD not in repr(client._config) + repr(client)
    assert_no_secret(caught.value, PROXY_PASSWORD, PROXY_BASIC, PROXY_USER, TOKEN)


@pytest.mark.slow
async def test_proxy_credentials_never_show_when_the_proxy_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "HTTPS_PROXY", f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{closed_port()}"
    )
    async with InboxClient(
        TOKEN, base_url="https://api.inbox.invalid/api/v1", rate_limits=None, max_retries=0
    ) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.prospects.get("p1")
    assert caught.value.request_sent is False
    assert_no_secret(caught.value, PROXY_PASSWORD, PROXY_BASIC, PROXY_USER, TOKEN)


@pytest.mark.parametrize("value", ["socks5://user:hunter2-secret@127.0.0.1:1080", "ftp://x"])
def test_an_unusable_proxy_is_refused_at_construction(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", value)
    with pytest.raises(ValueError, match="trust_env=False") as caught:
        InboxClient(TOKEN)
    assert "hunter2" not in str(caught.value)
    assert "HTTPS_PROXY" in str(caught.value)
    # Not for a host that bypasses it, nor without trust_env.
    InboxClient(TOKEN, trust_env=False)
    monkeypatch.setenv("NO_PROXY", "inboxapp.com")
    InboxClient(TOKEN)


async def test_a_borrowed_session_keeps_its_own_setting(
    server: FakeInboxServer, list_id: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    # aiohttp's default: trust_env=False, so the environment is not read.
    async with aiohttp.ClientSession() as session:
        client = InboxClient(TOKEN, base_url=server.url, rate_limits=None, session=session)
        await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "a"})
        await client.aclose()
    assert proxy.seen == []
    async with aiohttp.ClientSession(trust_env=True) as session:
        client = InboxClient(TOKEN, base_url=server.url, rate_limits=None, session=session)
        await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "b"})
        await client.aclose()
    assert len(proxy.seen) == 1


def test_trust_env_is_checked() -> None:
    with pytest.raises(TypeError, match="trust_env"):
        InboxClient(TOKEN, trust_env="no")  # type: ignore[arg-type]


async def test_trust_env_false_with_a_borrowed_session_is_refused() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="trust_env"):
            InboxClient(TOKEN, session=session, trust_env=False)


async def test_a_derived_client_uses_the_same_proxied_pool(
    server: FakeInboxServer, list_id: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=None) as client:
        derived = client.with_options(timeout=5)
        await derived.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    assert len(proxy.seen) == 1
