"""CSV files that people open in spreadsheets. Every CSV export (the console's users export, bulk results and audit
export; the CLI's `users export` and results files) writes its rows through `csv_writer`.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or with a tab or carriage return before one) as a
formula: a display name like `=HYPERLINK(...)` set in a customer's tenant would run on the staff member's machine.
Such a cell gets a leading apostrophe, which spreadsheets show as "this is text". A cell that is wholly a number
(`+3222...`, `-5`, `1.5`) holds no formula and is left as it is, so phone numbers stay usable.
"""

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet will read it safely (strings only; numbers and booleans are not formulas)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """`csv.writer` whose cells are neutralised by `safe_cell`."""

    def __init__(self, out: _Writable) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: _Writable) -> SafeWriter:
    return SafeWriter(out)
