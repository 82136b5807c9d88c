"""The public surface: one sorted __all__, every name importable and documented."""

from __future__ import annotations

import inspect

import inbox_async
import inbox_async.testing


def test_all_is_sorted_and_complete() -> None:
    assert inbox_async.__all__ == sorted(inbox_async.__all__)
    public = {name for name in vars(inbox_async) if not name.startswith("_")}
    # Subpackages are reachable as attributes once imported; they are not re-exports.
    public -= {"models", "resources", "testing", "bulk", "cli", "TYPE_CHECKING"}
    # Imported on first access, so the redis extra stays optional.
    public.add("RedisRateLimiter")
    assert public == set(inbox_async.__all__) - {"__version__"}


def test_every_export_has_a_docstring() -> None:
    for name in inbox_async.__all__:
        obj = getattr(inbox_async, name)
        if inspect.isclass(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name


def test_every_error_derives_from_inbox_error() -> None:
    for name in inbox_async.__all__:
        obj = getattr(inbox_async, name)
        if inspect.isclass(obj) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, inbox_async.InboxError), name


def test_testing_all_is_sorted() -> None:
    assert inbox_async.testing.__all__ == sorted(inbox_async.testing.__all__)
