"""The legacy-record CSV going in and the reconciled CSV coming out.

Input: UTF-8 (with or without a byte-order mark) or UTF-16 (little or big
endian, told apart by its byte-order mark, as spreadsheet programs write
"Unicode text"); UTF-32 and UTF-16 without a BOM are refused by name. A header
row naming some of :data:`INPUT_FIELDS` (``national_code`` is required; case
and spaces are ignored, unknown columns are skipped), then one record per
legacy row. Rows are numbered from 1 after the
header, counting every record, so a number always points at the same input
row across runs. A record the CSV parser rejects, or with a wrong number of
columns, becomes a :class:`LegacyRow` carrying a ``problem``: it is reported,
never fatal.

Output: :data:`OUTPUT_FIELDS`, one physical line per record (values never
contain line breaks), so that a resumed run can find the last finished row by
reading the file's tail and cut off a half-written line.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from idp.private_files import FILE_MODE, open_private, private_folder

INPUT_FIELDS = (
    "national_code",
    "first_name",
    "last_name",
    "father_name",
    "birth_date",
    "postal_code",
)
CLAIM_FIELDS = INPUT_FIELDS[1:]
OUTPUT_FIELDS = (
    "row",
    *INPUT_FIELDS,
    "national_code_result",
    *(f"{name}_result" for name in CLAIM_FIELDS),
    *(f"filled_{name}" for name in CLAIM_FIELDS),
    "needs_review",
    "tracking_code",
)
# national_code_result of rows that were never looked up.
FAILED_CODE_RESULTS = frozenset({"invalid", "missing", "not_checked"})
OUTPUT_HEADER = ",".join(OUTPUT_FIELDS) + "\r\n"
# Spreadsheets run a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class LegacyFormatError(ValueError):
    """The file as a whole cannot be read as legacy records (bad header, wrong output file)."""


@dataclass(frozen=True, slots=True)
class LegacyRow:
    number: int
    values: dict[str, str]
    problem: str | None = None


class CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read so far, for the progress bar."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes_read += len(data)
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


_ENCODING_NAMES = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16"}


def detect_encoding(head: bytes) -> str:
    """The codec for a file starting with ``head``, by its byte-order mark (UTF-8 without one)."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise LegacyFormatError("the file is UTF-32; save it as UTF-8 (or UTF-16 with a BOM)")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the codec reads the BOM and drops it
    if b"\x00" in head and not head.startswith(codecs.BOM_UTF8):
        raise LegacyFormatError(
            "the file holds NUL bytes: it looks like UTF-16 without a byte-order mark; "
            "save it as UTF-8, or as UTF-16 with a byte-order mark"
        )
    return "utf-8-sig"  # drops a UTF-8 BOM if there is one


def open_legacy(path: Path) -> tuple[CountingReader, io.TextIOWrapper]:
    """The input as text; undecodable bytes become U+FFFD and make their row invalid."""
    counter = CountingReader(open(path, "rb"))
    buffered = io.BufferedReader(counter)
    try:
        encoding = detect_encoding(buffered.peek(512)[:512])
    except LegacyFormatError:
        buffered.close()
        raise
    text = io.TextIOWrapper(buffered, encoding=encoding, errors="replace", newline="")
    return counter, text


def encoding_name(text: io.TextIOBase) -> str:
    encoding = getattr(text, "encoding", None) or "utf-8-sig"
    return _ENCODING_NAMES.get(encoding, encoding)


def _column_map(header: list[str], encoding: str = "UTF-8") -> dict[str, int]:
    names = [name.strip().lstrip("\ufeff").lower() for name in header]
    columns = {name: index for index, name in enumerate(names) if name in INPUT_FIELDS}
    if "national_code" not in columns:
        # The row itself is not echoed: without a header it is a citizen's record.
        raise LegacyFormatError(
            "the first row must be a header naming the columns, with at least national_code; "
            f"its {len(header)} column(s), read as {encoding}, name none of the known columns "
            f"({', '.join(INPUT_FIELDS)})"
        )
    return columns


