"""Argument checks that run before anything is sent, and path-segment encoding."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote

from ._types import Priority

__all__ = [
    "check_column_data",
    "check_id",
    "check_platform_id",
    "check_platform_ids",
    "check_priority",
    "parse_rate_limit",
    "segment",
]

_SHOWN: Final = 60
# Python's default limit on int-to-str conversion (sys.get_int_max_str_digits) is 4300 digits.
_INT_BOUND: Final = 10**4300


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


PRIORITIES: Final = ("interactive", "background")


def check_priority(name: str, value: object) -> Priority:
    """`value` as a priority; a ValueError naming `name` for anything else."""
    if value == "interactive":
        return "interactive"
    if value == "background":
        return "background"
    raise ValueError(f"{name} must be 'interactive' or 'background', not {_shown(value)}")


# Bounds on an `N/SECONDS` window, so that no limiter or estimate meets a number floats cannot
# hold: no real quota is near a billion requests, nor a window past a year.
_MAX_WINDOW_REQUESTS: Final = 10**9
_MAX_WINDOW_SECONDS: Final = 366 * 86_400.0


def parse_rate_limit(name: str, text: object) -> tuple[int, float]:
    """`N/SECONDS` (e.g. `300/60`) as a `(requests, seconds)` window; ValueError naming `name`."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str like 300/60, not {type(text).__name__}")
    count, sep, seconds = text.partition("/")
    try:
        if not sep:
            raise ValueError(text)
        # int() refuses a count of over 4300 digits with a ValueError too.
        parsed = int(count), float(seconds)
    except ValueError:
        raise ValueError(f"{name} takes N/SECONDS, e.g. 300/60; got {_shown(text)}") from None
    if not 1 <= parsed[0] <= _MAX_WINDOW_REQUESTS:
        raise ValueError(
            f"{name}: N must be a whole number from 1 to {_MAX_WINDOW_REQUESTS:,}, "
            f"got {_shown(text)}"
        )
    if not 0 < parsed[1] <= _MAX_WINDOW_SECONDS:  # NaN fails this too
        raise ValueError(
            f"{name}: SECONDS must be more than 0 and at most {_MAX_WINDOW_SECONDS:,.0f}, "
            f"got {_shown(text)}"
        )
    return parsed


def check_id(name: str, value: object) -> str:
    """A list, prospect or import-job id: lowercase alphanumerics (`^[0-9a-z]+$`)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    # Three C string tests rather than a regex on every call: ASCII letters and digits only,
    # no uppercase letter (islower() is False for digits alone, hence isdigit()).
    if not (value.isascii() and value.isalnum() and (value.islower() or value.isdigit())):
        raise ValueError(f"{name} must match ^[0-9a-z]+$, got {_shown(value)}")
    return value


def check_platform_id(name: str, value: object) -> str:
    """An X user id: a non-empty string, or an int that is converted."""
    if isinstance(value, str):
        if not value or value.isspace():
            raise ValueError(f"{name} must be a non-empty string")
        if not value.isascii():
            _check_encodable(name, value)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
        return str(value)
    raise TypeError(f"{name} must be a str or int, not {type(value).__name__}")


def check_platform_ids(name: str, values: object) -> list[str]:
    """Any iterable of platform ids (but not one string, which would iterate its characters)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(
            f"{name} must be an iterable of platform ids (e.g. a list), not {type(values).__name__}"
        )
    return [check_platform_id(f"{name}[{i}]", value) for i, value in enumerate(values)]


def check_column_data(name: str, data: object) -> dict[str, Any]:
    """Column id -> str, int, float, bool or None; a float must be finite (JSON has no NaN)."""
    # Exact-type tests first: this runs for every update of a bulk job, and isinstance() against
    # the Mapping ABC costs more than the rest of the loop. Subclasses take the general tests.
    if type(data) is not dict and not isinstance(data, Mapping):
        raise TypeError(
            f"{name} must be a mapping of column id to value, not {type(data).__name__}"
        )
    for key, value in data.items():
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"{name} keys must be str column ids, got {_shown(key)}")
        if not key:
            raise ValueError(f"{name} keys must not be empty")
        if not key.isascii():
            _check_encodable(f"{name} key", key)
        kind = type(value)
        if kind is str or isinstance(value, str):
            if not value.isascii():
                _check_encodable(f"{name}[{key!r}]", value)
            continue
        if value is None or kind is bool:
            continue
        if kind is int or isinstance(value, int):
            if -_INT_BOUND < value < _INT_BOUND:
                continue
            # Python refuses to turn such an int into text, so no JSON encoder can send it.
            raise ValueError(f"{name}[{key!r}] is an int of more than 4300 digits")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{name}[{key!r}] must be a finite number, got {value!r}")
            continue
        raise TypeError(
            f"{name}[{key!r}] must be a str, int, float, bool or None, not {type(value).__name__}"
        )
    return data if type(data) is dict else dict(data)


def _check_encodable(name: str, value: str) -> None:
    # A lone surrogate cannot be sent as UTF-8; say which argument holds it. (The callers skip
    # this for ASCII strings, the usual case, without a call.)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{name} is not valid Unicode (it holds a lone surrogate)") from None


def segment(value: str) -> str:
    """Percent-encode `value` as exactly one path segment.

    `quote` leaves "." alone, so ".." would still be a dot-segment that a server or proxy may
    resolve; it is encoded too, as are "/", "?" and "#".
    """
    if value.isalnum() and value.isascii():
        return value
    return quote(value, safe="").replace(".", "%2E")
