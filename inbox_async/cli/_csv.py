"""CSV in and out for the command line: header checks, lazy rows, and spreadsheet-safe cells."""

from __future__ import annotations

import codecs
import contextlib
import csv
import heapq
import os
import re
import stat
import tempfile
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from .. import LeadUpdate
from .._constants import CLI_CELL_LIMIT, CLI_FILE_CELL_LIMIT, CLI_SHOWN_ERRORS

__all__ = [
    "CsvError",
    "CsvPlan",
    "FailureWriter",
    "RowError",
    "Scan",
    "escape_cell",
    "iter_rows",
    "parse_delimiter",
    "read_plan",
    "same_file",
    "scan",
    "unescape_cell",
]

PLATFORM_ID_HEADER: Final = "platformId"
# The column a failures file adds; reading such a file back ignores it.
ERROR_HEADER: Final = "inbox_error"
# A cell over CELL_LIMIT bytes fails its row; one over FILE_CELL_LIMIT breaks the file.
CELL_LIMIT: Final = CLI_CELL_LIMIT
FILE_CELL_LIMIT: Final = CLI_FILE_CELL_LIMIT
_COLUMN_ID_RE: Final = re.compile(r"custom_[0-9A-Za-z]+")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
# Delimiters tried, in this order, when --delimiter is not given.
_SNIFFED: Final = (",", ";", "\t", "|")
_SEPARATORS: Final = re.compile(r"[\s_.\-]+")
# Undecodable bytes, as the surrogateescape error handler hands them over.
_ESCAPED_BYTE: Final = re.compile("[\udc80-\udcff]")
# Ids a spreadsheet read as numbers: 1.52372E+18 (digits lost), 100000015.0 (a decimal point).
_SCIENTIFIC: Final = re.compile(r"[+-]?\d+(?:[.,]\d*)?[eE][+-]?\d+")
_DECIMAL: Final = re.compile(r"(\d+)[.,]0+")


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
    encoding: str = "utf-8-sig"
    """The codec the file is read with."""
    delimiter: str = ","
    """The cell delimiter, given or sniffed."""
    bom: bool = False
    """Whether the file starts with a UTF-8 byte order mark."""
    error_indexes: tuple[int, ...] = ()
    """Cells of an `inbox_error` column (a failures file fed back in): ignored."""

    @property
    def column_ids(self) -> list[str]:
        """The column ids the file sets, in header order."""
        return [column for _, column in self.columns]

    @property
    def id_header(self) -> str:
        """The header of the platform id column, as the file spells it."""
        return self.headers[self.platform_index]

    @property
    def encoding_name(self) -> str:
        """The encoding, as a person would name it."""
        return "UTF-8" if self.encoding == "utf-8-sig" else self.encoding


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


def parse_delimiter(value: str) -> str:
    """`--delimiter` to one character: any single character but a quote or a line break."""
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    delimiter = named.get(value.lower(), value)
    if len(delimiter) != 1 or delimiter in '"\r\n' or delimiter.isalnum():
        raise CsvError(f"--delimiter takes one character (or 'tab'), got {value!r}")
    return delimiter


def _codec(encoding: str | None) -> str:
    if encoding is None:
        return "utf-8-sig"
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise CsvError(
            f"--encoding: unknown encoding {encoding!r} (e.g. cp1252, latin-1)"
        ) from None
    # The BOM-skipping decoder reads plain UTF-8 too, and a BOM is never part of a header.
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


def _normalized(header: str) -> str:
    return _SEPARATORS.sub("", header).casefold()


def _find_id(headers: Sequence[str], id_column: str | None) -> list[int]:
    if id_column is not None:
        exact = [i for i, h in enumerate(headers) if h == id_column.strip()]
        if exact:
            return exact
        wanted = _normalized(id_column)
    else:
        wanted = _normalized(PLATFORM_ID_HEADER)
    return [i for i, h in enumerate(headers) if _normalized(h) == wanted]


def _undecodable(path: Path, line: int, text: str, encoding: str) -> CsvError:
    match = _ESCAPED_BYTE.search(text)
    byte = f" (byte 0x{ord(match.group()) - 0xDC00:02x})" if match else ""
    name = "UTF-8" if encoding == "utf-8-sig" else encoding
    hint = (
        "if the file is in another encoding, name it with --encoding (e.g. --encoding cp1252)"
        if encoding == "utf-8-sig"
        else "check --encoding"
    )
    return CsvError(f"{path} line {line}: not valid {name}{byte}; {hint}")


