"""CSV in and out for the command line: header checks, lazy rows, and spreadsheet-safe cells."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from .bulk import LeadUpdate

__all__ = ["CsvError", "CsvPlan", "FailureWriter", "escape_cell", "read_plan", "unescape_cell"]

PLATFORM_ID_HEADER: Final = "platformId"
# The column a failures file adds; reading such a file back ignores it.
ERROR_HEADER: Final = "inbox_error"
_COLUMN_ID_RE: Final = re.compile(r"custom_[0-9A-Za-z]+")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


class CsvError(Exception):
    """The CSV cannot be used as it is (exit code 2)."""


@dataclass(frozen=True, slots=True)
class CsvPlan:
    """What a CSV's header row says: where the platform ids are and which column each cell sets."""

    path: Path
    headers: tuple[str, ...]
    platform_index: int
    columns: tuple[tuple[int, str], ...]
    """(cell index, column id) for every cell that sets a column."""

    @property
    def column_ids(self) -> list[str]:
        """The column ids the file sets, in header order."""
        return [column for _, column in self.columns]


def parse_maps(maps: Sequence[str]) -> dict[str, str]:
    """`--map "Header=custom_..."` options to a dict, checked."""
    parsed: dict[str, str] = {}
    for item in maps:
        header, sep, column = item.partition("=")
        header, column = header.strip(), column.strip()
        if not sep or not header or not column:
            raise CsvError(f'--map takes "CSV header=custom_...", got {item!r}')
        if _COLUMN_ID_RE.fullmatch(column) is None:
            raise CsvError(f"--map {item!r}: {column!r} is not a column id (custom_...)")
        parsed[header] = column
    return parsed


def read_plan(path: Path, maps: Mapping[str, str]) -> CsvPlan:
    """Read and check the header row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            headers = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CsvError(f"cannot read {path}: {exc}") from exc
    if not headers:
        raise CsvError(f"{path} is empty: it needs a header row with {PLATFORM_ID_HEADER}")
    headers = [h.strip() for h in headers]
    if PLATFORM_ID_HEADER not in headers:
        raise CsvError(f"{path} has no {PLATFORM_ID_HEADER} column (headers: {headers})")
    unknown_maps = set(maps) - set(headers)
    if unknown_maps:
        raise CsvError(f"--map names headers that are not in {path}: {sorted(unknown_maps)}")
    columns: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, header in enumerate(headers):
        if header in (PLATFORM_ID_HEADER, ERROR_HEADER):
            continue
        column = maps.get(header, header)
        if _COLUMN_ID_RE.fullmatch(column) is None:
            raise CsvError(
                f"unknown header {header!r} in {path}: headers must be column ids "
                f'(custom_...) or be mapped with --map "{header}=custom_..."'
            )
        if column in seen:
            raise CsvError(f"column {column!r} is set by two headers in {path}")
        seen.add(column)
        columns.append((index, column))
    return CsvPlan(path, tuple(headers), headers.index(PLATFORM_ID_HEADER), tuple(columns))


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that cannot become an update."""

    line: int
    cells: list[str]
    message: str


def iter_rows(plan: CsvPlan, *, clear_empty: bool) -> Iterator[LeadUpdate | RowError]:
    """The data rows as updates, read lazily; an empty cell is skipped (or clears, if asked)."""
    width = len(plan.headers)
    try:
        with plan.path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            next(reader, None)
            for cells in reader:
                if not cells or all(not c.strip() for c in cells):
                    continue
                line = reader.line_num
                cells = [unescape_cell(c) for c in cells]
                if len(cells) > width and any(c.strip() for c in cells[width:]):
                    yield RowError(line, cells, f"row has {len(cells)} cells, header {width}")
                    continue
                cells += [""] * (width - len(cells))
                platform_id = cells[plan.platform_index].strip()
                if not platform_id:
                    yield RowError(line, cells, f"row {line} has no {PLATFORM_ID_HEADER}")
                    continue
                data: dict[str, Any] = {}
                for index, column in plan.columns:
                    value = cells[index]
                    if value != "":
                        data[column] = value
                    elif clear_empty:
                        data[column] = None
                yield LeadUpdate(platform_id, data)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CsvError(f"cannot read {plan.path}: {exc}") from exc


def escape_cell(value: str) -> str:
    """Make a cell safe to open in a spreadsheet: a would-be formula is prefixed with '.

    A value that already starts with quotes before a formula character gets one more, so that
    `unescape_cell` gives back exactly the value that was escaped.
    """
    return "'" + value if value.lstrip("'").startswith(_FORMULA_START) else value


def unescape_cell(value: str) -> str:
    """Undo `escape_cell`, so that a failures file can be fed back in unchanged."""
    if value.startswith("'") and value.lstrip("'").startswith(_FORMULA_START):
        return value[1:]
    return value


class FailureWriter:
    """Writes failed rows in the input's format plus an `inbox_error` column, as they happen."""

    def __init__(self, path: Path, plan: CsvPlan) -> None:
        self._plan = plan
        self._file: IO[str] = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow([escape_cell(h) for h in (*plan.headers, ERROR_HEADER)])
        self.count = 0

    def write_update(self, platform_id: str, data: Mapping[str, Any], error: str) -> None:
        """One failed update, rebuilt into the input's columns."""
        cells = [""] * len(self._plan.headers)
        cells[self._plan.platform_index] = platform_id
        for index, column in self._plan.columns:
            value = data.get(column)
            cells[index] = "" if value is None else str(value)
        self._write(cells, error)

    def write_cells(self, cells: list[str], error: str) -> None:
        """One row that could not be read as an update, as it was."""
        self._write(cells[: len(self._plan.headers)], error)

    def _write(self, cells: list[str], error: str) -> None:
        self._writer.writerow([escape_cell(c) for c in (*cells, error)])
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        """Close the file."""
        self._file.close()
