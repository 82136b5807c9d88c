"""Bytes to typed objects, and error responses to exceptions.

Each response type gets one msgspec decoder, built the first time it is needed and reused. A
payload that fails strict decoding is repaired instead of failing whole: every field whose value
does not fit its type is dropped so that its default applies, which keeps a lead whose
`followerCount` arrived as a string (or any other surprise in a field the caller may never read)
usable. The repair costs a few passes over the body however many fields are wrong (see
`_StructPlan.repair`), so a page full of them cannot hold the event loop for long.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import re
import types
import typing
from typing import Annotated, Any, Final, TypeVar

import msgspec

from ._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    RateLimitError,
    status_error_class,
)
from ._headers import read_retry_after
from ._types import Response

__all__ = ["decode", "status_error"]

T = TypeVar("T")

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_any_decoder: Final = msgspec.json.Decoder()

_PATH_RE: Final = re.compile(r" - at `\$([^`]*)`$")
_FIELD_RE: Final = re.compile(r"\.([^.\[]+)(.*)", re.DOTALL)
_INDEX_RE: Final = re.compile(r"\[(\d+)\](.*)", re.DOTALL)
# Bad fields of one object repaired one at a time, each followed by decoding the object again,
# before the rest are decoded field by field: one or two are the common case, and cheaper so.
_GUIDED_REPAIRS: Final = 2


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
    except msgspec.ValidationError as exc:
        error = exc
    except msgspec.DecodeError as exc:
        raise _invalid(response, f"response body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise _invalid(response, "response body is nested too deeply") from exc
    try:
        return _repair(response, tp, error)
    except msgspec.DecodeError as exc:
        # Strict decoding stops at the first value of the wrong type, before it would have seen
        # that the JSON itself is malformed further on (b'0\x00', say): the repair sees it.
        raise _invalid(response, f"response body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise _invalid(response, "response body is nested too deeply") from exc


def _repair(response: Response, tp: type[T], error: msgspec.ValidationError) -> T:
    body = response.body
    plan = _plans.get(tp)
    if plan is None:
        plan = _plan_for(tp)
    try:
        result: T = plan.repair(body, _where(error), str(error))
    except _Unfit as exc:
        # A repair that read all of the body found any malformed JSON in it, but one that gave
        # up early did not: the body is checked whole (one quick pass) before blaming its shape.
        _raw_decoder.decode(body)
        raise _invalid(response, f"unexpected response shape ({exc})") from None
    except msgspec.ValidationError as exc:
        # Not expected (each plan turns msgspec's errors into _Unfit), but no msgspec error leaves.
        raise _invalid(response, f"unexpected response shape ({exc})") from None
    return result


# -- the repair -----------------------------------------------------------------------------------
#
# A plan per type, built once: how to repair a JSON value of that type. Strict decoding stops at
# the first value of the wrong type and names its path; each plan splits its value into raw
# pieces (msgspec.Raw: slices of the body, not Python objects), repairs the piece on that path,
# and decodes the rest of its pieces strictly, so the body is read a few times in all however
# many fields are wrong. A value of a type that holds no Struct is decoded whole or dropped.

_raw_decoder: Final = msgspec.json.Decoder(msgspec.Raw)
_members_decoder: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_items_decoder: Final = msgspec.json.Decoder(list[msgspec.Raw])
_raw_encoder: Final = msgspec.json.Encoder()
_WHITESPACE: Final = frozenset(b" \t\r\n")


class _Unfit(Exception):
    """A value no repair makes fit its type: the field that holds it is dropped."""


def _where(exc: msgspec.ValidationError) -> str:
    """Where the error is, relative to the value decoded: "" for the value itself."""
    match = _PATH_RE.search(str(exc))
    return "" if match is None else match.group(1)


def _first_byte(raw: Any) -> int | None:
    for byte in memoryview(raw):
        if byte not in _WHITESPACE:
            return byte
    return None


class _Plan:
    """The repair of a value whose type holds no Struct: it fits whole, or it is dropped."""

    __slots__ = ("decoder", "target")

    def __init__(self, target: Any) -> None:
        self.target = target
        self.decoder: msgspec.json.Decoder[Any] = decoder_for(target)

    def repair(self, raw: Any, path: str | None, message: str) -> Any:
        """The JSON value `raw` decoded to the plan's type, or _Unfit.

        `path` is where strict decoding of `raw` (or of the value that holds it) failed,
        relative to `raw`, and `message` that error's text; a `path` of None: not tried yet.
        """
        # Decoded even when known to fail: a key given twice in an object makes the path name
        # the first value, and the piece here is the last, which msgspec keeps (and may fit).
        try:
            return self.decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise _Unfit(str(exc)) from None


class _StructPlan(_Plan):
    """A Struct from a JSON object: its fields that do not fit are dropped, the rest kept."""

    __slots__ = ("fields", "names", "required")

    def __init__(self, target: Any) -> None:
        super().__init__(target)
        self.fields: dict[str, _Plan] = {}
        self.names: dict[str, str] = {}
        self.required: frozenset[str] = frozenset()

    def repair(self, raw: Any, path: str | None, message: str) -> Any:
        """The Struct, without the fields that do not fit; _Unfit if it cannot be built."""
        decoder = self.decoder
        if path is None:
            try:
                return decoder.decode(raw)
            except msgspec.ValidationError as exc:
                path, message = _where(exc), str(exc)
        found = _FIELD_RE.match(path)
        if found is None:
            # The object itself: not an object, or a required field missing.
            raise _Unfit(message)
        try:
            members = _members_decoder.decode(raw)
        except msgspec.ValidationError:
            raise _Unfit(message) from None
        repaired: dict[str, Any] = {}
        for _ in range(_GUIDED_REPAIRS):
            name, rest = found.groups()
            plan = self.fields.get(name)
            if plan is None or name not in members or name in self.required:
                break
            with contextlib.suppress(_Unfit):  # dropped: the field's default applies
                repaired[name] = plan.repair(members.pop(name), rest, message)
            try:
                # The object without the fields repaired: its other fields decoded strictly.
                result = decoder.decode(_raw_encoder.encode(members))
            except msgspec.ValidationError as exc:
                path, message = _where(exc), str(exc)
                found = _FIELD_RE.match(path)
                if found is None:
                    raise _Unfit(message) from None
                continue
            if repaired:
                names = self.names
                result = msgspec.structs.replace(
                    result, **{names[key]: value for key, value in repaired.items()}
                )
            return result
        # Still failing: one field at a time from here would decode the object once per bad
        # field, so every field is decoded on its own instead.
        for name, member in members.items():
            plan = self.fields.get(name)
            if plan is None:
                continue
            try:
                repaired[name] = plan.repair(member, None, message)
            except _Unfit:
                continue
        try:
            # The values are decoded already (Structs, datetimes...): msgspec takes them as is.
            return msgspec.convert(repaired, self.target)
        except msgspec.ValidationError as exc:
            raise _Unfit(str(exc)) from None


class _ListPlan(_Plan):
    """A list of values that hold Structs: each item repaired, the list dropped if one cannot be."""

    __slots__ = ("item",)

    def __init__(self, target: Any, item: _Plan) -> None:
        super().__init__(target)
        self.item = item

    def repair(self, raw: Any, path: str | None, message: str) -> Any:
        """The list, its items repaired; _Unfit if one of them cannot be."""
        if path is None:
            try:
                return self.decoder.decode(raw)
            except msgspec.ValidationError as exc:
                path, message = _where(exc), str(exc)
        found = _INDEX_RE.match(path)
        if found is None:
            raise _Unfit(message)
        try:
            items = _items_decoder.decode(raw)
        except msgspec.ValidationError:
            raise _Unfit(message) from None
        index = int(found.group(1))
        if index >= len(items):
            raise _Unfit(message)
        item = self.item
        decode_item = item.decoder.decode
        # The items before the one that failed fit.
        result = [decode_item(each) for each in itertools.islice(items, index)]
        result.append(item.repair(items[index], found.group(2), message))
        append = result.append
        for each in itertools.islice(items, index + 1, None):
            # item.repair(each, None, ...) inlined: one call per item fewer, on pages of many.
            try:
                append(decode_item(each))
            except msgspec.ValidationError as exc:
                append(item.repair(each, _where(exc), str(exc)))
        try:
            return msgspec.convert(result, self.target)
        except msgspec.ValidationError as exc:
            raise _Unfit(str(exc)) from None


class _DictPlan(_Plan):
    """A dict whose values hold Structs: each value repaired, the dict dropped if one cannot be."""

    __slots__ = ("item", "members")

    def __init__(self, target: Any, key: Any, item: _Plan) -> None:
        super().__init__(target)
        self.item = item
        self.members: msgspec.json.Decoder[Any] = msgspec.json.Decoder(dict[key, msgspec.Raw])

    def repair(self, raw: Any, path: str | None, message: str) -> Any:
        """The dict, its values repaired; _Unfit if one of them cannot be."""
        if path is None:
            try:
                return self.decoder.decode(raw)
            except msgspec.ValidationError as exc:
                message = str(exc)
        try:
            members = self.members.decode(raw)
        except msgspec.ValidationError:
            raise _Unfit(message) from None
        # msgspec's path does not name the key ("[...]"): every value is repaired.
        item = self.item
        repaired = {key: item.repair(each, None, message) for key, each in members.items()}
        try:
            return msgspec.convert(repaired, self.target)
        except msgspec.ValidationError as exc:
            raise _Unfit(str(exc)) from None


class _UnionPlan(_Plan):
    """A union with Structs in it: an object or array is repaired as the member it must be."""

    __slots__ = ("arrays", "objects", "tag_field", "tagged")

    def __init__(self, target: Any, members: dict[Any, _Plan]) -> None:
        super().__init__(target)
        self.objects: _Plan | None = None
        self.arrays: _Plan | None = None
        self.tag_field: str | None = None
        self.tagged: dict[object, _Plan] = {}
        for member, plan in members.items():
            if isinstance(plan, _StructPlan):
                config = _struct_class(member).__struct_config__
                if config.tag_field is not None:
                    self.tagged[config.tag] = plan
                    self.tag_field = config.tag_field
                self.objects = plan
            elif isinstance(plan, _DictPlan):
                self.objects = plan
            elif isinstance(plan, _ListPlan):
                self.arrays = plan
        if len(self.tagged) < 2:
            # One Struct in the union: msgspec does not ask an object for its tag.
            self.tag_field = None

    def repair(self, raw: Any, path: str | None, message: str) -> Any:
        """`raw` as the member its JSON kind selects, repaired; _Unfit if none fits."""
        if path is None:
            try:
                return self.decoder.decode(raw)
            except msgspec.ValidationError as exc:
                path, message = _where(exc), str(exc)
        kind = _first_byte(raw)
        plan: _Plan | None = None
        if kind == ord("{"):
            plan = self.objects
            if self.tag_field is not None:
                try:
                    tag = _members_decoder.decode(raw).get(self.tag_field)
                    plan = None if tag is None else self.tagged.get(_any_decoder.decode(tag))
                except (msgspec.ValidationError, TypeError):
                    plan = None
        elif kind == ord("["):
            plan = self.arrays
        if plan is None:
            raise _Unfit(message)
        return plan.repair(raw, path, message)


_plans: dict[Any, _Plan] = {}


def _struct_class(tp: Any) -> Any:
    """The Struct class `tp` names (a generic Struct's origin too), or None."""
    cls = typing.get_origin(tp) or tp
    if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        return cls
    return None


def _holds_struct(tp: Any) -> bool:
    if _struct_class(tp) is not None:
        return True
    return any(_holds_struct(arg) for arg in typing.get_args(tp))


def _plan_for(tp: Any) -> _Plan:
    """The repair plan of a type, built the first time it is needed."""
    plan = _plans.get(tp)
    if plan is None:
        # Published only once complete: a plan still being built (its fields not planned yet)
        # would drop every field of a payload that another thread repairs meanwhile.
        building: dict[Any, _Plan] = {}
        plan = _build(tp, building)
        _plans.update(building)
    return plan


def _build(tp: Any, building: dict[Any, _Plan]) -> _Plan:
    plan = _plans.get(tp) or building.get(tp)
    if plan is not None:
        return plan
    inner = typing.get_args(tp)[0] if typing.get_origin(tp) is Annotated else tp
    origin = typing.get_origin(inner)
    args = typing.get_args(inner)
    cls = _struct_class(inner)
    if cls is not None and not cls.__struct_config__.array_like:
        struct_plan = _StructPlan(tp)
        # Registered before its fields are planned: a Struct may hold itself.
        building[tp] = struct_plan
        fields = msgspec.structs.fields(inner)
        struct_plan.names = {f.encode_name: f.name for f in fields}
        struct_plan.required = frozenset(f.encode_name for f in fields if f.required)
        for f in fields:
            struct_plan.fields[f.encode_name] = _build(f.type, building)
        return struct_plan
    if not _holds_struct(inner) or cls is not None:
        plan = _Plan(tp)
    elif origin is list and len(args) == 1:
        plan = _ListPlan(tp, _build(args[0], building))
    elif origin is dict and len(args) == 2:
        plan = _DictPlan(tp, args[0], _build(args[1], building))
    elif origin is typing.Union or origin is types.UnionType:
        plan = _UnionPlan(tp, {arg: _build(arg, building) for arg in args})
    else:
        # Tuples, sets and the like of Structs: converted whole, or dropped whole.
        plan = _Plan(tp)
    building[tp] = plan
    return plan


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
    if response.status < 400:
        # The SDK never follows a redirect (it would resend the body elsewhere): say where it
        # pointed, which is usually a base_url that is not the API's.
        location = response.headers.get("Location")
        message = (
            f"HTTP {response.status} redirect to {location!r} not followed"
            f" (the SDK never follows redirects; check base_url): {message}"
        )
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
        error.retry_after = read_retry_after(response.headers)
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
