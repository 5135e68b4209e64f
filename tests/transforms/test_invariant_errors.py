"""Every invariant of the transforms (and of the core's readers) fails with the project's error taxonomy.

A deterministic failure is a FatalError (the Airflow adapter fails the task without retrying it, the CLI
prints one line and exits 1) or a DataQualityError naming the record and the rule (exit 65); never a bare
ValueError, TypeError or KeyError, which Airflow would retry three times and the CLI print as a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from baocao.core.errors import (
    ConfigurationError,
    ContractError,
    DataQualityError,
    FatalError,
    RetriableError,
)
from baocao.core.layouts.tthc import COUNT_COLUMNS as TTHC_COUNTS
from baocao.core.periods import parse_period
from baocao.core.vietnamese import UndecodableTextError, VietnameseFormatError, decode_text, parse_date, parse_number
from baocao.transforms import export
from baocao.transforms.canonical import canonical_record
from baocao.transforms.egov_maturity import assemble_egov_maturity
from baocao.transforms.ict_ranking import ScoreInputError, assemble_ict_ranking, score_value
from baocao.transforms.online_services import assemble_online_services, online_json_body
from baocao.transforms.service_index import RulesetError, assemble_service_index, load_ruleset, ruleset_for
from baocao.transforms.tthc import UNKNOWN_AGENCY_RULE, assemble_tthc_report
from tests.transforms import test_online_services as online
from tests.transforms import test_service_index as index
from tests.transforms.test_egov_maturity import gia_lai_2019
from tests.transforms.test_ict_ranking import LAM_DONG_2019, YEAR_2019
from tests.transforms.test_tthc_aggregation import DEPARTMENT, REGISTRY

UNKNOWN = "000.00.77.H99"  # in no registry


def _tthc_rows(*agencies: str) -> pd.DataFrame:
    return pd.DataFrame(
        [(agency, "LV-TUPHAP", "Tư pháp", *([1] * len(TTHC_COUNTS))) for agency in agencies],
        columns=["agency", "field", "field_name", *TTHC_COUNTS],
    )


def _two_totals() -> pd.DataFrame:
    report = assemble_online_services(online.hand_rows(), online.OCTOBER)
    return pd.concat([report, report.tail(1)], ignore_index=True)


def _with(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    changed = frame.astype(object)
    changed.loc[row, column] = value
    return changed


# (what is broken, the call, the error expected, what its message must name)
INVARIANTS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "TTHC_RESULTS: an agency not in the registry",
        lambda: assemble_tthc_report(_tthc_rows(DEPARTMENT, UNKNOWN), REGISTRY, parse_period("2026-11")),
        DataQualityError,
        rf"TTHC_RESULTS 2026-11: .*rule '{UNKNOWN_AGENCY_RULE}' failed on {UNKNOWN}",
    ),
    (
        "ONLINE_SERVICES: an agency listed twice",
        lambda: assemble_online_services(pd.concat([online.hand_rows(), online.hand_rows().iloc[[0]]]), online.OCTOBER),
        ContractError,
        f"ONLINE_SERVICES 2026-10: agencies listed twice: {online.DEPARTMENT}",
    ),
    (
        "ONLINE_SERVICES: a grouped column missing",
        lambda: assemble_online_services(online.hand_rows().drop(columns=["agency"]), online.OCTOBER),
        ContractError,
        "ONLINE_SERVICES 2026-10: the grouped rows lack column",
    ),
    (
        "ONLINE_SERVICES: a report with two TOTAL lines",
        lambda: online_json_body(_two_totals()),
        ContractError,
        "ONLINE_SERVICES report has 2 TOTAL rows",
    ),
    (
        "SERVICE_INDEX: an agency listed twice",
        lambda: assemble_service_index(
            pd.concat([index.hand_inputs(), index.hand_inputs().iloc[[0]]]), index.Q3, index.PROVINCE, index.RULESET
        ),
        ContractError,
        f"SERVICE_INDEX 2026-Q3: agencies listed twice: {index.DEPARTMENT}",
    ),
    (
        "SERVICE_INDEX: an agency with the province's code",
        lambda: assemble_service_index(index.hand_inputs(), index.Q3, index.DEPARTMENT, index.RULESET),
        ConfigurationError,
        f"agency {index.DEPARTMENT} has the province's own code",
    ),
    (
        "SERVICE_INDEX: a ruleset file that is not YAML",
        lambda: load_ruleset("groups: [", "766-v9.yaml"),
        RulesetError,
        "766-v9.yaml: not valid YAML",
    ),
    (
        "SERVICE_INDEX: no ruleset in effect",
        lambda: ruleset_for(parse_period("2022-Q1", "CALENDAR")),
        RulesetError,
        "no ruleset in effect on 2022-03-31",
    ),
    (
        "ICT_RANKING: an unreadable score",
        lambda: assemble_ict_ranking(_with(LAM_DONG_2019, 3, "policy", "n/a"), YEAR_2019),
        ScoreInputError,
        r"000\.02\.00\.H99, policy: score 'n/a' is not a number",
    ),
    (
        "ICT_RANKING: a score out of range",
        lambda: score_value("1e999999", "ICT_RANKING 2019: agency X, policy"),
        ScoreInputError,
        "agency X, policy: score '1e999999' is out of range",
    ),
    (
        "EGOV_MATURITY: an unknown maturity level",
        lambda: assemble_egov_maturity(_with(gia_lai_2019(), 0, "level", "V"), YEAR_2019),
        ScoreInputError,
        r"agency 000\.01\.00\.H99: unknown maturity level 'V'",
    ),
    (
        "canonical mapping: a personal field mapped into a column",
        lambda: canonical_record({"applicant": {"name": "x"}}, {"field_name": "applicant.name"}, {}),
        ConfigurationError,
        "sends personal field 'applicant.name' into column 'field_name'",
    ),
    (
        "export: an unknown file format",
        lambda: export.write_tables([], "out.ods", "ods"),
        ConfigurationError,
        "export: unknown format 'ods'",
    ),
    (
        "reader: a number in another locale's format",
        lambda: parse_number("1,234.5"),
        VietnameseFormatError,
        "not a number in Vietnamese format: '1,234.5'",
    ),
    (
        "reader: a day that does not exist",
        lambda: parse_date("31/02/2026"),
        VietnameseFormatError,
        "not a valid date: '31/02/2026'",
    ),
    (
        "reader: bytes in no encoding it can tell",
        lambda: decode_text(bytes(range(0x80, 0x100)) * 4),
        UndecodableTextError,
        "invalid UTF-8",
    ),
]


@pytest.mark.parametrize(
    ("call", "expected", "message"),
    [pytest.param(call, expected, message, id=broken) for broken, call, expected, message in INVARIANTS],
)
def test_an_invariant_fails_with_the_taxonomy_and_says_what_broke(
    call: Callable[[], Any], expected: type[Exception], message: str
) -> None:
    with pytest.raises(expected, match=message) as caught:
        call()
    assert type(caught.value) is expected
    # What happens next: stop and fix (no retry), or hold back the data; never "try again later".
    assert isinstance(caught.value, FatalError | DataQualityError)
    assert not isinstance(caught.value, RetriableError)


def test_the_unknown_agency_failure_names_each_agency_and_the_rule() -> None:
    with pytest.raises(DataQualityError) as caught:
        assemble_tthc_report(_tthc_rows(DEPARTMENT, UNKNOWN, "000.00.78.H99"), REGISTRY, parse_period("2026-11"))
    assert caught.value.source == "TTHC_RESULTS 2026-11"
    assert [(f.rule, f.record) for f in caught.value.failures] == [
        (UNKNOWN_AGENCY_RULE, UNKNOWN),
        (UNKNOWN_AGENCY_RULE, "000.00.78.H99"),
    ]


@pytest.mark.parametrize("error", [ContractError, RulesetError, ScoreInputError])
def test_contract_errors_are_no_longer_value_errors(error: type[Exception]) -> None:
    """Nothing catches them as ValueError any more: a reader's `except ValueError` must not swallow them."""
    assert issubclass(error, FatalError) and not issubclass(error, ValueError)


def test_the_readers_errors_stay_value_errors_for_the_readers_that_catch_them() -> None:
    """The spreadsheet reader turns a ValueError from a cell into a rule failure naming the row."""
    assert issubclass(VietnameseFormatError, ValueError) and issubclass(VietnameseFormatError, FatalError)
    assert issubclass(UndecodableTextError, VietnameseFormatError)
