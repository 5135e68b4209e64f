"""ONLINE_SERVICES (Decree 42/2022/NĐ-CP): online public services and their use, per agency.

Two steps, as for TTHC_RESULTS. `online_services_query` counts in the warehouse (the period's
catalogue from `procedure_history`, the period's dossiers in `dossiers`) and returns one row per agency;
`assemble_online_services` is pure: those rows in, the report out (agency rows by code, a TOTAL row,
rates). Definitions (DOMAIN.md, "ONLINE_SERVICES", read with "TTHC_RESULTS" for "in the period"):

- authority_count: the agency's procedures in the catalogue, whatever their online type;
  full_process_count / partial_count: those with online_type FULL / PARTIAL. The catalogue is the one
  the period's cut-off found (`warehouse.catalogue_at`: as of the first import after the period's
  end, the current one if none came since), so a correction months later counts the same procedures.
- A dossier counts when it was received in the period (00:00 of the start date to 24:00 of the end
  date, local time, end exclusive), is not CANCELLED and not deleted. Channel and status otherwise do
  not matter: a dossier received in the period counts even if still open.
- services_with_dossiers: the agency's FULL or PARTIAL procedures with at least one counted dossier
  (any channel). A dossier belongs to a procedure by (procedure_code, agency_code): the same national
  code under another agency is another procedure, and a NONE procedure is never a service.
  full_process_with_dossiers: the FULL ones among them.
- dossiers_total: counted dossiers of the agency (whether or not their procedure is in the catalogue);
  dossiers_online: of those, channel ONLINE; fee_dossiers: of those, fee_required;
  online_payment_dossiers: of the fee dossiers, paid_online (a dossier "paid online" without a fee is
  a source inconsistency and is not counted, so online payments never exceed fee dossiers).
- Agencies reported: every agency with catalogue entries (zeros when it had no dossiers) and every
  agency with counted dossiers (zero catalogue counts when it has no catalogue entries).
- Rates (× 100, 2 decimals half-up, absent when the denominator is 0): full_process_with_dossiers /
  services_with_dossiers, dossiers_online / dossiers_total, online_payment_dossiers / fee_dossiers.
  The TOTAL row sums the agency rows and recomputes its rates from the sums.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa
from lxml import etree
from sqlalchemy.sql.expression import ColumnElement

from baocao.core.canonical import Channel, Status
from baocao.core.errors import ContractError
from baocao.core.layouts.online_services import (
    AGENCY,
    CATALOGUE_COUNTS,
    COUNT_COLUMNS,
    DOSSIER_COUNTS,
    KIND,
    RATES,
    REPORT_COLUMNS,
    SERVICE_COUNTS,
    Kind,
    OnlineType,
)
from baocao.core.periods import Period
from baocao.core.tables import dossiers
from baocao.transforms.catalogue import catalogue_at
from baocao.transforms.render import qualified


def counted_dossier(period: Period) -> ColumnElement[bool]:
    """A dossier received in the period, not cancelled (entered by mistake) and not deleted."""
    d = dossiers.c
    return sa.and_(
        d.deleted.is_(False),
        d.status != Status.CANCELLED,
        d.agency_code.is_not(None),
        d.received_at >= period.starts_at,
        d.received_at < period.ends_before,
    )


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def online_services_query(period: Period) -> sa.Select[Any]:
    """One row per agency (`agency` + `COUNT_COLUMNS`), computed in the warehouse, ordered by agency."""
    # The catalogue as the period's cut-off found it (`warehouse.catalogue_at`), also when aggregated again later.
    entries = catalogue_at(period.ends_before).subquery("procedures_then")
    d, p = dossiers.c, entries.c
    catalogue = (
        sa.select(
            p.agency_code.label(AGENCY),
            sa.func.count().label("authority_count"),
            _count_where(p.online_type == OnlineType.FULL).label("full_process_count"),
            _count_where(p.online_type == OnlineType.PARTIAL).label("partial_count"),
        )
        .group_by(p.agency_code)
        .cte("catalogue")
    )
    period_dossiers = (
        sa.select(
            d.agency_code.label(AGENCY),
            sa.func.count().label("dossiers_total"),
            _count_where(d.channel == Channel.ONLINE).label("dossiers_online"),
            _count_where(d.fee_required.is_(True)).label("fee_dossiers"),
            _count_where(sa.and_(d.fee_required.is_(True), d.paid_online.is_(True))).label("online_payment_dossiers"),
        )
        .where(counted_dossier(period))
        .group_by(d.agency_code)
        .cte("period_dossiers")
    )
    # EXISTS, not a join: a service with many dossiers is still one service.
    has_dossier = (
        sa.select(d.code)
        .where(counted_dossier(period), d.procedure_code == p.code, d.agency_code == p.agency_code)
        .exists()
    )
    services = (
        sa.select(
            p.agency_code.label(AGENCY),
            sa.func.count().label("services_with_dossiers"),
            _count_where(p.online_type == OnlineType.FULL).label("full_process_with_dossiers"),
        )
        .where(p.online_type.in_([OnlineType.FULL, OnlineType.PARTIAL]), has_dossier)
        .group_by(p.agency_code)
        .cte("services")
    )
    agencies = sa.union(sa.select(catalogue.c[AGENCY]), sa.select(period_dossiers.c[AGENCY])).subquery("agencies")

    def count(source: Any, name: str) -> sa.Label[Any]:
        return sa.cast(sa.func.coalesce(source.c[name], 0), sa.Integer).label(name)

    return (
        sa.select(
            agencies.c[AGENCY],
            *[count(catalogue, name) for name in CATALOGUE_COUNTS],
            *[count(services, name) for name in SERVICE_COUNTS],
            *[count(period_dossiers, name) for name in DOSSIER_COUNTS],
        )
        .select_from(agencies)
        .outerjoin(catalogue, catalogue.c[AGENCY] == agencies.c[AGENCY])
        .outerjoin(services, services.c[AGENCY] == agencies.c[AGENCY])
        .outerjoin(period_dossiers, period_dossiers.c[AGENCY] == agencies.c[AGENCY])
        .order_by(agencies.c[AGENCY])
    )


def percent(numerator: int, denominator: int) -> Decimal | None:
    """numerator / denominator × 100, 2 decimals rounded half-up; None when the denominator is 0.

    Integer arithmetic, so no binary rounding can tip a half the wrong way.
    """
    if denominator == 0:
        return None
    hundredths = (2 * numerator * 100 * 100 + denominator) // (2 * denominator)
    return Decimal(hundredths).scaleb(-2)


def assemble_online_services(rows: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Rows of `online_services_query` → the report (`REPORT_COLUMNS`): agency rows by code, then TOTAL."""
    missing = [name for name in (AGENCY, *COUNT_COLUMNS) if name not in rows.columns]
    if missing:
        raise ContractError(f"ONLINE_SERVICES {period.id}: the grouped rows lack column(s) {', '.join(missing)}")
    duplicated = sorted(set(rows.loc[rows[AGENCY].duplicated(), AGENCY]))
    if duplicated:
        raise ContractError(f"ONLINE_SERVICES {period.id}: agencies listed twice: {', '.join(duplicated[:10])}")
    frame = rows[[AGENCY, *COUNT_COLUMNS]].sort_values(AGENCY, kind="stable").reset_index(drop=True)
    records: list[dict[str, Any]] = [
        {KIND: Kind.AGENCY, AGENCY: str(row[AGENCY]), **{name: int(row[name]) for name in COUNT_COLUMNS}}
        for row in frame.to_dict("records")
    ]
    total: dict[str, Any] = {KIND: Kind.TOTAL, AGENCY: None}
    total.update({name: sum(int(record[name]) for record in records) for name in COUNT_COLUMNS})
    records.append(total)
    for record in records:
        for rate, (numerator, denominator) in RATES.items():
            record[rate] = percent(record[numerator], record[denominator])
    report = pd.DataFrame(records, columns=list(REPORT_COLUMNS))
    # Object dtype keeps the TOTAL row's agency None (pandas' string dtype would turn it into NaN).
    report[AGENCY] = pd.Series([record[AGENCY] for record in records], dtype=object)
    for name in COUNT_COLUMNS:
        report[name] = report[name].astype("int64")
    return report


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value))


