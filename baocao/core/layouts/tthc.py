"""TTHC_RESULTS (form II.06a): the counts of each agency × field row and the kinds of line."""

from __future__ import annotations

COUNT_COLUMNS = (
    "received_total",
    "received_online",
    "received_direct",
    "carried_over",
    "resolved_total",
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "in_progress_total",
    "in_progress_within",
    "in_progress_overdue",
)


class Kind:
    ROW = "ROW"
    SECTION = "SECTION"
    TOTAL = "TOTAL"
