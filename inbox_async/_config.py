"""Validated client options: every argument is checked once, at construction."""

from __future__ import annotations

import base64
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from yarl import URL

from ._constants import (
    BASE_URL_ENV_VAR,
    DEFAULT_BASE_URL,
    TOKEN_ENV_VAR,
)
from ._types import Priority
from ._validation import check_priority

_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
# What aiohttp can talk to: a plain proxy, or one reached over TLS. (No SOCKS.)
_PROXY_SCHEMES: Final = ("http", "https")

__all__ = [
    "ClientConfig",
    "check_call_options",
    "check_header_value",
    "check_max_retries",
    "check_timeout",
    "proxy_secrets",
]


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
    trust_env: bool = True
    """Whether the environment's proxy variables apply to the SDK's own session."""
    proxy: str | None = field(default=None, repr=False)
    """The proxy URL the environment sets for `base_url`; out of the repr (credentials)."""

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
        trust_env: bool = True,
        env: Mapping[str, str] = os.environ,
    ) -> ClientConfig:
        """Check every option and fill the gaps from the environment."""
        if not isinstance(trust_env, bool):
            raise TypeError(f"trust_env must be a bool, not {type(trust_env).__name__}")
        url = _resolve_base_url(base_url, env, allow_insecure_http)
        return cls(
            token=_resolve_token(token, env),
            base_url=url,
            timeout=check_timeout(timeout),
            max_retries=check_max_retries(max_retries),
            max_rate_limit_wait=_check_positive("max_rate_limit_wait", max_rate_limit_wait),
            max_connections=_check_count("max_connections", max_connections),
            default_headers=_check_headers(default_headers),
            trust_env=trust_env,
            proxy=_resolve_proxy(url, env) if trust_env else None,
        )

    def derive(
        self,
        *,
        timeout: float | None,
        max_retries: int | None,
        max_rate_limit_wait: float | None,
        default_headers: Mapping[str, str] | None,
    ) -> ClientConfig:
        """A copy with the given options changed (None keeps one); headers are merged in."""
        headers = self.default_headers
        if default_headers is not None:
            added = _check_headers(default_headers)
            # Header names are case-insensitive: a new "x-team" replaces an old "X-Team".
            replaced = {name.lower() for name in added}
            headers = {
                **{k: v for k, v in headers.items() if k.lower() not in replaced},
                **added,
            }
        return replace(
            self,
            timeout=self.timeout if timeout is None else check_timeout(timeout),
            max_retries=self.max_retries if max_retries is None else check_max_retries(max_retries),
            max_rate_limit_wait=(
                self.max_rate_limit_wait
                if max_rate_limit_wait is None
                else _check_positive("max_rate_limit_wait", max_rate_limit_wait)
            ),
            default_headers=headers,
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
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    # An IPv4-mapped address (::ffff:127.0.0.1) counts as loopback from Python 3.13 on and not
    # before; it is refused on every version, so a base URL means the same on all of them.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return False
    return address.is_loopback


def _env_proxies(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """scheme (or "all", "no") -> (variable name, value), read as urllib reads them.

    A lowercase variable wins over its uppercase twin, and an empty lowercase one unsets it;
    HTTP_PROXY is ignored under CGI, where a request header could set it (httpoxy).
    """
    proxies: dict[str, tuple[str, str]] = {}
    for name, value in env.items():
        if value and name.lower().endswith("_proxy"):
            proxies[name.lower()[:-6]] = (name, value)
    if "REQUEST_METHOD" in env:
        proxies.pop("http", None)
    for name, value in env.items():
        if name.endswith("_proxy"):  # lowercase names, second: they win
            if value:
                proxies[name[:-6]] = (name, value)
            else:
                proxies.pop(name[:-6], None)
    return proxies


def _resolve_proxy(base_url: str, env: Mapping[str, str]) -> str | None:
    """The proxy the environment sets for the base URL's scheme and host, if any.

    As httpx and requests read it: `<scheme>_PROXY`, then `ALL_PROXY`; none for a host listed
    in `NO_PROXY` (urllib's matching: names and domain suffixes, `*` for every host). A proxy
    without a scheme is http. The SDK talks to one origin only, so this is decided once.
    """
    proxies = _env_proxies(env)
    url = URL(base_url)
    found = proxies.get(url.scheme) or proxies.get("all")
    if found is None:
        return None
    if "no" in proxies and _listed(url.host or "", url.explicit_port, proxies["no"][1]):
        return None
    name, value = found
    value = value.strip()
    if "://" not in value:
        value = f"http://{value}"
    # The value is never echoed: it may hold the proxy's credentials.
    problem = None
    try:
        proxy = URL(value)
    except ValueError:
        problem = "is not a valid URL"
    else:
        if proxy.scheme not in _PROXY_SCHEMES:
            problem = "is not an http:// or https:// proxy (SOCKS and others are not supported)"
        elif not proxy.host:
            problem = "has no host"
    if problem is not None:
        raise ValueError(
            f"the environment variable {name} {problem}; fix it, list the API's host in "
            "NO_PROXY, or pass trust_env=False to ignore the environment's proxy settings"
        )
    return value


def _listed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether NO_PROXY lists the host: `*`, its name (with or without the port), a parent
    domain (a leading dot is optional), as urllib matches it."""
    if no_proxy.strip() == "*":
        return True
    host = host.lower()
    names = (host, f"{host}:{port}") if port is not None else (host,)
    for entry in no_proxy.split(","):
        entry = entry.strip().lstrip(".").lower()
        if entry and any(name == entry or name.endswith(f".{entry}") for name in names):
            return True
    return False


def proxy_secrets(proxy: str | None) -> list[str]:
    """What of a proxy URL's credentials may show up in a message, in every spelling."""
    if proxy is None:
        return []
    url = URL(proxy)
    if url.raw_user is None and url.raw_password is None:
        return []
    user, password = url.user or "", url.password or ""
    basic = base64.b64encode(f"{user}:{password}".encode("latin-1", "replace")).decode()
    values = [basic, f"{user}:{password}", f"{url.raw_user or ''}:{url.raw_password or ''}"]
    if password:
        values += [password, url.raw_password or ""]
    return values


def check_call_options(
    timeout: float | None,
    max_retries: int | None,
    max_rate_limit_wait: float | None,
    priority: Priority,
) -> None:
    """Check the per-call options (None keeps the client's) before anything is sent."""
    if timeout is not None:
        check_timeout(timeout)
    if max_retries is not None:
        check_max_retries(max_retries)
    if max_rate_limit_wait is not None:
        check_timeout(max_rate_limit_wait, "max_rate_limit_wait")
    check_priority("priority", priority)


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
