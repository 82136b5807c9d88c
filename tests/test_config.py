"""Client options are checked at construction, with errors that name the parameter."""

from __future__ import annotations

import pytest

from inbox_async import InboxClient
from inbox_async._config import ClientConfig

SECRET = "sk_live_very_secret_token_value"


def _build(**overrides: object) -> ClientConfig:
    args: dict[str, object] = {
        "token": "t",
        "base_url": None,
        "timeout": 30.0,
        "max_retries": 2,
        "max_rate_limit_wait": 120.0,
        "max_connections": 10,
        "allow_insecure_http": False,
        "default_headers": None,
        "env": {},
    }
    args.update(overrides)
    return ClientConfig.build(**args)  # type: ignore[arg-type]


def test_token_and_base_url_fall_back_to_the_environment() -> None:
    config = _build(
        token=None,
        env={"INBOX_API_TOKEN": "from-env", "INBOX_API_BASE_URL": "https://example.test/api/v1/"},
    )
    assert config.token == "from-env"
    assert config.base_url == "https://example.test/api/v1"


def test_the_default_base_url_is_the_v1_api() -> None:
    assert _build().base_url == "https://inboxapp.com/api/v1"


def test_missing_token_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INBOX_API_TOKEN", raising=False)
    with pytest.raises(ValueError, match="INBOX_API_TOKEN"):
        InboxClient()


@pytest.mark.parametrize("bad", [f"{SECRET}\r\nX-Evil: 1", f"{SECRET}\n", "a\0b"])
def test_token_with_cr_lf_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError, match="token must not contain CR, LF") as info:
        _build(token=bad)
    assert SECRET not in str(info.value)
    assert "a\0b" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    ["http://inboxapp.com/api/v1", "http://10.0.0.5:8080/api/v1", "http://example.test"],
)
def test_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="allow_insecure_http"):
        _build(base_url=url)
    assert _build(base_url=url, allow_insecure_http=True).base_url.startswith("http://")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/api/v1", "http://localhost:1/api/v1", "http://[::1]:9/api/v1"]
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert _build(base_url=url).base_url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://inboxapp.com", "absolute http"),
        ("/api/v1", "absolute http"),
        ("https://user:pw@inboxapp.com/api/v1", "credentials"),
        ("https://inboxapp.com/api/v1?x=1", "query"),
    ],
)
def test_bad_base_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(base_url=url)


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("timeout", 0, ValueError),
        ("timeout", float("nan"), ValueError),
        ("timeout", "30", TypeError),
        ("max_retries", -1, ValueError),
        ("max_retries", 1.5, TypeError),
        ("max_retries", True, TypeError),
        ("max_rate_limit_wait", -5, ValueError),
        ("max_connections", 0, ValueError),
    ],
)
def test_numeric_options_are_checked(name: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=name):
        _build(**{name: value})


def test_default_headers_cannot_smuggle_headers_or_auth() -> None:
    with pytest.raises(ValueError, match="CR, LF"):
        _build(default_headers={"X-Team": "a\r\nX-Evil: 1"})
    with pytest.raises(ValueError, match="Authorization"):
        _build(default_headers={"authorization": "Bearer other"})


def test_the_token_never_shows_in_reprs() -> None:
    client = InboxClient(SECRET, base_url="http://127.0.0.1:1/api/v1")
    assert SECRET not in repr(client)
    assert SECRET not in repr(client._config)
    assert SECRET not in repr(client.send)
    assert SECRET not in repr(client._auth)


def test_session_must_be_an_aiohttp_session() -> None:
    with pytest.raises(TypeError, match="session"):
        InboxClient("t", session=object())  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["http://evil.localhost/api/v1", "http://localhost.evil.com/"])
def test_only_the_literal_localhost_counts_as_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="allow_insecure_http"):
        _build(base_url=url)


@pytest.mark.parametrize("name", ["X-A: b", "X A", "", "X-Ä"])
def test_default_header_names_must_be_tokens(name: str) -> None:
    with pytest.raises(ValueError, match="header name"):
        _build(default_headers={name: "v"})
