"""The ICT_RANKING and EGOV_MATURITY report suites, each with one good and one bad fixture."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd

from baocao.expectations import egov_maturity, ict_ranking
from baocao.expectations.runner import Outcome, SuiteRunner
from baocao.transforms.egov_maturity import assemble_egov_maturity
from baocao.transforms.ict_ranking import assemble_ict_ranking
from tests.transforms.test_egov_maturity import gia_lai_2019
from tests.transforms.test_ict_ranking import LAM_DONG_2019, YEAR_2019

D = Decimal


def _details(outcome: Outcome) -> dict[tuple[str, str], str]:
    """(row, first words of the rule) → the values compared."""
    return {(f.key, f.rule.split(" ")[0]): f.detail for f in outcome.failures}


# ---------------------------------------------------------------- ICT_RANKING


def _check_ict(tmp_path: Path, report: pd.DataFrame) -> Outcome:
    return SuiteRunner(tmp_path / "gx").validate_frame(
        ict_ranking.report_check_frame(report),
        suite_name=ict_ranking.SUITE_NAME,
        expectations=ict_ranking.report_suite(),
        key_column=ict_ranking.ROW_LABEL,
        run_name="test",
    )


def test_ict_suite_passes_the_assembled_ranking(tmp_path: Path) -> None:
    outcome = _check_ict(tmp_path, assemble_ict_ranking(LAM_DONG_2019, YEAR_2019))
    assert outcome.success, outcome.failures
    assert outcome.evaluated == len(ict_ranking.report_suite())


def test_ict_suite_names_rule_row_and_values(tmp_path: Path) -> None:
    report = assemble_ict_ranking(LAM_DONG_2019, YEAR_2019)
    by_code = {code: index for index, code in enumerate(report["code"])}
    report.loc[by_code["000.00.11.H99"], "total"] = D("464.240")  # Sở Tài chính: not the sum of its components
    report.loc[by_code["000.00.12.H99"], "rank"] = 4  # Sở GD&ĐT: third by total, not fourth
    report.loc[by_code["000.01.00.H99"], "policy"] = D("-55.000")  # TP. Bảo Lộc: a negative score
    duplicate = report.loc[[by_code["000.02.00.H99"]]]  # TP. Đà Lạt listed twice
    outcome = _check_ict(tmp_path, pd.concat([report, duplicate], ignore_index=True))
    assert not outcome.success
    details = _details(outcome)
    assert details[("DEPARTMENT/000.00.11.H99", "total")].endswith("total=464.240, total_recomputed=464.230")
    assert details[("DEPARTMENT/000.00.12.H99", "rank")].endswith("rank=4, rank_recomputed=3")
    assert details[("DISTRICT/000.01.00.H99", "policy")].endswith("policy=-55.000")
    # Its total no longer adds up either: the rule is checked on every row, not only on suspicious ones.
    assert details[("DISTRICT/000.01.00.H99", "total")].endswith("total=430.500, total_recomputed=320.500")
    assert details[("DISTRICT/000.02.00.H99", "An")].endswith("code_count_in_block=2")
    assert outcome.failed_keys == {
        "DEPARTMENT/000.00.11.H99",
        "DEPARTMENT/000.00.12.H99",
        "DISTRICT/000.01.00.H99",
        "DISTRICT/000.02.00.H99",
    }


def test_ict_suite_ranks_on_the_totals_as_stated(tmp_path: Path) -> None:
    report = assemble_ict_ranking(LAM_DONG_2019, YEAR_2019)
    report.loc[2, ["applications", "total"]] = [D("280"), D("465.000")]  # Sở GD&ĐT now ties with Sở TTTT
    outcome = _check_ict(tmp_path, report)
    assert [(f.key, f.detail.split("] ")[1]) for f in outcome.failures] == [
        ("DEPARTMENT/000.00.12.H99", "rank=3, rank_recomputed=1")
    ]


# ---------------------------------------------------------------- EGOV_MATURITY


def _check_egov(tmp_path: Path, agencies: pd.DataFrame, summary: pd.DataFrame) -> Outcome:
    return SuiteRunner(tmp_path / "gx").validate_frame(
        egov_maturity.report_check_frame(agencies, summary),
        suite_name=egov_maturity.SUITE_NAME,
        expectations=egov_maturity.report_suite(),
        key_column=egov_maturity.ROW_LABEL,
        run_name="test",
    )


def test_egov_suite_passes_the_assembled_report(tmp_path: Path) -> None:
    outcome = _check_egov(tmp_path, *assemble_egov_maturity(gia_lai_2019(), YEAR_2019))
    assert outcome.success, outcome.failures
    assert outcome.evaluated == len(egov_maturity.report_suite())


def test_egov_suite_names_rule_row_and_values(tmp_path: Path) -> None:
    agencies, summary = assemble_egov_maturity(gia_lai_2019(), YEAR_2019)
    summary = summary.copy()
    line = {(b, lv): i for i, (b, lv) in enumerate(zip(summary["block"], summary["level"], strict=True))}
    summary.loc[line[("DEPARTMENT", "II")], "count"] = 9  # 8 departments are listed at level II
    summary.loc[line[("DISTRICT", "IV")], "share"] = D("5.89")  # 1 / 17 × 100 = 5.88
    agencies = agencies.copy()
    agencies.loc[0, "readiness_score"] = D("-41.500")  # the first department
    outcome = _check_egov(tmp_path, agencies, summary)
    assert not outcome.success
    details = _details(outcome)
    assert details[("DEPARTMENT summary, level II", "A")].endswith("count=9, count_listed=8")
    assert details[("DISTRICT summary, level IV", "share")].endswith("share=5.89, share_recomputed=5.88")
    assert details[("DEPARTMENT/000.00.01.H99", "readiness_score")].endswith("readiness_score=-41.500")
    assert outcome.failed_keys == {
        "DEPARTMENT summary, level II",
        "DISTRICT summary, level IV",
        "DEPARTMENT/000.00.01.H99",
    }


def test_egov_suite_catches_a_duplicate_agency_and_a_missing_summary_level(tmp_path: Path) -> None:
    agencies, summary = assemble_egov_maturity(gia_lai_2019(), YEAR_2019)
    # A district listed twice, and the district block's summary without its UNRANKED line.
    agencies = pd.concat([agencies, agencies[agencies["code"] == "000.17.00.H99"]], ignore_index=True)
    summary = summary[~((summary["block"] == "DISTRICT") & (summary["level"] == "UNRANKED"))]
    outcome = _check_egov(tmp_path, agencies, summary)
    rules = {(f.key, f.rule) for f in outcome.failures}
    assert ("DISTRICT/000.17.00.H99", egov_maturity.report_suite()[3].description) in rules
    levels_rule = egov_maturity.report_suite()[4].description
    assert {key for key, rule in rules if rule == levels_rule} == {
        *(f"DISTRICT/000.{n:02d}.00.H99" for n in range(1, 18)),
        *(f"DISTRICT summary, level {level}" for level in ("I", "II", "III", "IV")),
    }
    # The other district summary lines no longer match 18 listed agencies (1/18 = 5.56 %).
    assert _details(outcome)[("DISTRICT summary, level IV", "share")].endswith("share=5.88, share_recomputed=5.56")
    assert any(f.detail.endswith("levels_summarised_in_block=4") for f in outcome.failures)
