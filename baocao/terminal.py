"""What the command line shows: the two consoles (messages on stderr, results on stdout), the one-line
error with its exit code, and a report's figures. Shared by `baocao.cli` and the development commands."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from baocao.core.bounds import printable
from baocao.core.errors import BaocaoError, DataQualityError, RetriableError

console = Console(stderr=True)
out = Console()


def fail(error: BaocaoError) -> None:
    kind = (
        "retriable (try again later)"
        if isinstance(error, RetriableError)
        else "data quality (fix the data)"
        if isinstance(error, DataQualityError)
        else "fatal (fix and rerun)"
    )
    # The kind and the message are text, not markup: rich would eat "[…]" as a tag.
    # Control characters a source sent (an escape, a newline, a right-to-left override) are shown escaped:
    # the error stays one line, and the terminal obeys none of them; rich would wrap a long line at the
    # console's width (80 when stderr is a file).
    console.print(f"[bold red]error[/] {escape(printable(f'[{kind}]: {error}', 20_000))}", soft_wrap=True)
    sys.exit(75 if isinstance(error, RetriableError) else 65 if isinstance(error, DataQualityError) else 1)


def print_total(total: dict[str, Any]) -> None:
    table = Table(title="Report total")
    table.add_column("column")
    table.add_column("value", justify="right")
    for name, value in total.items():
        if name != "completeness":
            table.add_row(name, "—" if value is None else f"{value:,}" if isinstance(value, int) else str(value))
    completeness = total["completeness"]
    table.add_row(
        "agencies expected / reported / missing",
        f"{completeness['expected']} / {completeness['reported']} / {completeness['missing']}",
    )
    out.print(table)