def check_header(path: Path) -> None:
    """Raise :class:`LegacyFormatError` unless the file starts with a usable header."""
    _counter, text = open_legacy(path)
    with text:
        _column_map(_header(csv.reader(text)), encoding_name(text))


def _header(reader: Iterator[list[str]]) -> list[str]:
    try:
        return next(reader)
    except StopIteration:
        raise LegacyFormatError(
            "the file is empty; it needs a header row naming the columns, "
            "with at least national_code"
        ) from None
    except csv.Error as exc:
        raise LegacyFormatError(f"the header row is not valid CSV: {exc}") from None


def legacy_rows(text: io.TextIOBase) -> Iterator[LegacyRow]:
    """Every record after the header, numbered; blank lines are counted but not yielded."""
    reader = csv.reader(text)
    header = _header(reader)
    encoding = encoding_name(text)
    columns = _column_map(header, encoding)
    width = len(header)
    number = 0
    while True:
        number += 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield LegacyRow(number, {}, f"malformed-csv: {exc}")
            continue
        if not record or record == [""]:
            continue
        values = {
            name: record[index].strip() if index < len(record) else ""
            for name, index in columns.items()
        }
        if len(record) != width:
            yield LegacyRow(number, values, f"column-count: expected {width}, got {len(record)}")
        elif any("\ufffd" in value for value in values.values()):
            yield LegacyRow(number, values, f"encoding: bytes that are not {encoding}")
        else:
            yield LegacyRow(number, values)


def cell(value: str) -> str:
    """An echoed legacy value made safe for one CSV line and for spreadsheets."""
    value = value.replace("\r", " ").replace("\n", " ")
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def format_records(records: Iterable[list[str]]) -> bytes:
    """Output records as CSV lines (CRLF, RFC 4180 quoting), encoded for appending."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(records)
    return buffer.getvalue().encode()


@dataclass(frozen=True)
class OutputState:
    """What an output file already holds: rows, the last row's number, rows to review or failed.

    A failed row is one that could not be looked up (malformed, or no valid
    national code).
    """

    rows: int = 0
    last_row: int = 0
    needs_review: int = 0
    failed: int = 0


def prepare_output(path: Path, *, resume: bool) -> OutputState:
    """Start a fresh output, or on ``resume`` repair and read the one that exists.

    A crash can leave a half-written last line; it is cut off here, and the
    row it belonged to is done again. Reading is one pass, line by line.
    """
    if not resume or not path.exists() or path.stat().st_size == 0:
        _write_header(path)
        return OutputState()
    with open(path, "rb+") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)  # one an earlier version left readable
        if handle.readline().decode("utf-8", "replace") != OUTPUT_HEADER:
            raise LegacyFormatError(
                f"{path} exists but is not a reconciliation output; "
                "choose another --out, or --no-resume to overwrite it"
            )
        rows = last_row = needs_review = failed = 0
        review_index = OUTPUT_FIELDS.index("needs_review")
        code_index = OUTPUT_FIELDS.index("national_code_result")
        complete_up_to = handle.tell()
        for line in handle:
            if not line.endswith(b"\n"):
                break
            record = next(csv.reader([line.decode("utf-8", "replace")]))
            rows += 1
            last_row = int(record[0])
            needs_review += bool(record[review_index])
            failed += record[code_index] in FAILED_CODE_RESULTS
            complete_up_to += len(line)
        handle.truncate(complete_up_to)
        handle.flush()
        os.fsync(handle.fileno())
    return OutputState(rows=rows, last_row=last_row, needs_review=needs_review, failed=failed)


def _write_header(path: Path) -> None:
    private_folder(path.parent)
    # National codes and match results: readable by Hoviyat's user alone.
    with os.fdopen(open_private(path), "wb") as handle:
        handle.write(OUTPUT_HEADER.encode())
        handle.flush()
        os.fsync(handle.fileno())
