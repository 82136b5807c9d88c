"""Validated client options: every argument is checked once, at construction."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from yarl import URL

from ._constants import (
    BASE_URL_ENV_VAR,
    DEFAULT_BASE_URL,
    TOKEN_ENV_VAR,
)

_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token

__all__ = ["ClientConfig", "check_header_value", "check_max_retries", "check_timeout"]


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """The options an InboxClient runs with; the token never shows in its repr."""

    token: str = field(repr=False)
    base_url: str
    """Normalised: scheme, host, optional port and path, never a trailing slash."""
    timeout: float
    max_retries: int
    max_rate_limit_wait: float
    max_connections: int
    default_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Kept out of the repr: a header the caller adds may hold a key of its own."""

    @classmethod
    def build(
        cls,
        *,
        token: str | None,
        base_url: str | URL | None,
        timeout: float,
        max_retries: int,
        max_rate_limit_wait: float,
        max_connections: int,
        allow_insecure_http: bool,
        default_headers: Mapping[str, str] | None,
        env: Mapping[str, str] = os.environ,
    ) -> ClientConfig:
        """Check every option and fill the gaps from the environment."""
        return cls(
            token=_resolve_token(token, env),
            base_url=_resolve_base_url(base_url, env, allow_insecure_http),
            timeout=check_timeout(timeout),
            max_retries=check_max_retries(max_retries),
            max_rate_limit_wait=_check_positive("max_rate_limit_wait", max_rate_limit_wait),
            max_connections=_check_count("max_connections", max_connections),
            default_headers=_check_headers(default_headers),
        )


def _resolve_token(token: str | None, env: Mapping[str, str]) -> str:
    if token is None:
        token = env.get(TOKEN_ENV_VAR) or None
        if token is None:
            raise ValueError(f"no API token: pass token=... to InboxClient or set {TOKEN_ENV_VAR}")
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, not {type(token).__name__}")
    if not token.strip():
        raise ValueError(f"token must not be empty (pass token=... or set {TOKEN_ENV_VAR})")
    # The value is never echoed: it is a secret even when it is malformed.
    check_header_value("token", token, echo=False)
    return token


def _resolve_base_url(
    base_url: str | URL | None, env: Mapping[str, str], allow_insecure_http: bool
) -> str:
    raw = base_url if base_url is not None else env.get(BASE_URL_ENV_VAR) or DEFAULT_BASE_URL
    if not isinstance(raw, (str, URL)):
        raise TypeError(f"base_url must be a str or yarl.URL, not {type(raw).__name__}")
    try:
        url = URL(str(raw).strip())
    except ValueError as exc:
        raise ValueError(f"base_url is not a valid URL: {raw!r}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {str(raw)!r}")
    if url.user or url.password:
        raise ValueError("base_url must not carry credentials; pass token=... instead")
    if url.query_string or url.fragment:
        raise ValueError(f"base_url must not have a query or fragment, got {str(raw)!r}")
    if url.scheme == "http" and not allow_insecure_http and not _is_loopback(url.host):
        raise ValueError(
            f"base_url {str(raw)!r} is plain http to a non-loopback host, which would send the "
            "token in clear text; use https, or pass allow_insecure_http=True"
        )
    return str(url.origin()) + url.raw_path.rstrip("/")


def _is_loopback(host: str) -> bool:
    # Only the literal name: "*.localhost" goes to the system resolver, which may answer with
    # any address, and plain http would then carry the token off the machine.
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_timeout(value: float, name: str = "timeout") -> float:
    """A positive, finite number of seconds."""
    return _check_positive(name, value)


def check_max_retries(value: int, name: str = "max_retries") -> int:
    """A whole number of retries, zero or more."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _check_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise TypeError(f"default_headers must be a mapping, not {type(headers).__name__}")
    checked: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("default_headers keys and values must be str")
        check_header_value(f"default_headers[{key!r}]", key)
        if _HEADER_NAME_RE.fullmatch(key) is None:
            raise ValueError(f"default_headers: {key!r} is not a valid header name")
        check_header_value(f"default_headers[{key!r}]", value, echo=False)
        if key.lower() == "authorization":
            raise ValueError("default_headers must not set Authorization; pass token=... instead")
        checked[key] = value
    return checked


def check_header_value(name: str, value: str, *, echo: bool = True) -> None:
    """Refuse CR, LF and NUL, which would let a value inject headers."""
    if "\r" in value or "\n" in value or "\0" in value:
        shown = f": {value!r}" if echo else ""
        raise ValueError(f"{name} must not contain CR, LF or NUL characters{shown}")
