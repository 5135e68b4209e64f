"""The ONLINE_SERVICES report suite: one good and one bad fixture."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd

from baocao.core.layouts.online_services import Kind
from baocao.expectations import online_services
from baocao.expectations.runner import Outcome, SuiteRunner
from baocao.transforms.online_services import assemble_online_services
from tests.transforms.test_online_services import COMMUNE, DEPARTMENT, OCTOBER, SILENT, UNLISTED, hand_rows


def _check(tmp_path: Path, report: pd.DataFrame) -> Outcome:
    return SuiteRunner(tmp_path / "gx").validate_frame(
        online_services.report_check_frame(report),
        suite_name=online_services.SUITE_NAME,
        expectations=online_services.report_suite(),
        key_column=online_services.ROW_LABEL,
        run_name="test",
    )


def _details(outcome: Outcome) -> dict[tuple[str, str], str]:
    """(row, rule) → the values compared."""
    return {(f.key, f.rule): f.detail for f in outcome.failures}


def test_suite_passes_the_assembled_report(tmp_path: Path) -> None:
    outcome = _check(tmp_path, assemble_online_services(hand_rows(), OCTOBER))
    assert outcome.success, outcome.failures
    assert outcome.evaluated == len(online_services.report_suite())


def test_suite_names_rule_row_and_values(tmp_path: Path) -> None:
    report = assemble_online_services(hand_rows(), OCTOBER)
    row = {agency: index for index, agency in enumerate(report["agency"]) if agency is not None}
    total = int(report.index[report["kind"] == Kind.TOTAL][0])
    report.loc[row[SILENT], "authority_count"] = 1  # 1 FULL + 1 PARTIAL under an authority of 1
    report.loc[row[COMMUNE], "dossiers_online"] = 3  # more online dossiers than dossiers
    report.loc[row[UNLISTED], "fee_dossiers"] = -1  # a negative count
    report.loc[row[DEPARTMENT], "online_dossier_rate"] = Decimal("62.49")  # 5 / 8 is 62.50
    report.loc[total, "dossiers_total"] = 13  # the agencies sum to 12
    outcome = _check(tmp_path, report)
    assert not outcome.success
    details = _details(outcome)
    central = "full_process_count + partial_count <= authority_count (central rule)"
    assert details[(SILENT, central)].endswith("authority_count=1, online_offered=2")
    assert details[(COMMUNE, "dossiers_online <= dossiers_total")].endswith("dossiers_total=2, dossiers_online=3")
    assert details[(UNLISTED, "fee_dossiers is a non-negative count.")].endswith("fee_dossiers=-1")
    rate_rule = next(rule for rule in outcome.failed_rules if rule.startswith("online_dossier_rate"))
    assert details[(DEPARTMENT, rate_rule)].endswith(
        "online_dossier_rate_stated='62.49', online_dossier_rate_recomputed='62.50'"
    )
    assert details[("report total", "dossiers_total of the report total = the sum of the agency rows.")].endswith(
        "dossiers_total=13, sum_of_dossiers_total=12.0"
    )
    # The total's stated rate was computed from 12 dossiers; recomputed from the stated 13 it no longer holds.
    assert details[("report total", rate_rule)].endswith(
        "online_dossier_rate_stated='58.33', online_dossier_rate_recomputed='53.85'"
    )
    assert outcome.failed_keys == {SILENT, COMMUNE, UNLISTED, DEPARTMENT, "report total"}
