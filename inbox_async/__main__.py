"""`python -m inbox_async`: the same command line as `inbox-async`."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
