"""Diagnostics: the SDK's logger (`logging.getLogger("inbox_async")`), and where in the
caller's code something happened.

`INBOX_LOG=debug` (every request, its status and time) or `INBOX_LOG=info` (waits, retries)
sends that log to stderr without a line of code, as `OPENAI_LOG` does for openai-python.
`caller_outside_package` names the user's line that made a client, for the ResourceWarning of
one that is never closed.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import sys
from typing import Final

__all__ = ["LOG_ENV_VAR", "caller_outside_package", "logger"]

logger = logging.getLogger("inbox_async")

LOG_ENV_VAR: Final = "INBOX_LOG"
_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO}
_FORMAT: Final = "[%(asctime)s %(name)s %(levelname)s] %(message)s"


def _configure_from_env() -> None:
    """Attach a stderr handler to the SDK's logger when INBOX_LOG asks for one."""
    value = os.environ.get(LOG_ENV_VAR, "").strip()
    if not value:
        return
    level = _LEVELS.get(value.lower())
    if level is None:
        # Not warnings.warn: under `-W error` that would make `import inbox_async` fail, and a
        # typo in a debugging switch must never break the program. Shown with repr and capped,
        # as the value comes from outside.
        shown = repr(value[:40]) + ("..." if len(value) > 40 else "")
        if sys.stderr is not None:  # None under pythonw
            with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr
                print(
                    f"inbox_async: ignoring {LOG_ENV_VAR}={shown}: expected debug or info",
                    file=sys.stderr,
                )
        return
    handler = logging.StreamHandler()  # sys.stderr at the time of each write
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)


_PACKAGE_DIR: Final = __file__.rsplit("/", 1)[0].rsplit("\\", 1)[0]


def caller_outside_package() -> str:
    """`file:line` of the first frame outside inbox_async: where the user called into it."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


_configure_from_env()
