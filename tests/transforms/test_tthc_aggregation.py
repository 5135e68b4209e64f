"""II.06a aggregation against hand-computed rows: every status and both period edges.

Period 2026-11 (D09) runs from 2026-10-15 00:00 to 2026-11-14 24:00 local time.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.layouts.tthc import COUNT_COLUMNS, Kind
from baocao.core.periods import parse_period
from baocao.core.registry import Agency, Level, Registry
from baocao.storage import warehouse
from baocao.transforms.tthc import assemble_tthc_report, completeness, on_time_rate, tthc_rows_query

DEPARTMENT, COMMUNE, SILENT = "000.00.01.H99", "000.01.01.H99", "000.01.02.H99"
REGISTRY = Registry(
    (
        Agency(DEPARTMENT, "Sở Tư pháp", Level.PROVINCE),
        Agency(COMMUNE, "UBND xã Tà Nung", Level.COMMUNE),
        Agency(SILENT, "UBND xã Xuân Trường", Level.COMMUNE),
    )
)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def dossier(
    code: str,
    agency: str,
    channel: str,
    status: str,
    received: str,
    due: str | None = None,
    finished: str | None = None,
    deleted: bool = False,
) -> dict[str, Any]:
    field = "LV-TUPHAP" if agency == DEPARTMENT else "LV-HOTICH"
    return {
        "code": code,
        "agency_code": agency,
        "procedure_code": "1.000001",
        "field_code": field,
        "field_name": "Tư pháp" if agency == DEPARTMENT else "Hộ tịch",
        "channel": channel,
        "status": status,
        "received_at": t(received),
        "due_at": t(due) if due else None,
        "finished_at": t(finished) if finished else None,
        "fee_required": False,
        "paid_online": False,
        "digitized": True,
        "result_electronic": False,
        "rating": None,
        "updated_at": t("2026-11-20 08:00"),
        "deleted": deleted,
        "source": "test",
        "batch_id": "hand",
    }


DOSSIERS = [
    # department: each line says where the dossier must land
    dossier(
        "d01", DEPARTMENT, "ONLINE", "RESOLVED", "2026-10-20 09:00", "2026-10-25 17:00", "2026-10-24 10:00"
    ),  # early
    dossier(
        "d02", DEPARTMENT, "DIRECT", "RESOLVED", "2026-10-15 00:00", "2026-10-30 17:00", "2026-10-30 16:00"
    ),  # first instant; on time
    dossier(
        "d03", DEPARTMENT, "POSTAL", "RESOLVED", "2026-10-16 08:00", "2026-10-30 17:00", "2026-10-30 18:00"
    ),  # later hour of due day: late
    dossier(
        "d04", DEPARTMENT, "ONLINE", "RESOLVED", "2026-10-16 08:00", "2026-10-20 17:00", "2026-10-22 09:00"
    ),  # late
    dossier(
        "d05", DEPARTMENT, "DIRECT", "RESOLVED", "2026-10-14 23:59", "2026-10-20 17:00", "2026-11-14 23:59"
    ),  # carried; late at the last minute
    dossier(
        "d06", DEPARTMENT, "DIRECT", "RETURNED", "2026-10-01 08:00", "2026-10-10 17:00", "2026-11-01 08:00"
    ),  # carried; returned = on time
    dossier(
        "d07", DEPARTMENT, "ONLINE", "WITHDRAWN", "2026-10-18 08:00", "2026-10-28 17:00", "2026-10-19 08:00"
    ),  # withdrawn = on time
    dossier(
        "d08", DEPARTMENT, "DIRECT", "RESOLVED", "2026-10-18 08:00", None, "2026-10-25 08:00"
    ),  # no due date = on time
    dossier("d09", DEPARTMENT, "ONLINE", "PROCESSING", "2026-10-20 08:00", "2026-11-14 23:00"),  # open, overdue
    dossier(
        "d10", DEPARTMENT, "ONLINE", "PROCESSING", "2026-10-20 08:00", "2026-11-15 00:00"
    ),  # open, within (due at 24:00)
    dossier(
        "d11", DEPARTMENT, "DIRECT", "SUPPLEMENT_REQUESTED", "2026-10-20 08:00", "2026-10-25 17:00"
    ),  # within: awaiting supplement
    dossier("d12", DEPARTMENT, "DIRECT", "RECEIVED", "2026-10-20 08:00"),  # open, no due date: within
    dossier("d13", DEPARTMENT, "ONLINE", "CANCELLED", "2026-10-20 08:00", "2026-10-25 17:00"),  # nowhere
    dossier("d14", DEPARTMENT, "ONLINE", "PROCESSING", "2026-10-20 08:00", "2026-10-25 17:00", deleted=True),  # nowhere
    dossier("d15", DEPARTMENT, "ONLINE", "RECEIVED", "2026-11-15 00:00", "2026-11-20 17:00"),  # after the end: nowhere
    dossier(
        "d16", DEPARTMENT, "DIRECT", "RESOLVED", "2026-09-01 08:00", "2026-09-20 17:00", "2026-10-14 23:59"
    ),  # finished before: nowhere
    dossier(
        "d17", DEPARTMENT, "ONLINE", "RESOLVED", "2026-10-25 08:00", "2026-11-10 17:00", "2026-11-15 00:00"
    ),  # finished after end: open, overdue
    dossier("d18", DEPARTMENT, "DIRECT", "PROCESSING", "2026-09-01 08:00", "2026-12-01 17:00"),  # carried; within
    dossier(
        "d19", DEPARTMENT, "ONLINE", "RESOLVED", "2026-10-20 08:00", "2026-10-22 00:00", "2026-10-22 00:00"
    ),  # exactly at due: on time
    # commune
    dossier(
        "c01", COMMUNE, "ONLINE", "RESOLVED", "2026-11-01 08:00", "2026-11-05 17:00", "2026-11-05 17:00"
    ),  # on time
    dossier("c02", COMMUNE, "DIRECT", "RESOLVED", "2026-11-01 08:00", "2026-11-05 17:00", "2026-11-03 08:00"),  # early
    dossier(
        "c03", COMMUNE, "DIRECT", "RESOLVED", "2026-11-01 08:00", "2026-11-05 17:00", "2026-11-04 23:59:59"
    ),  # early
]

COLUMNS = COUNT_COLUMNS
#                     rec  onl dir car | res  ear ont lat | inp wit ovd
EXPECTED_DEPARTMENT = (15, 7, 5, 3, 9, 1, 5, 3, 6, 4, 2)
EXPECTED_COMMUNE = (3, 1, 2, 0, 3, 2, 1, 0, 0, 0, 0)
EXPECTED_TOTAL = (18, 8, 7, 3, 12, 3, 6, 3, 6, 4, 2)


def _grouped(url: str, period_id: str) -> pd.DataFrame:
    engine = warehouse.connect(url)
    with engine.begin() as connection:
        connection.execute(sa.delete(tables.dossiers))
        connection.execute(sa.insert(tables.dossiers), DOSSIERS)
        rows = connection.execute(tthc_rows_query(parse_period(period_id))).mappings().all()
    engine.dispose()
    return pd.DataFrame(rows)


def test_rows_sections_and_total_match_hand_computed_values(warehouse_url: str) -> None:
    period = parse_period("2026-11")
    report = assemble_tthc_report(_grouped(warehouse_url, "2026-11"), REGISTRY, period)
    by_label = {
        (r["kind"], r["level"], r["agency"] if isinstance(r["agency"], str) else None): r
        for r in report.to_dict("records")
    }

    def counts(key: tuple[Any, ...]) -> tuple[int, ...]:
        return tuple(int(by_label[key][name]) for name in COLUMNS)

    assert counts((Kind.ROW, "PROVINCE", DEPARTMENT)) == EXPECTED_DEPARTMENT
    assert counts((Kind.ROW, "COMMUNE", COMMUNE)) == EXPECTED_COMMUNE
    assert counts((Kind.SECTION, "PROVINCE", None)) == EXPECTED_DEPARTMENT
    assert counts((Kind.SECTION, "COMMUNE", None)) == EXPECTED_COMMUNE
    total = report[report["kind"] == Kind.TOTAL].iloc[0]
    assert tuple(int(total[name]) for name in COLUMNS) == EXPECTED_TOTAL
    assert by_label[(Kind.ROW, "PROVINCE", DEPARTMENT)]["on_time_rate"] == Decimal("66.67")  # 6 / 9
    assert by_label[(Kind.ROW, "COMMUNE", COMMUNE)]["on_time_rate"] == Decimal("100.00")
    assert total["on_time_rate"] == Decimal("75.00")  # 9 / 12
    assert list(report["kind"]) == [Kind.ROW, Kind.SECTION, Kind.ROW, Kind.SECTION, Kind.TOTAL]


def test_the_previous_period_sees_the_other_side_of_each_edge(warehouse_url: str) -> None:
    """2026-10 runs 2026-09-15 → 2026-10-14 24:00: d05 (received 10-14 23:59) and d06 are received in it,
    d16 and d18 are carried over, d16 is resolved late in it, d02 (received 10-15 00:00) is not in it."""
    grouped = _grouped(warehouse_url, "2026-10").set_index("agency")
    department = tuple(int(grouped.loc[DEPARTMENT][name]) for name in COLUMNS)
    #                   rec onl dir car | res ear ont lat | inp wit ovd
    assert department == (4, 0, 2, 2, 1, 0, 0, 1, 3, 2, 1)
    assert COMMUNE not in grouped.index


def test_completeness_lists_agencies_without_data() -> None:
    rows = pd.DataFrame({"agency": [DEPARTMENT, COMMUNE]})
    found = completeness(rows, REGISTRY, parse_period("2026-11"))
    assert (found.expected, found.reported, found.missing) == (3, 2, (SILENT,))


@pytest.mark.parametrize(
    ("early", "on_time", "resolved", "expected"),
    [(1, 0, 32, "3.13"), (3, 0, 32, "9.38"), (2, 0, 3, "66.67"), (470_208, 0, 475_158, "98.96"), (0, 0, 5, "0.00")],
)
def test_on_time_rate_rounds_half_up(early: int, on_time: int, resolved: int, expected: str) -> None:
    assert on_time_rate(early, on_time, resolved) == Decimal(expected)


def test_on_time_rate_is_absent_when_nothing_was_resolved() -> None:
    assert on_time_rate(0, 0, 0) is None
