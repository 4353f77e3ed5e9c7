"""The XLSX writer: what openpyxl reads back is what was written."""

import io
import zipfile

from openpyxl import load_workbook

from exchange import xlsx


def read_back(title, rows):
    out = io.BytesIO()
    xlsx.write(out, title, rows)
    book = load_workbook(io.BytesIO(out.getvalue()))
    return book, [list(r) for r in book.active.iter_rows(values_only=True)]


def test_text_numbers_and_booleans_come_back_as_written():
    rows = [["Team", "Title", "Value", "Done"],
            ["Sales & Ops", "<Win> \"big\" deals", 12, True],
            ["  spaced  ", "Line one\nline two", 2.5, False],
            ["Ünïcødé ✓", "'=1+1", -3, ""]]
    book, got = read_back("okrs", rows)
    assert book.sheetnames == ["okrs"]
    assert got == [["Team", "Title", "Value", "Done"],
                   ["Sales & Ops", "<Win> \"big\" deals", 12, True],
                   ["  spaced  ", "Line one\nline two", 2.5, False],
                   ["Ünïcødé ✓", "'=1+1", -3, ""]]


def test_control_characters_are_dropped_and_bad_numbers_become_text():
    _, got = read_back("notes", [["a\x00b\x1fc", float("nan"), float("inf")]])
    assert got == [["abc", "nan", "inf"]]


def test_wide_rows_get_their_column_letters_and_long_sheets_their_rows():
    assert [xlsx.column_letters(i) for i in (0, 25, 26, 51, 52, 701, 702)] == [
        "A", "Z", "AA", "AZ", "BA", "ZZ", "AAA"]
    wide = [[f"c{i}" for i in range(30)]]
    many = [[n, f"row {n}"] for n in range(xlsx.ROWS_PER_WRITE * 2 + 7)]
    _, got = read_back("wide", wide)
    assert got == wide
    _, got = read_back("many", many)
    assert got == many


def test_a_sheet_name_spreadsheets_refuse_is_cleaned():
    book, _ = read_back("check-ins: Q1/Q2 [draft]? and a name far too long", [["x"]])
    assert book.sheetnames == ["check-ins  Q1 Q2  draft   and a"]
    out = io.BytesIO()
    xlsx.write(out, "okrs", [["x"]])
    names = zipfile.ZipFile(io.BytesIO(out.getvalue())).namelist()
    assert "[Content_Types].xml" in names and "xl/worksheets/sheet1.xml" in names
