"""SERVICE_INDEX (Decision 766): one line per metric, group and total of each agency and the province."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# The central's IndexGroup enumeration (submission-v1.xsd): a ruleset has each exactly once.
GROUP_IDS: Final = ("TRANSPARENCY", "PROGRESS", "ONLINE_SERVICE", "ONLINE_PAYMENT", "SATISFACTION", "DIGITIZATION")


class ZeroDenominator(StrEnum):
    ZERO = "zero"  # DOMAIN.md: a zero denominator gives a rate of 0 ...
    FULL = "full"  # ... except the petition metrics (no petitions: full points)


class Kind:
    AGENCY = "AGENCY"
    PROVINCE = "PROVINCE"


class Line:
    METRIC = "METRIC"
    GROUP = "GROUP"
    TOTAL = "TOTAL"


# Input columns (besides the three per connected measure, `measure_columns`).
AGENCY = "agency"


# Dossiers received or finished in the period: an agency with none "reported nothing" (completeness).
DOSSIERS_IN_PERIOD = "dossiers_in_period"


NUMERATOR, DENOMINATOR, UNKNOWN = "numerator", "denominator", "unknown"


# Report columns: one line per metric, group and total of each entity (an agency or the province).
KIND, LINE, GROUP, METRIC = "kind", "line", "group", "metric"


SCORE, MAX, TARGET, ZERO_RULE, CONNECTED, RULESET = "score", "max", "target", "zero_denominator", "connected", "ruleset"


REPORT_COLUMNS = (
    KIND,
    AGENCY,
    LINE,
    GROUP,
    METRIC,
    NUMERATOR,
    DENOMINATOR,
    SCORE,
    MAX,
    TARGET,
    ZERO_RULE,
    CONNECTED,
    RULESET,
)
