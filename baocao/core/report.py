"""What every report is: its type, and the completeness of what the agencies reported for a period."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ReportType(StrEnum):
    TTHC_RESULTS = "TTHC_RESULTS"
    SERVICE_INDEX = "SERVICE_INDEX"
    ONLINE_SERVICES = "ONLINE_SERVICES"
    ICT_RANKING = "ICT_RANKING"
    EGOV_MATURITY = "EGOV_MATURITY"


@dataclass(frozen=True)
class Completeness:
    expected: int
    reported: int
    missing: tuple[str, ...]
