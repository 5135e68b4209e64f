"""The internal model of a submission, built from the canonical document of either wire format.

Every record keeps its ``path`` in the canonical document so a rule can name the row it failed on;
``document.render_path`` turns that into the client's own notation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from baocao.simulators.central.document import DocPath, Style

COUNT_FIELDS: Final[tuple[str, ...]] = (
    "received_total", "received_online", "received_direct", "carried_over",
    "resolved_total", "resolved_early", "resolved_on_time", "resolved_late",
    "in_progress_total", "in_progress_within", "in_progress_overdue",
)  # fmt: skip
ONLINE_COUNT_FIELDS: Final[tuple[str, ...]] = (
    "authority_count", "full_process_count", "partial_count", "services_with_dossiers",
    "full_process_with_dossiers", "dossiers_total", "dossiers_online", "fee_dossiers",
    "online_payment_dossiers",
)  # fmt: skip
# Canonical body member per report type (the Body holds exactly one of them).
BODY_MEMBER: Final[dict[str, str]] = {
    "TTHC_RESULTS": "tthc_results",
    "SERVICE_INDEX": "service_index",
    "ONLINE_SERVICES": "online_services",
    "ICT_RANKING": "ict_ranking",
    "EGOV_MATURITY": "egov_maturity",
}


def _count(value: Any) -> int:
    # The schema admits integral decimals such as 120.0 as JSON integers; the model holds ints.
    return int(value)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)


def _optional_decimal(value: Any) -> Decimal | None:
    return None if value is None else _decimal(value)


@dataclass(frozen=True)
class Period:
    type: str
    id: str
    regime: str
    start: str  # kept as sent: a date with a time-zone suffix is not the expected date
    end: str


@dataclass(frozen=True)
class Header:
    submission_id: str
    report_type: str
    sender_code: str
    receiver_code: str
    period: Period
    version: int
    supersedes: str | None
    correction_reason: str | None


@dataclass(frozen=True)
class DossierCounts:
    """One line of form II.06a: a row, a section total or the report total."""

    path: DocPath
    received_total: int
    received_online: int
    received_direct: int
    carried_over: int
    resolved_total: int
    resolved_early: int
    resolved_on_time: int
    resolved_late: int
    in_progress_total: int
    in_progress_within: int
    in_progress_overdue: int
    on_time_rate: Decimal | None

    def count(self, name: str) -> int:
        value: int = getattr(self, name)
        return value


@dataclass(frozen=True)
class TthcRow:
    agency: str
    field: str
    counts: DossierCounts


@dataclass(frozen=True)
class TthcSection:
    path: DocPath
    level: str
    rows: tuple[TthcRow, ...]
    total: DossierCounts


@dataclass(frozen=True)
class TthcResults:
    sections: tuple[TthcSection, ...]
    total: DossierCounts


@dataclass(frozen=True)
class IndexMetric:
    path: DocPath
    id: str
    score: Decimal


@dataclass(frozen=True)
class IndexGroup:
    path: DocPath
    id: str
    score: Decimal
    metrics: tuple[IndexMetric, ...]


@dataclass(frozen=True)
class IndexAgency:
    path: DocPath
    code: str
    total: Decimal
    groups: tuple[IndexGroup, ...]


@dataclass(frozen=True)
class ServiceIndex:
    agencies: tuple[IndexAgency, ...]


@dataclass(frozen=True)
class OnlineCounts:
    """Per agency (``code`` set) or the report total (``code`` None)."""

    path: DocPath
    code: str | None
    authority_count: int
    full_process_count: int
    partial_count: int
    services_with_dossiers: int
    full_process_with_dossiers: int
    dossiers_total: int
    dossiers_online: int
    fee_dossiers: int
    online_payment_dossiers: int
    full_process_with_dossiers_rate: Decimal | None
    online_dossier_rate: Decimal | None
    online_payment_rate: Decimal | None

    def count(self, name: str) -> int:
        value: int = getattr(self, name)
        return value


@dataclass(frozen=True)
class OnlineServices:
    agencies: tuple[OnlineCounts, ...]
    total: OnlineCounts


@dataclass(frozen=True)
class IctAgency:
    path: DocPath
    code: str
    rank: int
    infrastructure: Decimal
    human_resources: Decimal
    applications: Decimal
    policy: Decimal
    total: Decimal


@dataclass(frozen=True)
class IctBlock:
    path: DocPath
    id: str
    agencies: tuple[IctAgency, ...]


@dataclass(frozen=True)
class IctRanking:
    blocks: tuple[IctBlock, ...]


@dataclass(frozen=True)
class MaturityAgency:
    path: DocPath
    code: str
    readiness_score: Decimal
    level: str


@dataclass(frozen=True)
class MaturitySummary:
    path: DocPath
    level: str
    count: int
    share: Decimal


@dataclass(frozen=True)
class MaturityBlock:
    path: DocPath
    id: str
    agencies: tuple[MaturityAgency, ...]
    summary: tuple[MaturitySummary, ...]


@dataclass(frozen=True)
class EgovMaturity:
    blocks: tuple[MaturityBlock, ...]


Report = TthcResults | ServiceIndex | OnlineServices | IctRanking | EgovMaturity


@dataclass(frozen=True)
class Submission:
    """A schema-valid submission: header, the report in its body, and where it came from."""

    style: Style
    document: dict[str, Any]  # the canonical document (for paths and the content fingerprint)
    header: Header
    body_member: str  # which report the Body holds, e.g. "tthc_results"
    report: Report

    def content_fingerprint(self) -> str:
        """SHA-256 of what the submission says, independent of wire format and transport details.

        "Identical content" for the duplicate rule: same sender and receiver codes, report type,
        period, version, supersedes, correction reason, completeness and body values (numbers
        compared by value, so 98 = 98.00, and XML = JSON). Ignored: SubmissionId, GeneratedAt,
        Producer and party names, which a regenerated copy of the same report may change, and
        the signature. Order of rows counts: a reordered report is not treated as the same.
        """
        header = {
            key: value
            for key, value in self.document["header"].items()
            if key not in ("submission_id", "generated_at", "producer") and value is not None
        }
        header["sender"] = self.header.sender_code
        header["receiver"] = self.header.receiver_code
        canonical = json.dumps(
            _tag_numbers({"header": header, "body": self.document["body"]}),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _tag_numbers(value: Any) -> Any:
    # Numbers become tagged strings of their normalised decimal value: 98, 98.0 and 98.00 agree.
    if isinstance(value, dict):
        return {key: _tag_numbers(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_tag_numbers(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return "#" + format(Decimal(value).normalize(), "f")
    return value


# ---------------------------------------------------------------- building


def build_submission(style: Style, document: dict[str, Any]) -> Submission:
    """Build the model from a schema-valid canonical document."""
    raw = document["header"]
    period = raw["period"]
    header = Header(
        submission_id=str(raw["submission_id"]),
        report_type=str(raw["report_type"]),
        sender_code=str(raw["sender"]["code"]),
        receiver_code=str(raw["receiver"]["code"]),
        period=Period(
            type=period["type"], id=period["id"], regime=period["regime"], start=period["start"], end=period["end"]
        ),
        version=_count(raw["version"]),
        supersedes=raw.get("supersedes"),
        correction_reason=raw.get("correction_reason"),
    )
    body = document["body"]
    (member,) = body.keys()
    base: DocPath = ("body", member)
    report = _BUILDERS[member](body[member], base)
    return Submission(style=style, document=document, header=header, body_member=member, report=report)


def _dossier_counts(raw: dict[str, Any], path: DocPath) -> DossierCounts:
    return DossierCounts(
        path=path,
        **{name: _count(raw[name]) for name in COUNT_FIELDS},
        on_time_rate=_optional_decimal(raw.get("on_time_rate")),
    )


def _build_tthc(raw: dict[str, Any], base: DocPath) -> TthcResults:
    sections = []
    for s, section in enumerate(raw["sections"]):
        section_path = (*base, "sections", s)
        rows = tuple(
            TthcRow(
                agency=row["agency"],
                field=row["field"],
                counts=_dossier_counts(row, (*section_path, "rows", r)),
            )
            for r, row in enumerate(section["rows"])
        )
        sections.append(
            TthcSection(
                path=section_path,
                level=section["level"],
                rows=rows,
                total=_dossier_counts(section["total"], (*section_path, "total")),
            )
        )
    return TthcResults(sections=tuple(sections), total=_dossier_counts(raw["total"], (*base, "total")))


def _build_service_index(raw: dict[str, Any], base: DocPath) -> ServiceIndex:
    agencies = []
    for a, agency in enumerate(raw["agencies"]):
        agency_path = (*base, "agencies", a)
        groups = []
        for g, group in enumerate(agency["groups"]):
            group_path = (*agency_path, "groups", g)
            metrics = tuple(
                IndexMetric(path=(*group_path, "metrics", m), id=metric["id"], score=_decimal(metric["score"]))
                for m, metric in enumerate(group["metrics"])
            )
            groups.append(IndexGroup(path=group_path, id=group["id"], score=_decimal(group["score"]), metrics=metrics))
        agencies.append(
            IndexAgency(path=agency_path, code=agency["code"], total=_decimal(agency["total"]), groups=tuple(groups))
        )
    return ServiceIndex(agencies=tuple(agencies))


def _online_counts(raw: dict[str, Any], path: DocPath) -> OnlineCounts:
    return OnlineCounts(
        path=path,
        code=raw.get("code"),
        **{name: _count(raw[name]) for name in ONLINE_COUNT_FIELDS},
        full_process_with_dossiers_rate=_optional_decimal(raw.get("full_process_with_dossiers_rate")),
        online_dossier_rate=_optional_decimal(raw.get("online_dossier_rate")),
        online_payment_rate=_optional_decimal(raw.get("online_payment_rate")),
    )


def _build_online(raw: dict[str, Any], base: DocPath) -> OnlineServices:
    return OnlineServices(
        agencies=tuple(_online_counts(a, (*base, "agencies", i)) for i, a in enumerate(raw["agencies"])),
        total=_online_counts(raw["total"], (*base, "total")),
    )


def _build_ict(raw: dict[str, Any], base: DocPath) -> IctRanking:
    blocks = []
    for b, block in enumerate(raw["blocks"]):
        block_path = (*base, "blocks", b)
        agencies = tuple(
            IctAgency(
                path=(*block_path, "agencies", a),
                code=agency["code"],
                rank=_count(agency["rank"]),
                infrastructure=_decimal(agency["infrastructure"]),
                human_resources=_decimal(agency["human_resources"]),
                applications=_decimal(agency["applications"]),
                policy=_decimal(agency["policy"]),
                total=_decimal(agency["total"]),
            )
            for a, agency in enumerate(block["agencies"])
        )
        blocks.append(IctBlock(path=block_path, id=block["id"], agencies=agencies))
    return IctRanking(blocks=tuple(blocks))


def _build_egov(raw: dict[str, Any], base: DocPath) -> EgovMaturity:
    blocks = []
    for b, block in enumerate(raw["blocks"]):
        block_path = (*base, "blocks", b)
        agencies = tuple(
            MaturityAgency(
                path=(*block_path, "agencies", a),
                code=agency["code"],
                readiness_score=_decimal(agency["readiness_score"]),
                level=agency["level"],
            )
            for a, agency in enumerate(block["agencies"])
        )
        summary = tuple(
            MaturitySummary(
                path=(*block_path, "summary", s),
                level=item["level"],
                count=_count(item["count"]),
                share=_decimal(item["share"]),
            )
            for s, item in enumerate(block["summary"])
        )
        blocks.append(MaturityBlock(path=block_path, id=block["id"], agencies=agencies, summary=summary))
    return EgovMaturity(blocks=tuple(blocks))


_BUILDERS: Final[dict[str, Callable[[dict[str, Any], DocPath], Report]]] = {
    "tthc_results": _build_tthc,
    "service_index": _build_service_index,
    "online_services": _build_online,
    "ict_ranking": _build_ict,
    "egov_maturity": _build_egov,
}
