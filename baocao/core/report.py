"""What every report is: its type, the completeness of what the agencies reported for a period, and the
assembled report itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from baocao.core.periods import Period


class ReportType(StrEnum):
    TTHC_RESULTS = "TTHC_RESULTS"
    SERVICE_INDEX = "SERVICE_INDEX"
    ONLINE_SERVICES = "ONLINE_SERVICES"
    ICT_RANKING = "ICT_RANKING"
    EGOV_MATURITY = "EGOV_MATURITY"


@dataclass(frozen=True)
class Completeness:
    """Agencies expected to report in the period, how many did, and the codes of those that did not."""

    expected: int
    reported: int
    missing: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """A report assembled for a period: its tables of lines (one, named `report`, for most reports) and
    who reported. What aggregate stores, the report suite checks, render sends and export writes."""

    report_type: ReportType
    period: Period
    tables: Mapping[str, pd.DataFrame]
    completeness: Completeness
