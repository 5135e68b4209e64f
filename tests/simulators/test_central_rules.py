"""Business rules of the central sandbox (RULE_FAILED), over HTTP, plus period windows and rounding."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import requests

from baocao.simulators.central import RunningSandbox, start_in_thread
from baocao.simulators.central.periods import PeriodError, period_window
from baocao.simulators.central.rules import percent, score_sum
from tests.simulators.central_support import (
    JSON,
    XML,
    egov_document,
    error_codes,
    error_paths,
    example,
    ict_document,
    online_document,
    post,
    service_index_document,
    settings_for,
    to_bytes,
    tthc_document,
    with_changes,
)

_keys = itertools.count()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    database = tmp_path_factory.mktemp("central") / "central.sqlite3"
    with start_in_thread(settings_for(f"sqlite:///{database}")) as running:
        yield running


def _submit(sandbox: RunningSandbox, document: dict[str, Any]) -> requests.Response:
    # Every call its own key; documents that pass are accepted, so each good one uses its own period.
    return post(sandbox.base_url, to_bytes(document), f"rules-{next(_keys)}", JSON)


def _rule_failures(sandbox: RunningSandbox, document: dict[str, Any]) -> list[tuple[str, str]]:
    response = _submit(sandbox, document)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "RULE_FAILED"
    return list(zip(error_codes(response), error_paths(response), strict=True))


ROW = ("body", "tthc_results", "sections", 0, "rows", 0)
SECTION_TOTAL = ("body", "tthc_results", "sections", 0, "total")
REPORT_TOTAL = ("body", "tthc_results", "total")


# ---------------------------------------------------------------- the valid documents pass


@pytest.mark.parametrize(
    "build", [ict_document, online_document, egov_document, service_index_document], ids=lambda f: f.__name__
)
def test_valid_documents_of_every_report_type_are_accepted(sandbox: RunningSandbox, build: Any) -> None:
    response = _submit(sandbox, build())
    assert response.status_code == 201, response.text


# ---------------------------------------------------------------- TTHC_RESULTS


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("received_online", 71, "TTHC_RECEIVED_TOTAL"),
        ("resolved_late", 3, "TTHC_RESOLVED_TOTAL"),
        ("in_progress_overdue", 3, "TTHC_IN_PROGRESS_TOTAL"),
    ],
)
def test_each_tthc_identity_is_checked_on_the_row(sandbox: RunningSandbox, column: str, value: int, code: str) -> None:
    failures = _rule_failures(sandbox, with_changes(tthc_document(), ((*ROW, column), value)))
    left = {"TTHC_RECEIVED_TOTAL": "received_total", "TTHC_RESOLVED_TOTAL": "resolved_total"}.get(
        code, "in_progress_total"
    )
    assert (code, f"/body/tthc_results/sections/0/rows/0/{left}") in failures
    # The row no longer adds up to the section total either.
    assert ("TTHC_SECTION_TOTAL", "/body/tthc_results/sections/0/total") in failures


def test_received_must_equal_resolved_plus_in_progress(sandbox: RunningSandbox) -> None:
    # 121 received (71 online) but only 100 resolved + 20 in progress.
    document = with_changes(tthc_document(), ((*ROW, "received_online"), 71), ((*ROW, "received_total"), 121))
    failures = _rule_failures(sandbox, document)
    assert ("TTHC_BALANCE", "/body/tthc_results/sections/0/rows/0/received_total") in failures
    assert ("TTHC_RECEIVED_TOTAL", "/body/tthc_results/sections/0/rows/0/received_total") not in failures


def test_identities_hold_on_section_and_report_totals_too(sandbox: RunningSandbox) -> None:
    document = with_changes(tthc_document(), ((*REPORT_TOTAL, "in_progress_within"), 19))
    failures = _rule_failures(sandbox, document)
    assert failures == [
        ("TTHC_IN_PROGRESS_TOTAL", "/body/tthc_results/total/in_progress_total"),
        ("TTHC_REPORT_TOTAL", "/body/tthc_results/total"),
    ]


def test_section_total_must_be_the_sum_of_its_rows(sandbox: RunningSandbox) -> None:
    # The row and the section total change together consistently... except the total's carried_over.
    document = with_changes(
        tthc_document(),
        ((*SECTION_TOTAL, "carried_over"), 11),
        ((*SECTION_TOTAL, "received_direct"), 39),
    )
    assert _rule_failures(sandbox, document) == [
        ("TTHC_SECTION_TOTAL", "/body/tthc_results/sections/0/total"),
        ("TTHC_REPORT_TOTAL", "/body/tthc_results/total"),  # the report total sums section totals
    ]


def test_report_total_must_be_the_sum_of_the_sections(sandbox: RunningSandbox) -> None:
    document = with_changes(
        tthc_document(),
        ((*REPORT_TOTAL, "received_online"), 81),
        ((*REPORT_TOTAL, "received_direct"), 59),
    )
    assert _rule_failures(sandbox, document) == [("TTHC_REPORT_TOTAL", "/body/tthc_results/total")]


def test_rule_paths_name_the_row_in_xml_too(sandbox: RunningSandbox) -> None:
    body = example("tthc-results.xml").replace(b'onTimeRate="98.46"', b'onTimeRate="98.45"')
    response = post(sandbox.base_url, body, "xml-rate", XML)
    assert response.status_code == 422 and response.json()["error"] == "RULE_FAILED"
    assert list(zip(error_codes(response), error_paths(response), strict=True)) == [
        ("RATE_MISMATCH", "/Submission/Body/TthcResults/Total/@onTimeRate")
    ]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (((*ROW, "on_time_rate"), 97.99), "RATE_MISMATCH"),
        (((*ROW, "on_time_rate"), 98.001), "RATE_MISMATCH"),  # more precision than 2 decimals is not the rate
        (((*ROW, "on_time_rate"), ...), "RATE_MISSING"),
    ],
)
def test_on_time_rate_is_recomputed_from_the_counts(
    sandbox: RunningSandbox, change: tuple[tuple[str | int, ...], Any], code: str
) -> None:
    failures = _rule_failures(sandbox, with_changes(tthc_document(), change))
    assert failures == [(code, "/body/tthc_results/sections/0/rows/0/on_time_rate")]


def test_on_time_rate_is_absent_when_nothing_was_resolved(sandbox: RunningSandbox) -> None:
    section = ("body", "tthc_results", "sections", 1)
    nothing_resolved = {
        "resolved_total": 0, "resolved_early": 0, "resolved_on_time": 0, "resolved_late": 0,
        "in_progress_total": 30, "in_progress_within": 30, "on_time_rate": 0,
    }  # fmt: skip
    changes: list[tuple[tuple[str | int, ...], Any]] = [
        ((*section, "rows", 0, name), value) for name, value in nothing_resolved.items()
    ]
    changes += [((*section, "total", name), value) for name, value in nothing_resolved.items()]
    report_total = {
        "resolved_total": 100, "resolved_on_time": 38, "in_progress_total": 50, "in_progress_within": 48,
        "on_time_rate": 98,
    }  # fmt: skip
    changes += [((*REPORT_TOTAL, name), value) for name, value in report_total.items()]
    document = with_changes(tthc_document(), *changes)
    assert _rule_failures(sandbox, document) == [
        ("RATE_NOT_ALLOWED", "/body/tthc_results/sections/1/rows/0/on_time_rate"),
        ("RATE_NOT_ALLOWED", "/body/tthc_results/sections/1/total/on_time_rate"),
    ]
    without_rates = with_changes(
        document, ((*section, "rows", 0, "on_time_rate"), ...), ((*section, "total", "on_time_rate"), ...)
    )
    assert _submit(sandbox, with_changes(without_rates, (("header", "period", "id"), "2026-10"),
                                         (("header", "period", "start"), "2026-09-15"),
                                         (("header", "period", "end"), "2026-10-14"))).status_code == 201  # fmt: skip


# ---------------------------------------------------------------- header rules


def test_period_window_must_match_type_id_and_regime(sandbox: RunningSandbox) -> None:
    calendar_month = with_changes(tthc_document(), (("header", "period", "start"), "2026-11-01"),
                                  (("header", "period", "end"), "2026-11-30"))  # fmt: skip
    assert _rule_failures(sandbox, calendar_month) == [
        ("PERIOD_WINDOW", "/header/period/start"),
        ("PERIOD_WINDOW", "/header/period/end"),
    ]
    wrong_type = with_changes(tthc_document(), (("header", "period", "type"), "QUARTER"))
    assert _rule_failures(sandbox, wrong_type) == [("PERIOD_ID", "/header/period/id")]


def test_report_type_must_match_the_body(sandbox: RunningSandbox) -> None:
    document = with_changes(tthc_document(), (("header", "report_type"), "ONLINE_SERVICES"))
    assert ("REPORT_TYPE_MISMATCH", "/header/report_type") in _rule_failures(sandbox, document)


def test_correction_fields(sandbox: RunningSandbox) -> None:
    v1_superseding = with_changes(tthc_document(), (("header", "supersedes"), "rcpt-x"))
    assert _rule_failures(sandbox, v1_superseding) == [("SUPERSEDES_ON_FIRST_VERSION", "/header/supersedes")]
    v2_without_reason = with_changes(tthc_document(), (("header", "version"), 2), (("header", "supersedes"), "r"))
    assert _rule_failures(sandbox, v2_without_reason) == [("CORRECTION_REASON_MISSING", "/header/correction_reason")]


# ---------------------------------------------------------------- other report types

ICT_AGENCIES = ("body", "ict_ranking", "blocks", 0, "agencies")


def test_ict_total_is_the_sum_of_components(sandbox: RunningSandbox) -> None:
    document = with_changes(ict_document(), ((*ICT_AGENCIES, 2, "policy"), 70.001))
    assert _rule_failures(sandbox, document) == [("ICT_TOTAL", "/body/ict_ranking/blocks/0/agencies/2/total")]


def test_ict_ranks_are_dense_by_total_descending(sandbox: RunningSandbox) -> None:
    document = with_changes(ict_document(), ((*ICT_AGENCIES, 2, "rank"), 3))  # after a tie for 1st: 2nd, not 3rd
    assert _rule_failures(sandbox, document) == [("ICT_RANK", "/body/ict_ranking/blocks/0/agencies/2/rank")]


def test_ict_rules_in_xml(sandbox: RunningSandbox) -> None:
    body = example("ict-ranking.xml").replace(b'total="464.230"', b'total="464.200"')
    response = post(sandbox.base_url, body, "ict-xml-total", XML)
    assert list(zip(error_codes(response), error_paths(response), strict=True)) == [
        ("ICT_TOTAL", "/Submission/Body/IctRanking/Block[1]/Agency[2]/@total")
    ]


ONLINE_TOTAL = ("body", "online_services", "total")


def test_online_classified_services_cannot_exceed_authority(sandbox: RunningSandbox) -> None:
    document = with_changes(online_document(), ((*ONLINE_TOTAL, "partial_count"), 7))
    assert _rule_failures(sandbox, document) == [
        ("ONLINE_CLASSIFIED_EXCEEDS_AUTHORITY", "/body/online_services/total/authority_count")
    ]


def test_online_rates_are_recomputed(sandbox: RunningSandbox) -> None:
    document = with_changes(
        online_document(),
        (("body", "online_services", "agencies", 0, "full_process_with_dossiers_rate"), 42.85),
        ((*ONLINE_TOTAL, "online_payment_rate"), 0),  # no fee dossiers: no payment rate
    )
    assert _rule_failures(sandbox, document) == [
        ("RATE_MISMATCH", "/body/online_services/agencies/0/full_process_with_dossiers_rate"),
        ("RATE_NOT_ALLOWED", "/body/online_services/total/online_payment_rate"),
    ]


EGOV_BLOCK = ("body", "egov_maturity", "blocks", 0)


def test_egov_summary_counts_the_listed_agencies(sandbox: RunningSandbox) -> None:
    document = with_changes(egov_document(), ((*EGOV_BLOCK, "agencies", 3, "level"), "IV"))
    assert _rule_failures(sandbox, document) == [
        ("EGOV_SUMMARY_COUNT", "/body/egov_maturity/blocks/0/summary/3/count"),
        ("EGOV_SUMMARY_SHARE", "/body/egov_maturity/blocks/0/summary/3/share"),
        ("EGOV_SUMMARY_COUNT", "/body/egov_maturity/blocks/0/summary/4/count"),
        ("EGOV_SUMMARY_SHARE", "/body/egov_maturity/blocks/0/summary/4/share"),
    ]


def test_egov_summary_lists_each_level_once(sandbox: RunningSandbox) -> None:
    document = with_changes(egov_document(), ((*EGOV_BLOCK, "summary", 2, "level"), "II"))
    assert ("EGOV_SUMMARY_LEVELS", "/body/egov_maturity/blocks/0") in _rule_failures(sandbox, document)


INDEX_AGENCY = ("body", "service_index", "agencies", 0)


def test_service_index_group_score_is_the_sum_of_its_metrics(sandbox: RunningSandbox) -> None:
    document = with_changes(service_index_document(), ((*INDEX_AGENCY, "groups", 1, "metrics", 0, "score"), 19.5))
    assert _rule_failures(sandbox, document) == [("INDEX_GROUP_SCORE", "/body/service_index/agencies/0/groups/1/score")]


def test_service_index_total_is_the_sum_of_groups(sandbox: RunningSandbox) -> None:
    document = with_changes(service_index_document(), ((*INDEX_AGENCY, "total"), 83.71))
    assert _rule_failures(sandbox, document) == [("INDEX_TOTAL", "/body/service_index/agencies/0/total")]


def test_absurd_scores_are_refused_not_computed(sandbox: RunningSandbox) -> None:
    body = to_bytes(service_index_document()).replace(b'"total": 83.711', b'"total": 1e999999')
    response = post(sandbox.base_url, body, "absurd-score", JSON)
    assert response.status_code == 422 and response.json()["error"] == "RULE_FAILED"
    assert error_paths(response) == ["/body/service_index/agencies/0/total"]
    assert error_codes(response) == ["SCORE_RANGE"]


# ---------------------------------------------------------------- periods and rounding (no HTTP)


@pytest.mark.parametrize(
    ("period_type", "period_id", "regime", "start", "end"),
    [
        # DOMAIN.md, regime D09 (15th to 14th)
        ("MONTH", "2026-11", "D09", date(2026, 10, 15), date(2026, 11, 14)),
        ("MONTH", "2026-01", "D09", date(2025, 12, 15), date(2026, 1, 14)),
        ("QUARTER", "2026-Q1", "D09", date(2025, 12, 15), date(2026, 3, 14)),
        ("QUARTER", "2026-Q3", "D09", date(2026, 6, 15), date(2026, 9, 14)),
        ("HALF_YEAR", "2026-H1", "D09", date(2025, 12, 15), date(2026, 6, 14)),
        ("NINE_MONTHS", "2026-9M", "D09", date(2025, 12, 15), date(2026, 9, 14)),
        ("YEAR", "2026", "D09", date(2025, 12, 15), date(2026, 12, 14)),
        # calendar
        ("MONTH", "2028-02", "CALENDAR", date(2028, 2, 1), date(2028, 2, 29)),
        ("QUARTER", "2026-Q4", "CALENDAR", date(2026, 10, 1), date(2026, 12, 31)),
        ("HALF_YEAR", "2026-H1", "CALENDAR", date(2026, 1, 1), date(2026, 6, 30)),
        ("NINE_MONTHS", "2026-9M", "CALENDAR", date(2026, 1, 1), date(2026, 9, 30)),
        ("YEAR", "2025", "CALENDAR", date(2025, 1, 1), date(2025, 12, 31)),
    ],
)
def test_period_windows(period_type: str, period_id: str, regime: str, start: date, end: date) -> None:
    window = period_window(period_type, period_id, regime)
    assert (window.start, window.end) == (start, end)


@pytest.mark.parametrize(("period_type", "period_id"), [("MONTH", "2026"), ("YEAR", "2026-11"), ("QUARTER", "2026-H1")])
def test_period_type_must_match_the_id_form(period_type: str, period_id: str) -> None:
    with pytest.raises(PeriodError):
        period_window(period_type, period_id, "D09")


def test_rates_round_half_up_exactly() -> None:
    assert percent(470_208, 475_158) == Decimal("98.96")  # Lâm Đồng 2019 (DOMAIN.md)
    assert percent(234, 543) == Decimal("43.09")  # Đắk Lắk, 9 months of 2023
    assert percent(1, 800) == Decimal("0.13")  # 0.125: half-up, not half-even
    assert percent(2, 3) == Decimal("66.67")
    assert percent(5, 5) == Decimal("100.00")


def test_scores_sum_exactly() -> None:
    assert score_sum([Decimal("50"), Decimal("40"), Decimal("302.531"), Decimal("60")]) == Decimal("452.531")
    assert score_sum([Decimal("0.1")] * 3) == Decimal("0.300")