def _open(path: Path, encoding: str) -> IO[str]:
    # Undecodable bytes come through as lone surrogates, so that the error can name its line.
    return path.open(newline="", encoding=encoding, errors="surrogateescape")


def read_plan(
    path: Path,
    maps: Mapping[str, str],
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    id_column: str | None = None,
) -> CsvPlan:
    """Read and check the header row; the delimiter is sniffed from it unless given."""
    codec = _codec(encoding)
    try:
        with path.open("rb") as raw:
            start = raw.read(4)
    except OSError as exc:
        raise CsvError(f"cannot read {path}: {exc}") from exc
    bom = start.startswith(codecs.BOM_UTF8)
    if encoding is None and start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode Text" export: UTF-16 with a BOM, tab-delimited.
        codec = "utf-16"
    try:
        with _open(path, codec) as f:
            head = f.read(64 * 1024)
    except (OSError, UnicodeError) as exc:
        raise CsvError(f"cannot read {path}: {exc}") from exc
    first_line = head.split("\n", 1)[0].rstrip("\r")
    if not first_line.strip():
        raise CsvError(f"{path} is empty: it needs a header row with {PLATFORM_ID_HEADER}")
    if _ESCAPED_BYTE.search(first_line):
        raise _undecodable(path, 1, first_line, codec)
    candidates: list[tuple[str, list[str]]] = []
    for option in (delimiter,) if delimiter is not None else _SNIFFED:
        try:
            cells = next(csv.reader([first_line], delimiter=option), [])
        except csv.Error as exc:
            raise CsvError(f"{path} line 1: {exc}") from exc
        candidates.append((option, [c.strip().lstrip("\ufeff") for c in cells]))
    with_id = [c for c in candidates if _find_id(c[1], id_column)]
    # The delimiter that finds the id column and splits the most cells is the file's.
    chosen, headers = max(with_id or candidates, key=lambda c: len(c[1]))
    found = _find_id(headers, id_column)
    if not found:
        if id_column is not None:
            raise CsvError(
                f"--id-column {id_column!r}: no such header in {path} (headers: {headers})"
            )
        hint = "name the id column with --id-column"
        if delimiter is not None:
            for other in _SNIFFED:
                cells = next(csv.reader([first_line], delimiter=other), [])
                if other != delimiter and _find_id([c.strip() for c in cells], id_column):
                    shown = "tab" if other == "\t" else other
                    hint = f"the header splits on {shown!r}: give --delimiter {shown!r}"
                    break
        raise CsvError(f"{path} has no {PLATFORM_ID_HEADER} column (headers: {headers}); {hint}")
    if len(found) > 1:
        shown = ", ".join(repr(headers[i]) for i in found)
        raise CsvError(f"{path} has more than one id column ({shown}): name one with --id-column")
    platform_index = found[0]
    unknown_maps = set(maps) - set(headers)
    if unknown_maps:
        raise CsvError(f"--map names headers that are not in {path}: {sorted(unknown_maps)}")
    columns: list[tuple[int, str]] = []
    errors: list[int] = []
    seen: set[str] = set()
    for index, header in enumerate(headers):
        if index == platform_index:
            continue
        if header == ERROR_HEADER:
            errors.append(index)
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
    return CsvPlan(
        path,
        tuple(headers),
        platform_index,
        tuple(columns),
        encoding=codec,
        delimiter=chosen,
        bom=bom,
        error_indexes=tuple(errors),
    )


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that cannot become an update."""

    line: int
    cells: list[str]
    message: str
    mangled: bool = False
    """Whether the platform id is one a spreadsheet turned into a number."""


def _mangled_id(platform_id: str) -> str | None:
    if _SCIENTIFIC.fullmatch(platform_id):
        return (
            f"platform id {platform_id!r} is a number in scientific notation: a spreadsheet "
            "rounded it and the real id is lost; format the id column as text and export again"
        )
    decimal = _DECIMAL.fullmatch(platform_id)
    if decimal:
        return (
            f"platform id {platform_id!r} is a decimal number: a spreadsheet turned the id "
            f"into a number (probably {decimal.group(1)}); format the id column as text and "
            "export again"
        )
    return None


def _oversized(cells: list[str]) -> int | None:
    for index, cell in enumerate(cells):
        size = len(cell)
        # Four bytes per character at most: only a long cell needs encoding to measure.
        if size > CELL_LIMIT // 4 and (
            size > CELL_LIMIT or len(cell.encode("utf-8", "surrogatepass")) > CELL_LIMIT
        ):
            return index
    return None


def iter_rows(plan: CsvPlan, *, clear_empty: bool) -> Iterator[LeadUpdate | RowError]:
    """The data rows as updates, read lazily; an empty cell is skipped (or clears, if asked).

    A row that cannot be sent is a RowError; a file that cannot be read (bytes that are not in
    its encoding, a cell over FILE_CELL_LIMIT bytes) raises CsvError naming the line.
    """
    width = len(plan.headers)
    id_header = plan.id_header
    # A row with one huge cell must fail alone, not stop the reader; beyond this, it is broken.
    if csv.field_size_limit() < FILE_CELL_LIMIT:
        csv.field_size_limit(FILE_CELL_LIMIT)
    end = 1
    try:
        with _open(plan.path, plan.encoding) as f:
            # strict: a quote that never closes, or text after a closing quote, is a broken
            # file (exit 2 before anything is sent), not a cell that swallows the rows after it.
            reader = csv.reader(f, delimiter=plan.delimiter, strict=True)
            next(reader, None)
            end = reader.line_num
            for cells in reader:
                # Where the row starts: a quoted cell may run over several lines.
                line, end = end + 1, reader.line_num
                # One join per row lets C do the common checks; most rows pass them all.
                text = "".join(cells)
                if not text or text.isspace():
                    continue
                if not text.isascii() and _ESCAPED_BYTE.search(text):
                    raise _undecodable(plan.path, line, text, plan.encoding)
                if "'" in text:
                    cells = [unescape_cell(c) for c in cells]
                big = _oversized(cells) if len(text) > CELL_LIMIT // 4 else None
                if big is not None:
                    header = plan.headers[big] if big < width else f"cell {big + 1}"
                    kib = len(cells[big].encode("utf-8", "surrogatepass")) // 1024
                    message = (
                        f"line {line}: the {header} cell is {kib} KiB; the limit is "
                        f"{CELL_LIMIT // 1024} KiB"
                    )
                    yield RowError(line, cells, message)
                    continue
                if len(cells) > width and any(c.strip() for c in cells[width:]):
                    message = f"line {line}: {len(cells)} cells, the header has {width}"
                    yield RowError(line, cells, message)
                    continue
                cells += [""] * (width - len(cells))
                platform_id = cells[plan.platform_index].strip()
                if not platform_id:
                    yield RowError(line, cells, f"line {line} has no {id_header}")
                    continue
                mangled = None if platform_id.isdigit() else _mangled_id(platform_id)
                if mangled is not None:
                    yield RowError(line, cells, f"line {line}: {mangled}", mangled=True)
                    continue
                data: dict[str, Any] = {}
                for index, column in plan.columns:
                    value = cells[index]
                    if value != "":
                        data[column] = value
                    elif clear_empty:
                        data[column] = None
                yield LeadUpdate(platform_id, data)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise CsvError(
                f"{plan.path} line {end + 1}: a cell of more than "
                f"{FILE_CELL_LIMIT // (1024 * 1024)} MiB; the file is broken "
                "(a quote that never closes?)"
            ) from None
        if "unexpected end of data" in str(exc):
            raise CsvError(f"{plan.path} line {end + 1}: a quoted cell never closes") from None
        raise CsvError(
            f"{plan.path} line {end + 1}: {exc} (a quote inside a quoted cell is written twice)"
        ) from None
    except (OSError, UnicodeError) as exc:
        raise CsvError(f"cannot read {plan.path}: {exc}") from exc


class _Repeats:
    """Counts platform ids that occur more than once, in 8 bytes per row.

    A set of the ids would take some 70 bytes a row; the ids' hashes are kept in sorted runs
    instead and merged at the end. Two different ids of one file colliding in 64 bits is not
    a concern for a count that is only reported.
    """

    _RUN: Final = 1 << 18

    def __init__(self) -> None:
        self._runs: list[array[int]] = []
        self._current: array[int] = array("q")

    def add(self, platform_id: str) -> None:
        """Count one row's id."""
        self._current.append(hash(platform_id))
        if len(self._current) >= self._RUN:
            self._seal()

    def _seal(self) -> None:
        if self._current:
            self._runs.append(array("q", sorted(self._current)))
            self._current = array("q")

    def counts(self) -> tuple[int, int]:
        """(ids that occur more than once, rows beyond each id's first)."""
        self._seal()
        repeated = extra = 0
        previous: int | None = None
        counted = False
        for value in heapq.merge(*self._runs):
            if value == previous:
                extra += 1
                if not counted:
                    repeated += 1
                    counted = True
            else:
                previous, counted = value, False
        self._runs = []
        return repeated, extra


