"""Bytes to typed objects, and error responses to exceptions.

Each response type gets one msgspec decoder, built the first time it is needed and reused. A
payload that fails strict decoding is repaired field by field instead of failing whole: the field
msgspec names is dropped so that its default applies, which keeps a lead whose `followerCount`
arrived as a string (or any other surprise in a field the caller may never read) usable.
"""

from __future__ import annotations

import html
import re
from typing import Any, Final, TypeVar

import msgspec

from ._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    RateLimitError,
    status_error_class,
)
from ._headers import parse_retry_after
from ._types import Response

__all__ = ["decode", "status_error"]

T = TypeVar("T")

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_any_decoder: Final = msgspec.json.Decoder()

# Repairs per payload: more than this many bad fields means the payload is not what we expect.
_MAX_REPAIRS: Final = 32
_PATH_RE: Final = re.compile(r" - at `(\$[^`]*)`$")
_PATH_TOKEN_RE: Final = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def decoder_for(tp: type[T]) -> msgspec.json.Decoder[T]:
    """The shared decoder for a type."""
    decoder: msgspec.json.Decoder[T] | None = _decoders.get(tp)
    if decoder is None:
        decoder = _decoders[tp] = msgspec.json.Decoder(tp)
    return decoder


def decode(response: Response, tp: type[T]) -> T:
    """Decode a successful response body into `tp`, repairing fields that do not fit."""
    # The decoder is looked up here rather than through decoder_for: one call fewer per response.
    decoder: msgspec.json.Decoder[T] | None = _decoders.get(tp)
    try:
        if decoder is None:
            decoder = decoder_for(tp)
        return decoder.decode(response.body)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise _invalid(response, f"response body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise _invalid(response, "response body is nested too deeply") from exc
    try:
        return _repair(response, tp)
    except msgspec.DecodeError as exc:
        # Strict decoding stops at the first value of the wrong type, before it would have seen
        # that the JSON itself is malformed further on (b'0\x00', say): the repair sees it.
        raise _invalid(response, f"response body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise _invalid(response, "response body is nested too deeply") from exc


def _repair(response: Response, tp: type[T]) -> T:
    obj = _any_decoder.decode(response.body)
    for _ in range(_MAX_REPAIRS):
        try:
            return msgspec.convert(obj, tp)
        except msgspec.ValidationError as exc:
            if not _drop_offending_field(obj, str(exc)):
                raise _invalid(response, f"unexpected response shape ({exc})") from exc
    raise _invalid(response, "unexpected response shape (too many fields of the wrong type)")


def _drop_offending_field(obj: Any, message: str) -> bool:
    """Delete the innermost object key on the error's path, so the field's default applies."""
    match = _PATH_RE.search(message)
    if match is None:
        return False
    parent: Any = None
    key: str | None = None
    node = obj
    for name, index in _PATH_TOKEN_RE.findall(match.group(1)[1:]):
        if name:
            if not isinstance(node, dict) or name not in node:
                break
            parent, key, node = node, name, node[name]
        else:
            if not isinstance(node, list) or int(index) >= len(node):
                break
            node = node[int(index)]
    if parent is None or key is None:
        return False
    del parent[key]
    return True


def _invalid(response: Response, message: str) -> APIResponseValidationError:
    return APIResponseValidationError(
        f"{message}; status {response.status}",
        status_code=response.status,
        request_id=response.request_id,
    )


class _ErrorDetail(msgspec.Struct, gc=False):
    code: str | None = None
    message: str | None = None
    status: int | None = None


class _ErrorBody(msgspec.Struct, gc=False):
    # Documented envelope: {"error": {"code", "message", "status"}}; the authentication page
    # shows a flat one instead: {"error": "Unauthorized", "message": "..."}. Both are read.
    error: _ErrorDetail | str | None = None
    message: str | None = None
    code: str | None = None


_error_decoder: Final = msgspec.json.Decoder(_ErrorBody)
_TITLE_RE: Final = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG_RE: Final = re.compile(r"<[^>]+>")


def status_error(response: Response) -> APIStatusError:
    """The exception for an error response, keeping its status whatever the body is."""
    code, message = _error_fields(response)
    cls = status_error_class(response.status)
    error = cls(
        message,
        status_code=response.status,
        code=code,
        request_id=response.request_id,
        headers=response.headers,
        body=response.body,
    )
    if isinstance(error, RateLimitError):
        error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return error


def _error_fields(response: Response) -> tuple[str | None, str]:
    body = response.body
    try:
        parsed = _error_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None, _summarise(response)
    error = parsed.error
    if isinstance(error, _ErrorDetail):
        return error.code or parsed.code, error.message or parsed.message or _summarise(response)
    if isinstance(error, str):
        # Flat form: "error" is a title such as "Unauthorized"; keep it as the code's stand-in.
        message = parsed.message or error
        return parsed.code or _code_from_title(error), message
    return parsed.code, parsed.message or _summarise(response)


def _code_from_title(title: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", title.upper()).strip("_")


def _summarise(response: Response) -> str:
    """A readable line for a body that is not the JSON envelope (a proxy's HTML page, say)."""
    body = response.body
    if not body.strip():
        return f"HTTP {response.status} with an empty body"
    title = _TITLE_RE.search(body[:65536])
    if title is not None:
        text = title.group(1).decode("utf-8", "replace")
    else:
        text = body[:300].decode("utf-8", "replace")
    text = " ".join(html.unescape(_TAG_RE.sub(" ", text)).split())
    return f"HTTP {response.status}: {text[:200]}" if text else f"HTTP {response.status}"
