"""Business rules the central checks on a schema-valid submission (central-api.md, RULE_FAILED).

One violation per rule and row; the path names the row (and the value that is wrong). Rates and
shares are recomputed exactly from the counts with 2 decimals, half-up; scores are summed exactly
and compared at 3 decimals, half-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Final

from baocao.simulators.central.document import DocPath
from baocao.simulators.central.model import (
    BODY_MEMBER,
    COUNT_FIELDS,
    ONLINE_COUNT_FIELDS,
    DossierCounts,
    EgovMaturity,
    IctRanking,
    OnlineCounts,
    OnlineServices,
    ServiceIndex,
    Submission,
    TthcResults,
)
from baocao.simulators.central.periods import PeriodError, period_window

# Versions are stored in a 32-bit column; no real report gets anywhere near.
MAX_VERSION: Final = 2**31 - 1
# Scores are points (a few hundred at most); the bound keeps exact decimal arithmetic cheap and safe.
MAX_SCORE: Final = Decimal(10) ** 12
_SCORE_STEP: Final = Decimal("0.001")
MATURITY_LEVELS: Final = ("I", "II", "III", "IV", "UNRANKED")


@dataclass(frozen=True)
class RuleViolation:
    """A failed business rule: a stable code, the canonical path of the row/value, and why."""

    code: str
    path: DocPath
    message: str


def check_business_rules(submission: Submission) -> list[RuleViolation]:
    """Every business rule that ``submission`` breaks, in document order (empty when it passes)."""
    violations = list(_header_rules(submission))
    range_violations = list(_score_ranges(submission))
    if range_violations:
        # Arithmetic on absurd magnitudes is meaningless; report the range and stop there.
        return violations + range_violations
    report = submission.report
    if isinstance(report, TthcResults):
        violations += _tthc_rules(report)
    elif isinstance(report, ServiceIndex):
        violations += _service_index_rules(report)
    elif isinstance(report, OnlineServices):
        violations += _online_services_rules(report)
    elif isinstance(report, IctRanking):
        violations += _ict_rules(report)
    else:
        violations += _egov_rules(report)
    return violations


# ---------------------------------------------------------------- arithmetic


def percent(numerator: int, denominator: int) -> Decimal:
    """numerator / denominator x 100 with 2 decimals, half-up, computed exactly in integers."""
    hundredths, remainder = divmod(numerator * 10_000, denominator)
    if 2 * remainder >= denominator:
        hundredths += 1
    return Decimal(hundredths).scaleb(-2)


def score_sum(values: Iterable[Decimal]) -> Decimal:
    """Exact sum of scores, rounded to 3 decimals half-up."""
    with localcontext() as context:
        context.prec = 100  # exact for any score that passed the range check
        total = sum(values, Decimal(0))
        return total.quantize(_SCORE_STEP, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------- header


def _header_rules(submission: Submission) -> Iterator[RuleViolation]:
    header = submission.header
    expected_member = BODY_MEMBER[header.report_type]
    if submission.body_member != expected_member:
        yield RuleViolation(
            "REPORT_TYPE_MISMATCH",
            ("header", "report_type"),
            f"report type {header.report_type} needs a {expected_member} body, the body holds {submission.body_member}",
        )
    period = header.period
    try:
        window = period_window(period.type, period.id, period.regime)
    except PeriodError as exc:
        yield RuleViolation("PERIOD_ID", ("header", "period", "id"), str(exc))
    else:
        for name, sent, expected in (("start", period.start, window.start), ("end", period.end, window.end)):
            if sent != expected.isoformat():
                yield RuleViolation(
                    "PERIOD_WINDOW",
                    ("header", "period", name),
                    f"{period.type} {period.id} under regime {period.regime} {name}s on "
                    f"{expected.isoformat()}, not {sent}",
                )
    if header.version > MAX_VERSION:
        yield RuleViolation("VERSION_RANGE", ("header", "version"), f"version must be at most {MAX_VERSION}")
    # Corrections (central-api.md): version n+1 supersedes version n and says why.
    if header.version == 1 and header.supersedes is not None:
        yield RuleViolation("SUPERSEDES_ON_FIRST_VERSION", ("header", "supersedes"), "version 1 supersedes nothing")
    if header.version > 1 and not header.correction_reason:
        yield RuleViolation(
            "CORRECTION_REASON_MISSING",
            ("header", "correction_reason"),
            f"version {header.version} is a correction and needs a CorrectionReason",
        )


def _score_ranges(submission: Submission) -> Iterator[RuleViolation]:
    report = submission.report
    scored: list[tuple[DocPath, str, Decimal]] = []
    if isinstance(report, IctRanking):
        for block in report.blocks:
            for agency in block.agencies:
                for name in ("infrastructure", "human_resources", "applications", "policy", "total"):
                    scored.append((agency.path, name, getattr(agency, name)))
    elif isinstance(report, ServiceIndex):
        for index_agency in report.agencies:
            scored.append((index_agency.path, "total", index_agency.total))
            for group in index_agency.groups:
                scored.append((group.path, "score", group.score))
                scored += [(metric.path, "score", metric.score) for metric in group.metrics]
    for path, name, value in scored:
        if abs(value) >= MAX_SCORE:
            yield RuleViolation("SCORE_RANGE", (*path, name), f"{name} {value} is out of range")


# ---------------------------------------------------------------- TTHC_RESULTS

# (rule code, left-hand column, right-hand columns): the identities of form II.06a.
_TTHC_IDENTITIES: Final = (
    ("TTHC_RECEIVED_TOTAL", "received_total", ("received_online", "received_direct", "carried_over")),
    ("TTHC_RESOLVED_TOTAL", "resolved_total", ("resolved_early", "resolved_on_time", "resolved_late")),
    ("TTHC_IN_PROGRESS_TOTAL", "in_progress_total", ("in_progress_within", "in_progress_overdue")),
    ("TTHC_BALANCE", "received_total", ("resolved_total", "in_progress_total")),
)


def _tthc_rules(report: TthcResults) -> list[RuleViolation]:
    violations: list[RuleViolation] = []
    for section in report.sections:
        for row in section.rows:
            violations += _dossier_line_rules(row.counts, f"row {row.agency}/{row.field}")
        violations += _dossier_line_rules(section.total, f"section {section.level} total")
        violations += _sum_rule(
            "TTHC_SECTION_TOTAL",
            section.total,
            [row.counts for row in section.rows],
            f"section {section.level} total is not the sum of its rows",
        )
    violations += _dossier_line_rules(report.total, "report total")
    violations += _sum_rule(
        "TTHC_REPORT_TOTAL",
        report.total,
        [section.total for section in report.sections],
        "report total is not the sum of the section totals",
    )
    return violations


def _dossier_line_rules(line: DossierCounts, label: str) -> list[RuleViolation]:
    violations = [
        RuleViolation("COUNT_NEGATIVE", (*line.path, name), f"{label}: {name} must not be negative")
        for name in COUNT_FIELDS
        if line.count(name) < 0
    ]
    for code, left, right in _TTHC_IDENTITIES:
        parts = [line.count(name) for name in right]
        if line.count(left) != sum(parts):
            violations.append(
                RuleViolation(
                    code,
                    (*line.path, left),
                    f"{label}: {left} {line.count(left)} != {' + '.join(right)} = {sum(parts)}",
                )
            )
    # The rate exists exactly when something was resolved (DOMAIN.md: absent when nothing was).
    resolved = line.resolved_total
    if resolved == 0:
        if line.on_time_rate is not None:
            violations.append(
                RuleViolation(
                    "RATE_NOT_ALLOWED",
                    (*line.path, "on_time_rate"),
                    f"{label}: on_time_rate must be absent when resolved_total is 0",
                )
            )
    elif resolved > 0:
        expected = percent(line.resolved_early + line.resolved_on_time, resolved)
        if line.on_time_rate is None:
            violations.append(
                RuleViolation(
                    "RATE_MISSING", (*line.path, "on_time_rate"), f"{label}: on_time_rate {expected} is missing"
                )
            )
        elif line.on_time_rate != expected:
            violations.append(
                RuleViolation(
                    "RATE_MISMATCH",
                    (*line.path, "on_time_rate"),
                    f"{label}: on_time_rate {line.on_time_rate} != (resolved_early + resolved_on_time) "
                    f"/ resolved_total x 100 = {expected}",
                )
            )
    return violations


def _sum_rule(code: str, total: DossierCounts, parts: Sequence[DossierCounts], message: str) -> list[RuleViolation]:
    differences = [
        f"{name} {total.count(name)} != {sum(part.count(name) for part in parts)}"
        for name in COUNT_FIELDS
        if total.count(name) != sum(part.count(name) for part in parts)
    ]
    if not differences:
        return []
    return [RuleViolation(code, total.path, f"{message}: {', '.join(differences)}")]


# ---------------------------------------------------------------- ONLINE_SERVICES

# (rate, numerator, denominator), DOMAIN.md "ONLINE_SERVICES".
_ONLINE_RATES: Final = (
    ("full_process_with_dossiers_rate", "full_process_with_dossiers", "services_with_dossiers"),
    ("online_dossier_rate", "dossiers_online", "dossiers_total"),
    ("online_payment_rate", "online_payment_dossiers", "fee_dossiers"),
)


def _online_services_rules(report: OnlineServices) -> list[RuleViolation]:
    violations: list[RuleViolation] = []
    for line in (*report.agencies, report.total):
        label = f"agency {line.code}" if line.code else "total"
        violations += _online_line_rules(line, label)
    return violations


def _online_line_rules(line: OnlineCounts, label: str) -> list[RuleViolation]:
    violations = [
        RuleViolation("COUNT_NEGATIVE", (*line.path, name), f"{label}: {name} must not be negative")
        for name in ONLINE_COUNT_FIELDS
        if line.count(name) < 0
    ]
    classified = line.full_process_count + line.partial_count
    if classified > line.authority_count:
        violations.append(
            RuleViolation(
                "ONLINE_CLASSIFIED_EXCEEDS_AUTHORITY",
                (*line.path, "authority_count"),
                f"{label}: full_process_count + partial_count = {classified} > authority_count {line.authority_count}",
            )
        )
    for rate_name, numerator_name, denominator_name in _ONLINE_RATES:
        sent: Decimal | None = getattr(line, rate_name)
        if sent is None:
            continue  # the rates are optional in this report
        denominator = line.count(denominator_name)
        if denominator <= 0:
            # Same convention as on_time_rate: no denominator, no rate (a 0 would be invented).
            violations.append(
                RuleViolation(
                    "RATE_NOT_ALLOWED",
                    (*line.path, rate_name),
                    f"{label}: {rate_name} must be absent when {denominator_name} is 0",
                )
            )
            continue
        expected = percent(line.count(numerator_name), denominator)
        if sent != expected:
            violations.append(
                RuleViolation(
                    "RATE_MISMATCH",
                    (*line.path, rate_name),
                    f"{label}: {rate_name} {sent} != {numerator_name} / {denominator_name} x 100 = {expected}",
                )
            )
    return violations


# ---------------------------------------------------------------- ICT_RANKING


def _ict_rules(report: IctRanking) -> list[RuleViolation]:
    violations: list[RuleViolation] = []
    for block in report.blocks:
        for agency in block.agencies:
            expected_total = score_sum(
                (agency.infrastructure, agency.human_resources, agency.applications, agency.policy)
            )
            if agency.total != expected_total:
                violations.append(
                    RuleViolation(
                        "ICT_TOTAL",
                        (*agency.path, "total"),
                        f"block {block.id}, agency {agency.code}: total {agency.total} != infrastructure + "
                        f"human_resources + applications + policy = {expected_total}",
                    )
                )
        # Dense rank on the totals as sent: equal totals share a rank, the next rank follows on.
        distinct_totals = sorted({agency.total for agency in block.agencies}, reverse=True)
        dense_rank = {total: position + 1 for position, total in enumerate(distinct_totals)}
        for agency in block.agencies:
            expected_rank = dense_rank[agency.total]
            if agency.rank != expected_rank:
                violations.append(
                    RuleViolation(
                        "ICT_RANK",
                        (*agency.path, "rank"),
                        f"block {block.id}, agency {agency.code}: rank {agency.rank} != dense rank by total "
                        f"descending = {expected_rank}",
                    )
                )
    return violations


# ---------------------------------------------------------------- EGOV_MATURITY


def _egov_rules(report: EgovMaturity) -> list[RuleViolation]:
    violations: list[RuleViolation] = []
    for block in report.blocks:
        levels = [item.level for item in block.summary]
        if sorted(levels, key=MATURITY_LEVELS.index) != list(MATURITY_LEVELS):
            violations.append(
                RuleViolation(
                    "EGOV_SUMMARY_LEVELS",
                    block.path,
                    f"block {block.id}: the summary must list each level {', '.join(MATURITY_LEVELS)} once, "
                    f"it lists {', '.join(levels)}",
                )
            )
        agencies = len(block.agencies)
        for item in block.summary:
            actual = sum(1 for agency in block.agencies if agency.level == item.level)
            if item.count != actual:
                violations.append(
                    RuleViolation(
                        "EGOV_SUMMARY_COUNT",
                        (*item.path, "count"),
                        f"block {block.id}, level {item.level}: count {item.count} != {actual} listed agencies",
                    )
                )
            expected_share = percent(actual, agencies)
            if item.share != expected_share:
                violations.append(
                    RuleViolation(
                        "EGOV_SUMMARY_SHARE",
                        (*item.path, "share"),
                        f"block {block.id}, level {item.level}: share {item.share} != {actual} / {agencies} "
                        f"x 100 = {expected_share}",
                    )
                )
    return violations


# ---------------------------------------------------------------- SERVICE_INDEX


def _service_index_rules(report: ServiceIndex) -> list[RuleViolation]:
    violations: list[RuleViolation] = []
    for agency in report.agencies:
        for group in agency.groups:
            expected_group = score_sum(metric.score for metric in group.metrics)
            if group.score != expected_group:
                violations.append(
                    RuleViolation(
                        "INDEX_GROUP_SCORE",
                        (*group.path, "score"),
                        f"agency {agency.code}, group {group.id}: score {group.score} != sum of its metrics "
                        f"= {expected_group}",
                    )
                )
        expected_total = score_sum(group.score for group in agency.groups)
        if agency.total != expected_total:
            violations.append(
                RuleViolation(
                    "INDEX_TOTAL",
                    (*agency.path, "total"),
                    f"agency {agency.code}: total {agency.total} != sum of its groups = {expected_total}",
                )
            )
    return violations