@dataclass(slots=True)
class Scan:
    """What a first pass over the whole file found, before anything is sent."""

    updates: int = 0
    """Rows that become an update."""
    rejected: int = 0
    """Rows that cannot be sent."""
    mangled: int = 0
    """Of those, rows whose id a spreadsheet turned into a number."""
    repeated: int = 0
    """Platform ids on more than one row."""
    extra_rows: int = 0
    """Rows beyond the first of each repeated id."""
    errors: list[RowError] | None = None
    """The first rejected rows, to show."""


def scan(plan: CsvPlan, *, clear_empty: bool, keep_errors: int = CLI_SHOWN_ERRORS) -> Scan:
    """Read the whole file once: count, check, find repeated ids; rows are not kept."""
    errors: list[RowError] = []
    result = Scan(errors=errors)
    repeats = _Repeats()
    add = repeats.add
    updates = 0
    for row in iter_rows(plan, clear_empty=clear_empty):
        if type(row) is LeadUpdate:
            updates += 1
            add(row.platform_id)
        else:
            assert isinstance(row, RowError)
            result.rejected += 1
            result.mangled += row.mangled
            if len(errors) < keep_errors:
                errors.append(row)
    result.updates = updates
    result.repeated, result.extra_rows = repeats.counts()
    return result


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


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (also through links), existing or not."""
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


class FailureWriter:
    """Writes failed rows in the input's format plus an `inbox_error` column, as they happen.

    The rows go to a temporary file beside `path`, which replaces `path` in one rename when the
    writer is closed: the target (which may be the very file being read) is never truncated,
    and never left half written.
    """

    def __init__(self, path: Path, plan: CsvPlan) -> None:
        self.path = path
        self._plan = plan
        # Cells of an earlier run's inbox_error column are dropped: the new error replaces them.
        self._keep = [i for i in range(len(plan.headers)) if i not in plan.error_indexes]
        self._width = len(self._keep)
        write_encoding = plan.encoding
        if write_encoding == "utf-8-sig" and not plan.bom:
            write_encoding = "utf-8"
        try:
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as exc:
            raise CsvError(f"--failures {str(path)!r}: cannot write beside it: {exc}") from None
        self._temp = Path(temp)
        try:
            # An error message the input's encoding lacks a character for must not stop the job.
            self._file: IO[str] = open(  # noqa: SIM115 (closed by close())
                fd, "w", newline="", encoding=write_encoding, errors="replace"
            )
        except BaseException:
            os.close(fd)
            self._temp.unlink()
            raise
        self._writer = csv.writer(self._file, delimiter=plan.delimiter)
        headers = [plan.headers[i] for i in self._keep]
        self._writer.writerow([escape_cell(h) for h in (*headers, ERROR_HEADER)])
        self.count = 0
        self._closed = False

    def write_update(self, platform_id: str, data: Mapping[str, Any], error: str) -> None:
        """One failed update, rebuilt into the input's columns."""
        cells = [""] * len(self._plan.headers)
        cells[self._plan.platform_index] = platform_id
        for index, column in self._plan.columns:
            value = data.get(column)
            cells[index] = "" if value is None else str(value)
        self._write([cells[i] for i in self._keep], [], error)

    def write_cells(self, cells: list[str], error: str) -> None:
        """One row that could not be read as an update, with every cell it had."""
        width = len(self._plan.headers)
        kept = [cells[i] if i < len(cells) else "" for i in self._keep]
        # Cells beyond the header go after the error, so that the row fails the same way again.
        self._write(kept, cells[width:], error)

    def _write(self, cells: list[str], extra: list[str], error: str) -> None:
        self._writer.writerow([escape_cell(c) for c in (*cells, error, *extra)])
        self.count += 1

    def close(self, *, commit: bool = True) -> None:
        """Close the file; rename it into place if `commit`, else delete it."""
        if self._closed:
            return
        self._closed = True
        try:
            self._file.flush()
            if commit:
                os.fsync(self._file.fileno())
        finally:
            self._file.close()
        if not commit:
            self._temp.unlink(missing_ok=True)
            return
        try:
            os.chmod(self._temp, _mode_for(self.path))
            os.replace(self._temp, self.path)
        except OSError:
            self._temp.unlink(missing_ok=True)
            raise


def _mode_for(path: Path) -> int:
    # mkstemp makes the file 0600: keep the mode of the file it replaces, or the umask's.
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
