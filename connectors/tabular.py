"""What the workbook and CSV readers share: their limits, their error, tolerant header matching, and
one `RuleFailure` per rejected row.

A rejected row, of a CSV file or a workbook, is one `RuleFailure`, never several: its rule is the
row's first problem (in column order, the duplicate check last) and its detail lists every problem
("; "-separated, each naming the column and the value), followed by "(also: <rule>, ...)" when the
row breaks other rules too; its key is the row's code when it has one. One failure per row keeps
`ReadResult.rejects` a list of rejected rows: callers count the rows read as records plus rejects,
and `FileLimits.max_rejected_rows` counts rows, not problems. Details quote only the columns the
reader keeps: the applicant's name, ID number and phone are dropped before a row is read.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from baocao.core.errors import FatalError, RuleFailure


class RowProblem(NamedTuple):
    """One problem of a CSV or workbook row: the rule it breaks and what is wrong (naming the column and the value)."""

    rule: str
    text: str


def row_failure(record: str, problems: Sequence[RowProblem], key: str | None = None) -> RuleFailure:
    """A rejected row's one failure: under its first problem's rule, with every problem in the detail."""
    rule = problems[0].rule
    detail = "; ".join(problem.text for problem in problems)
    others = [other for other in dict.fromkeys(problem.rule for problem in problems) if other != rule]
    if others:
        detail += f" (also: {', '.join(others)})"
    return RuleFailure(rule, record, detail, key)


class SpreadsheetError(FatalError):
    """A workbook or CSV file that cannot be read at all (too big, not a workbook, no header)."""


@dataclass(frozen=True, slots=True)
class FileLimits:
    max_bytes: int = 50 * 1024 * 1024
    # An xlsx file is a zip archive: what its members really inflate to is bounded too (a small file
    # may unpack hugely, and a member's header may lie about its size). A province's self-assessment
    # workbook unpacks to a few MB.
    max_unpacked_bytes: int = 100 * 1024 * 1024
    max_members: int = 1_000
    # The reader builds each sheet as a dense grid from A1 to its last cell (one cell at XFD1048576
    # is 17 billion cells, and the allocation failure aborts the process), so the sheets' extent is
    # bounded before any is built: 200,000 cells (25,000 units × 8 columns) read in ~60 MB on top of
    # the imports; a province's workbook has fewer than 10,000.
    max_cells: int = 200_000
    header_search_rows: int = 30
    # CSV: a dossier line is a few hundred characters and a commune's export some 100,000 lines. The
    # bounds keep a hostile file's cost near its size: one line of 40 million ';' was a list of 40
    # million fields, and 20 million short bad lines were 20 million rejects (6 GB).
    max_csv_lines: int = 2_000_000
    max_line_chars: int = 65_536
    max_rejected_rows: int = 10_000


def header_key(value: object) -> str:
    """A header or sheet name compared tolerantly: NFC, case-folded, a trailing "(...)" dropped,
    punctuation and runs of spaces or line breaks made one space."""
    text = unicodedata.normalize("NFC", str(value or "")).casefold()
    text = re.sub(r"\([^)]*\)\s*$", "", text)
    return re.sub(r"[\W_]+", " ", text).strip()
