"""`python -m inbox_async.cli`: the same command line as `inbox-async`."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
