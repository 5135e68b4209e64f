"""The SERVICE_INDEX report suite: one good and one bad fixture."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd

from baocao.expectations import service_index
from baocao.expectations.runner import Outcome, SuiteRunner
from baocao.transforms.service_index import assemble_service_index
from tests.transforms.test_service_index import DEPARTMENT, LEGACY, PROVINCE, Q3, RULESET, hand_inputs


def _check(tmp_path: Path, report: pd.DataFrame) -> Outcome:
    return SuiteRunner(tmp_path / "gx").validate_frame(
        service_index.report_check_frame(report),
        suite_name=service_index.SUITE_NAME,
        expectations=service_index.report_suite(),
        key_column=service_index.ROW_LABEL,
        run_name="test",
    )


def _details(outcome: Outcome) -> dict[tuple[str, str], str]:
    """(line, rule) → the values compared."""
    return {(f.key, f.rule): f.detail for f in outcome.failures}


def _line(report: pd.DataFrame, agency: str, group: str | None, metric: str | None = None) -> int:
    chosen = (report["agency"] == agency) & (report["group"].map(lambda g: g == group))
    chosen &= report["metric"].map(lambda m: m == metric)
    index = report.index[chosen]
    assert len(index) == 1
    return int(index[0])


def test_suite_passes_the_assembled_report(tmp_path: Path) -> None:
    outcome = _check(tmp_path, assemble_service_index(hand_inputs(), Q3, PROVINCE, RULESET))
    assert outcome.success, outcome.failures
    assert outcome.evaluated == len(service_index.report_suite())


def test_suite_names_rule_line_and_values(tmp_path: Path) -> None:
    report = assemble_service_index(hand_inputs(), Q3, PROVINCE, RULESET)
    # A score that does not follow from its counts (20 × 5/6 is 16.667) and a group no longer its sum.
    report.loc[_line(report, DEPARTMENT, "PROGRESS", "RESOLVED_ON_TIME"), "score"] = Decimal("16.666")
    # More online dossiers than dossiers.
    report.loc[_line(report, LEGACY, "ONLINE_SERVICE", "ONLINE_DOSSIERS"), "numerator"] = 3
    # An invented figure for a metric whose source is not connected.
    portal = _line(report, PROVINCE, "TRANSPARENCY", "NATIONAL_PORTAL_SYNC")
    report.loc[portal, "numerator"], report.loc[portal, "denominator"] = 5, 10
    # The province's denominator is not its agencies' sum (6 + 2).
    report.loc[_line(report, PROVINCE, "DIGITIZATION", "PAPERS_DIGITIZED"), "denominator"] = 9
    # A group max that is not the sum of its metrics' maxima, and a total that is not the sum of the groups.
    report.loc[_line(report, LEGACY, "SATISFACTION"), "max"] = Decimal("17.000")
    report.loc[_line(report, PROVINCE, None), "score"] = Decimal("50.000")
    outcome = _check(tmp_path, report)
    assert not outcome.success
    details = _details(outcome)
    metric_rule = next(rule for rule in outcome.failed_rules if rule.startswith("metric score = "))
    progress = f"{DEPARTMENT} PROGRESS"
    assert details[(f"{progress}/RESOLVED_ON_TIME", metric_rule)].endswith(
        "metric_score='16.666', metric_score_recomputed='16.667'"
    )
    assert details[(progress, "group score = sum of its metrics' scores (central rule).")].endswith(
        "group_score='16.667', group_score_recomputed='16.666'"
    )
    assert details[
        (f"{LEGACY} ONLINE_SERVICE/ONLINE_DOSSIERS", "numerator <= denominator: a metric's rate is at most 100 %.")
    ].endswith("denominator_count=2.0, numerator_count=3.0")
    # The province's numerator is no longer its agencies' sum either (3 + 3).
    assert details[
        (
            f"province {PROVINCE} ONLINE_SERVICE/ONLINE_DOSSIERS",
            "the province's numerator = the sum of its agencies' numerators.",
        )
    ].endswith("province_numerator='4', province_numerator_recomputed='6'")
    invented = next(rule for rule in outcome.failed_rules if rule.startswith("A metric either has"))
    assert details[(f"province {PROVINCE} TRANSPARENCY/NATIONAL_PORTAL_SYNC", invented)].endswith(
        "connection_state='connected=False, numerator=5, denominator=10'"
    )
    assert details[
        (
            f"province {PROVINCE} DIGITIZATION/PAPERS_DIGITIZED",
            "the province's denominator = the sum of its agencies' denominators.",
        )
    ].endswith("province_denominator='9', province_denominator_recomputed='8'")
    assert details[(f"{LEGACY} SATISFACTION", "group max = sum of its metrics' maxima.")].endswith(
        "group_max='17.000', group_max_recomputed='18.000'"
    )
    assert details[(f"province {PROVINCE} total", "total = sum of the groups' scores (central rule).")].endswith(
        "total='50.000', total_recomputed='49.036'"
    )
    assert outcome.failed_keys == {
        f"{progress}/RESOLVED_ON_TIME",
        progress,
        f"{LEGACY} ONLINE_SERVICE/ONLINE_DOSSIERS",
        f"{LEGACY} SATISFACTION",
        f"{LEGACY} total",  # its max is no longer the sum of the groups' maxima
        f"province {PROVINCE} ONLINE_SERVICE/ONLINE_DOSSIERS",
        f"province {PROVINCE} TRANSPARENCY/NATIONAL_PORTAL_SYNC",
        f"province {PROVINCE} DIGITIZATION/PAPERS_DIGITIZED",
        f"province {PROVINCE} total",
    }


def test_a_report_without_its_province_or_with_a_group_missing_fails(tmp_path: Path) -> None:
    report = assemble_service_index(hand_inputs(), Q3, PROVINCE, RULESET)
    without_province = report[report["kind"] != "PROVINCE"].reset_index(drop=True)
    without_progress = without_province[
        ~((without_province["agency"] == LEGACY) & (without_province["group"] == "PROGRESS"))
    ].reset_index(drop=True)
    outcome = _check(tmp_path, without_progress)
    assert not outcome.success
    assert set(outcome.failed_rules) >= {
        "The report has the province's index exactly once (DOMAIN.md: per agency and the province).",
        "Every agency has the six groups (the schema requires exactly six).",
    }
    details = _details(outcome)
    assert details[(f"{LEGACY} total", "Every agency has the six groups (the schema requires exactly six).")].endswith(
        "distinct_groups=5.0"
    )
