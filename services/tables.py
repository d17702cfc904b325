"""Lists staff open in a spreadsheet: one writer for ``.xlsx`` (openpyxl) and ``.csv``.

The CSV is UTF-8 with a BOM, so Excel on a Chinese Windows shows the characters right.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["write_table"]


def write_table(
    path: str | Path,
    header: Sequence,
    rows: Iterable[Sequence],
    *,
    sheet_title: str,
    title: str | None = None,
) -> None:
    """Write ``header`` and ``rows`` (after a one-cell ``title`` line, if given) to ``path``,
    as XLSX when its name ends in ``.xlsx``, else as CSV."""
    path = Path(path)
    lines = ([[title]] if title else []) + [list(header)] + [list(row) for row in rows]
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = sheet_title[:31]  # Excel's limit for a sheet name
        for line in lines:
            sheet.append(line)
        book.save(path)
        return
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(lines)