def _xml_counts(row: dict[str, Any]) -> dict[str, str]:
    values = {_camel(name): str(int(row[name])) for name in COUNT_COLUMNS}
    values.update({_camel(rate): f"{Decimal(str(row[rate])):.2f}" for rate in RATES if _present(row[rate])})
    return values


def _json_counts(row: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {name: int(row[name]) for name in COUNT_COLUMNS}
    values.update({rate: float(f"{Decimal(str(row[rate])):.2f}") for rate in RATES if _present(row[rate])})
    return values


def _split(report: pd.DataFrame) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = report.to_dict("records")
    totals = [row for row in rows if row[KIND] == Kind.TOTAL]
    if len(totals) != 1:
        raise ContractError(f"ONLINE_SERVICES report has {len(totals)} TOTAL rows, expected 1")
    return [row for row in rows if row[KIND] == Kind.AGENCY], totals[0]


def online_xml_body(parent: etree._Element, report: pd.DataFrame) -> None:
    """Fill `<OnlineServices>`: one `<Agency code>` per agency row, then `<Total>`; rates only when defined."""
    agencies, total = _split(report)
    for row in agencies:
        etree.SubElement(parent, qualified("Agency"), {"code": str(row[AGENCY]), **_xml_counts(row)})
    etree.SubElement(parent, qualified("Total"), _xml_counts(total))


def online_json_body(report: pd.DataFrame) -> dict[str, Any]:
    """The `online_services` body: `agencies` (code + counts + defined rates) and `total`."""
    agencies, total = _split(report)
    return {
        "agencies": [{"code": str(row[AGENCY]), **_json_counts(row)} for row in agencies],
        "total": _json_counts(total),
    }
