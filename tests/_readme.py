"""The README's code, read between its `<!-- snippet: NAME -->` markers, for tests that run it."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"

_SNIPPET = re.compile(
    r"<!-- snippet: (?P<name>[\w.-]+) -->\n```[\w]*\n(?P<body>.*?)```\n<!-- /snippet -->",
    re.DOTALL,
)


def readme_snippets() -> dict[str, str]:
    """Every marked snippet of README.md by name, as the reader copies it."""
    found: dict[str, str] = {}
    for match in _SNIPPET.finditer(README.read_text(encoding="utf-8")):
        assert match["name"] not in found, f"two README snippets named {match['name']}"
        found[match["name"]] = match["body"]
    return found


def readme_snippet(name: str) -> str:
    """One marked snippet of README.md; fails naming it if the markers are missing."""
    snippets = readme_snippets()
    assert name in snippets, f"README.md has no snippet {name!r} (found {sorted(snippets)})"
    return snippets[name]
