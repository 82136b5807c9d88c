"""The SDK's logger: `logging.getLogger("inbox_async")`."""

from __future__ import annotations

import logging

logger = logging.getLogger("inbox_async")
