"""The legacy CSV reader and the output file's repair on resume."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from idp.reconciliation.legacy_csv import (
    OUTPUT_FIELDS,
    OUTPUT_HEADER,
    LegacyFormatError,
    cell,
    check_header,
    legacy_rows,
    open_legacy,
    prepare_output,
)


def rows_of(text: str) -> list:
    return list(legacy_rows(io.StringIO(text, newline="")))


def test_header_is_case_and_space_insensitive_and_extra_columns_are_skipped() -> None:
    rows = rows_of(" National_Code ,id,First_Name\r\n0499370899,7,علی\r\n")
    assert rows[0].values == {"national_code": "0499370899", "first_name": "علی"}
    assert rows[0].problem is None


@pytest.mark.parametrize("text", ["", "first_name,last_name\nعلی,رضایی\n"])
def test_a_file_without_a_national_code_column_is_refused(text: str) -> None:
    with pytest.raises(LegacyFormatError):
        rows_of(text)


def test_bad_records_are_reported_and_reading_goes_on() -> None:
    huge = "x" * (csv.field_size_limit() + 10)
    text = (
        "national_code,first_name\n"
        "0499370899,a\n"
        f'0499370899,"{huge}"\n'
        "0499370899\n"
        "\n"
        "0499370899,b,extra\n"
        "0499370899,c\n"
    )
    rows = rows_of(text)
    assert [row.number for row in rows] == [1, 2, 3, 5, 6]
    assert rows[1].problem is not None and rows[1].problem.startswith("malformed-csv")
    assert rows[2].problem == "column-count: expected 2, got 1"
    assert rows[3].problem == "column-count: expected 2, got 3"
    assert rows[4].values["first_name"] == "c" and rows[4].problem is None


def test_bytes_that_are_not_utf8_make_the_row_invalid(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"\xef\xbb\xbfnational_code,first_name\n0499370899,\xff\xfe\n1,ok\n")
    check_header(path)
    counter, text = open_legacy(path)
    with text:
        rows = list(legacy_rows(text))
    assert rows[0].problem == "encoding: bytes that are not UTF-8"
    assert rows[1].problem is None
    assert counter.bytes_read == path.stat().st_size


def test_cells_cannot_start_formulas_or_break_lines() -> None:
    assert cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert cell("a\nb\rc") == "a b c"
    assert cell("علی") == "علی"


def test_resume_cuts_a_half_written_line_and_counts_finished_rows(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"

    def line(number: int, review: str) -> str:
        fields = [str(number)] + ["x"] * (len(OUTPUT_FIELDS) - 1)
        fields[OUTPUT_FIELDS.index("needs_review")] = review
        return ",".join(fields) + "\r\n"

    complete = line(1, "") + line(3, "mismatch:birth_date")
    out.write_bytes((OUTPUT_HEADER + complete + "4,c,x,x").encode())
    state = prepare_output(out, resume=True)
    assert (state.rows, state.last_row, state.needs_review) == (2, 3, 1)
    assert out.read_bytes() == (OUTPUT_HEADER + complete).encode()


def test_resume_refuses_a_file_that_is_not_an_output(tmp_path: Path) -> None:
    out = tmp_path / "precious.csv"
    out.write_text("national_code\n0499370899\n")
    with pytest.raises(LegacyFormatError):
        prepare_output(out, resume=True)
    assert out.read_text() == "national_code\n0499370899\n"
    prepare_output(out, resume=False)
    assert out.read_bytes() == OUTPUT_HEADER.encode()
