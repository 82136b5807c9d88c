"""The bulk journal: an append-only record of one job's finished items, so that a rerun resumes.

The file is UTF-8 text. Its first line names the job,
`# inbox_async bulk journal v1 {"base_url":"...","list_id":"..."}` (keys sorted); then one line
per finished item, `ok KEY 'platform_id'` or `failed KEY 'platform_id'`, where KEY is the
update's 64-bit digest (`Journal.key_of`: the lead and its values) in 16 hex digits. Only `ok`
lines are read back; the platform id is there for a person reading the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

import msgspec

from ._constants import JOURNAL_LOAD_BATCH
from ._exceptions import JournalMismatchError

__all__ = ["Journal"]

# The first line of a journal: the job it belongs to.
_JOURNAL_HEADER: Final = b"# inbox_async bulk journal v1 "


class Journal:
    """Append-only record of one job's finished items; a rerun skips what it shows applied.

    The first line names the job (base URL and list id): a journal is never reused for another
    list or server, where skipping its items would report updates that never happened. Then one
    line per finished item, flushed before the item counts as done, so a crash loses at most the
    items that were in flight. A torn last line (a `kill -9` mid-write) is ignored.
    """

    def __init__(self, path: str | os.PathLike[str], *, base_url: str, list_id: str) -> None:
        """Open (or start) the journal at `path` for the job on `list_id` at `base_url`.

        Reads the whole file at once; a bulk job uses `Journal.open`, which gives the event loop
        a turn as it reads. Raises JournalMismatchError (a ValueError) when the journal belongs
        to another job.
        """
        for _ in self._load(path, base_url, list_id):
            pass

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, base_url: str, list_id: str) -> Journal:
        """`Journal(...)`, read in batches with a turn for the event loop after each one.

        A journal of a million lines takes about a second to read; in one step that would stall
        every other task of the loop (a web app's handlers, the progress display) as long.
        """
        journal = cls.__new__(cls)
        for _ in cls._load(journal, path, base_url, list_id):
            await asyncio.sleep(0)
        return journal

    def _load(self, path: str | os.PathLike[str], base_url: str, list_id: str) -> Iterator[None]:
        """Read the journal, pausing (yielding) after every JOURNAL_LOAD_BATCH bytes of lines."""
        self.path = Path(path)
        self._applied: set[int] = set()
        applied = self._applied
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            with self.path.open("rb") as f:
                self._check_job(f.readline(), base_url, list_id)
                while True:
                    lines = f.readlines(JOURNAL_LOAD_BATCH)
                    if not lines:
                        break
                    for line in lines:
                        parts = line.split()
                        if len(parts) == 3 and parts[0] == b"ok":
                            # try/except rather than suppress(): a context manager per line
                            # costs more than the rest of the line's work.
                            try:  # noqa: SIM105
                                applied.add(int(parts[1], 16))
                            except ValueError:
                                pass  # a torn line
                    yield
        self._file = self.path.open("a", encoding="utf-8")
        if fresh:
            job = _canonical.encode({"base_url": base_url, "list_id": list_id})
            self._file.write((_JOURNAL_HEADER + job).decode() + "\n")
            self._file.flush()

    def _check_job(self, first: bytes, base_url: str, list_id: str) -> None:
        if not first.startswith(_JOURNAL_HEADER):
            raise JournalMismatchError(
                f"journal {str(self.path)!r} does not say which job it belongs to (it was written "
                "by an older version or is not a journal): delete it or pass another journal path"
            )
        try:
            job = msgspec.json.decode(first[len(_JOURNAL_HEADER) :])
            theirs = (str(job["base_url"]), str(job["list_id"]))
        except (msgspec.DecodeError, KeyError, TypeError) as exc:
            raise JournalMismatchError(
                f"journal {str(self.path)!r} has a damaged first line"
            ) from exc
        if theirs != (base_url, list_id):
            raise JournalMismatchError(
                f"journal {str(self.path)!r} belongs to list {theirs[1]} at {theirs[0]}, not to "
                f"this job's list {list_id} at {base_url}: reusing it would skip updates that "
                "were never made there; pass another journal path"
            )

    @property
    def applied_count(self) -> int:
        """Updates the journal shows applied."""
        return len(self._applied)

    @staticmethod
    def key_of(platform_id: object, data: object) -> int | None:
        """A 64-bit digest of one update (the same lead, the same values); None if invalid."""
        if not isinstance(platform_id, (str, int)) or not isinstance(data, Mapping):
            return None
        try:
            blob = str(platform_id).encode() + b"\0" + _canonical.encode(dict(data))
        except Exception:  # anything odd in a caller's item: it has no key, and fails alone
            return None
        return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big")

    def applied(self, key: int) -> bool:
        """Whether an earlier run applied this update."""
        return key in self._applied

    def record(self, key: int, ok: bool, platform_id: str) -> None:
        """Append one finished item and flush it to the OS."""
        self._file.write(f"{'ok' if ok else 'failed'} {key:016x} {platform_id!r}\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


_canonical: Final = msgspec.json.Encoder(order="sorted")
