"""SERVICE_INDEX after a merge: counts recorded under an agency that ended go to its successor's line.

Commune A merged into commune B on 2026-07-01 (A: valid to 2026-06-30, successor B). The one-stop
system and the feedback system keep recording some dossiers and petitions under A's old code. In
2026-Q3 (CALENDAR, after the merge) they count in B's line and A has no line; in 2026-Q2 (before
it) A and B are reported apart. A code the registry does not know is left as it is. Every expected
numerator and denominator below is worked out by hand beside the fixture.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.layouts.service_index import AGENCY, DOSSIERS_IN_PERIOD, Kind
from baocao.core.periods import Period, parse_period
from baocao.core.registry import Registry, parse_registry
from baocao.storage import warehouse
from baocao.transforms.service_index import (
    assemble_service_index,
    input_columns,
    onto_units,
    ruleset_for,
    service_index_query,
)
from baocao.transforms.tthc import completeness, moved_units
from tests.catalogue_fixture import reset_catalogue
from tests.transforms.test_service_index import dossier, metrics_of, procedure

Q2 = parse_period("2026-Q2", "CALENDAR")
Q3 = parse_period("2026-Q3", "CALENDAR")
RULESET = ruleset_for(Q3)
assert ruleset_for(Q2) == RULESET
PROVINCE = "000.00.00.H99"
DEPARTMENT = "000.00.01.H99"
A = "000.01.01.H99"  # merged into B on 2026-07-01
B = "000.01.02.H99"
UNKNOWN = "000.00.77.H99"  # not in the registry
SOURCE = "phan-anh"
END_OF = "23:59:59.999999"  # a deadline given as a date is stored as the end of that day

REGISTRY_ROWS = [
    {"code": DEPARTMENT, "name": "Sở Tư pháp", "level": "PROVINCE"},
    {"code": A, "name": "UBND xã A (cũ)", "level": "COMMUNE", "valid_to": "2026-06-30", "successor": B},
    {"code": B, "name": "UBND xã B", "level": "COMMUNE"},
]


def registry() -> Registry:
    return parse_registry(REGISTRY_ROWS, "agencies.csv")


PROCEDURES = [
    #         code        agency type       fee    payable published updated complete
    procedure("1.000001", A, "FULL", True, True, True, True, True),  # PA
    procedure("1.000002", B, "PARTIAL", False, None, False, True, True),  # PB1
    procedure("1.000003", B, "NONE", True, False, True, False, None),  # PB2: completeness unknown
]
DOSSIERS = [
    # Q2, before the merge
    dossier(
        "a0",
        A,
        "1.000001",
        "ONLINE",
        "2026-05-10 08:00",
        status="RESOLVED",
        due="2026-05-20 17:00",
        finished="2026-05-15 08:00",  # early
        digitized=True,
        electronic=True,
        rating=4,
    ),  # fmt: skip
    dossier("b0", B, "1.000002", "DIRECT", "2026-06-01 08:00", digitized=False),
    # Q3, after the merge: a1 and a2 still under A's code
    dossier(
        "a1",
        A,
        "1.000001",
        "ONLINE",
        "2026-07-02 08:00",
        status="RESOLVED",
        due="2026-07-10 17:00",
        finished="2026-07-05 10:00",  # early
        fee=True,
        paid=True,
        digitized=True,
        electronic=True,
        rating=5,
    ),  # fmt: skip
    dossier(
        "a2", A, "1.000001", "DIRECT", "2026-08-01 08:00", due="2026-10-20 17:00", fee=True, paid=False
    ),  # still open
    dossier(
        "b1",
        B,
        "1.000002",
        "ONLINE",
        "2026-07-15 08:00",
        status="RESOLVED",
        due="2026-07-20 17:00",
        finished="2026-07-25 08:00",  # late
        digitized=True,
        electronic=False,
        rating=2,
    ),  # fmt: skip
    dossier("u1", UNKNOWN, "9.000001", "DIRECT", "2026-09-01 08:00", digitized=True),
]


def petition(
    code: str, agency: str, received: str, due: str, answered: str | None, satisfied: bool | None
) -> dict[str, Any]:
    return {
        "code": code,
        "agency_code": agency,
        "received_at": datetime.fromisoformat(received),
        "due_at": datetime.fromisoformat(due),
        "answered_at": datetime.fromisoformat(answered) if answered else None,
        "satisfied": satisfied,
        "source": SOURCE,
        "batch_id": "hand",
    }


PETITIONS = [
    petition("PA-A-1", A, "2026-07-01 08:00", f"2026-07-10 {END_OF}", "2026-07-08 10:00", True),  # on time; 1
    petition("PA-A-2", A, "2026-09-15 08:00", f"2026-09-25 {END_OF}", None, None),  # due in Q3, unanswered: late
    petition("PA-B-1", B, "2026-08-01 08:00", "2026-08-11 17:00", "2026-08-11 17:30", False),  # late; rated 0
    petition("PA-U-1", UNKNOWN, "2026-08-01 08:00", f"2026-08-11 {END_OF}", "2026-08-05 09:00", True),
]

# B's line in Q3: A's counts (catalogue PA; dossiers a1 a2; petitions PA-A-1 PA-A-2) plus B's own
# (PB1 PB2; b1; PA-B-1). metric → (numerator, denominator).
EXPECTED_B_Q3 = {
    "PUBLISHED_ON_TIME": (2, 3),  # PA, PB2 of PA PB1 PB2
    "PUBLICATION_UPDATED_ON_TIME": (2, 3),  # PA, PB1
    "CONTENT_COMPLETE": (2, 2),  # PA, PB1; PB2 unknown
    "RESOLVED_ON_TIME": (1, 2),  # finished in Q3: a1 early, b1 late
    "OFFERED_ONLINE": (2, 3),  # PA FULL, PB1 PARTIAL of 3
    "ONLINE_SERVICES_USED": (2, 2),  # PA (a1 online), PB1 (b1 online)
    "ONLINE_DOSSIERS": (2, 3),  # received in Q3: a1 b1 online, a2 direct
    "DOSSIERS_PAID_ONLINE": (1, 2),  # with a fee: a1 paid, a2 not
    "FEE_PROCEDURES_PAYABLE_ONLINE": (1, 2),  # with a fee: PA payable, PB2 not
    "FEE_PROCEDURES_PAID_ONLINE": (1, 2),  # PA (a1 paid online), PB2 none
    "RECEPTION_SATISFACTION": (1, 2),  # finished and rated: a1 5, b1 2 (satisfied from 4)
    "PETITIONS_ANSWERED_ON_TIME": (1, 3),  # due in Q3: PA-A-1 on time, PA-A-2 unanswered, PA-B-1 late
    "PETITION_SATISFACTION": (1, 2),  # answered in Q3 and rated: PA-A-1 1, PA-B-1 0
    "RESULT_ELECTRONIC": (1, 2),  # RESOLVED in Q3: a1 electronic, b1 not
    "PAPERS_DIGITIZED": (2, 3),  # received in Q3: a1 b1 digitised, a2 not
}
# Hand-computed scores of some of them: 6 × 2/3; 2 × (2/3) / 0.8; min(6, 6 × (2/3) / 0.5); 6 × 1/3; 6 × 0.5 / 0.9.
EXPECTED_B_Q3_SCORES = {
    "PUBLISHED_ON_TIME": "4.000",
    "OFFERED_ONLINE": "1.667",
    "ONLINE_DOSSIERS": "6.000",
    "PETITIONS_ANSWERED_ON_TIME": "2.000",
    "RECEPTION_SATISFACTION": "3.333",
}
# Q2, before the merge: A and B apart (no petitions due or answered in Q2: 0/0 each).
EXPECTED_A_Q2 = {
    "PUBLISHED_ON_TIME": (1, 1),
    "RESOLVED_ON_TIME": (1, 1),  # a0 early
    "ONLINE_DOSSIERS": (1, 1),  # a0
    "RECEPTION_SATISFACTION": (1, 1),  # a0 rated 4
    "PAPERS_DIGITIZED": (1, 1),
    "PETITIONS_ANSWERED_ON_TIME": (0, 0),
}
EXPECTED_B_Q2 = {
    "PUBLISHED_ON_TIME": (1, 2),
    "RESOLVED_ON_TIME": (0, 0),
    "ONLINE_DOSSIERS": (0, 1),  # b0 direct
    "RECEPTION_SATISFACTION": (0, 0),
    "PAPERS_DIGITIZED": (0, 1),
    "PETITIONS_ANSWERED_ON_TIME": (0, 0),
}


def query_rows(url: str, period: Period) -> pd.DataFrame:
    engine = warehouse.connect(url)
    reset_catalogue(engine, PROCEDURES)
    with engine.begin() as connection:
        for table in (tables.dossiers, tables.petitions):
            connection.execute(sa.delete(table))
        connection.execute(sa.insert(tables.dossiers), DOSSIERS)
        connection.execute(sa.insert(tables.petitions), PETITIONS)
        rows = connection.execute(service_index_query(period, RULESET, petition_sources=[SOURCE])).mappings().all()
    engine.dispose()
    return pd.DataFrame([dict(row) for row in rows])


def counts_of(report: pd.DataFrame, code: str) -> dict[str, tuple[int, int] | None]:
    return {metric: None if found is None else found[:2] for metric, found in metrics_of(report, code).items()}


def test_after_the_merge_a_counts_in_bs_line_and_has_none_of_its_own(warehouse_url: str) -> None:
    rows = query_rows(warehouse_url, Q3)
    assert set(rows[AGENCY]) == {A, B, UNKNOWN}  # the query still sees the old code
    before = rows.copy()

    moved = onto_units(rows, registry(), Q3, Q3.end)
    pd.testing.assert_frame_equal(rows, before)  # the input is not changed
    assert sorted(moved[AGENCY]) == [UNKNOWN, B]
    assert list(moved.columns) == list(rows.columns)
    # Every count column of B is A's plus B's, including dossiers in the period (completeness).
    by_agency = rows.set_index(AGENCY)
    summed = moved.set_index(AGENCY)
    for column in rows.columns.drop(AGENCY):
        assert summed.loc[B, column] == by_agency.loc[A, column] + by_agency.loc[B, column], column
    assert summed.loc[B, DOSSIERS_IN_PERIOD] == 3  # a1 a2 b1
    assert summed.loc[UNKNOWN].to_dict() == by_agency.loc[UNKNOWN].to_dict()  # left as it is

    report = assemble_service_index(moved, Q3, province_code=PROVINCE, ruleset=RULESET)
    assert list(dict.fromkeys(zip(report["kind"], report["agency"], strict=True))) == [
        (Kind.AGENCY, UNKNOWN),
        (Kind.AGENCY, B),
        (Kind.PROVINCE, PROVINCE),
    ]
    found = counts_of(report, B)
    assert {metric: found[metric] for metric in EXPECTED_B_Q3} == EXPECTED_B_Q3
    scores = {metric: line[2] for metric, line in metrics_of(report, B).items() if line is not None}
    assert {metric: scores[metric] for metric in EXPECTED_B_Q3_SCORES} == EXPECTED_B_Q3_SCORES
    # The unknown agency keeps its own line (u1 received in Q3, direct; PA-U-1 on time and satisfied).
    unknown = counts_of(report, UNKNOWN)
    assert (unknown["ONLINE_DOSSIERS"], unknown["PETITIONS_ANSWERED_ON_TIME"]) == ((0, 1), (1, 1))
    # The province is the same sum either way: re-keying moves counts, it never adds or drops any.
    unmoved = assemble_service_index(rows, Q3, province_code=PROVINCE, ruleset=RULESET)
    province = report[report["kind"] == Kind.PROVINCE].reset_index(drop=True)
    pd.testing.assert_frame_equal(province, unmoved[unmoved["kind"] == Kind.PROVINCE].reset_index(drop=True))
    assert counts_of(report, PROVINCE)["ONLINE_DOSSIERS"] == (2, 4)

    # Completeness on the re-keyed rows: the active agencies are DEPARTMENT and B; B has reported.
    served = moved.loc[moved[DOSSIERS_IN_PERIOD] > 0, [AGENCY]]
    assert completeness(served, registry(), Q3).missing == (DEPARTMENT,)


def test_before_the_merge_a_and_b_are_reported_apart(warehouse_url: str) -> None:
    rows = query_rows(warehouse_url, Q2)
    assert sorted(rows[AGENCY]) == [A, B]
    moved = onto_units(rows, registry(), Q2, Q2.end)
    pd.testing.assert_frame_equal(moved, rows)
    report = assemble_service_index(moved, Q2, province_code=PROVINCE, ruleset=RULESET)
    for code, expected in ((A, EXPECTED_A_Q2), (B, EXPECTED_B_Q2)):
        found = counts_of(report, code)
        assert {metric: found[metric] for metric in expected} == expected, code


def hand_rows(*rows: tuple[str, int, int]) -> pd.DataFrame:
    """(agency, dossiers_in_period, base): every count column gets a distinct value derived from base."""
    columns = input_columns(RULESET, petitions=True)
    return pd.DataFrame(
        [
            {AGENCY: code, DOSSIERS_IN_PERIOD: in_period}
            | {name: base + position for position, name in enumerate(columns[2:])}
            for code, in_period, base in rows
        ],
        columns=list(columns),
    )


def test_successors_are_followed_to_the_unit_active_at_the_periods_end() -> None:
    """A → B → C (B merged into C on 2026-08-01, inside Q3): B was active in part of Q3 and keeps its
    line; A, ended before Q3, goes to the unit carrying its work on 2026-09-30, C, not to B."""
    c = "000.01.03.H99"
    rows = [
        {"code": A, "name": "UBND xã A (cũ)", "level": "COMMUNE", "valid_to": "2026-06-30", "successor": B},
        {"code": B, "name": "UBND xã B", "level": "COMMUNE", "valid_to": "2026-07-31", "successor": c},
        {"code": c, "name": "UBND xã C", "level": "COMMUNE", "valid_from": "2026-08-01"},
    ]
    chain = parse_registry(rows, "agencies.csv")
    inputs = hand_rows((A, 2, 10), (B, 3, 100), (UNKNOWN, 1, 1000))
    moved = onto_units(inputs, chain, Q3, Q3.end).set_index(AGENCY)
    assert sorted(moved.index) == [UNKNOWN, B, c]
    original = inputs.set_index(AGENCY)
    pd.testing.assert_series_equal(moved.loc[c], original.loc[A], check_names=False)
    pd.testing.assert_series_equal(moved.loc[B], original.loc[B], check_names=False)
    pd.testing.assert_series_equal(moved.loc[UNKNOWN], original.loc[UNKNOWN], check_names=False)


def test_two_merged_communes_sum_onto_a_new_one_without_rows_of_its_own() -> None:
    new = "000.01.09.H99"
    rows = [
        {"code": A, "name": "UBND xã A (cũ)", "level": "COMMUNE", "valid_to": "2026-06-30", "successor": new},
        {"code": B, "name": "UBND xã B (cũ)", "level": "COMMUNE", "valid_to": "2026-06-30", "successor": new},
        {"code": new, "name": "UBND xã mới", "level": "COMMUNE", "valid_from": "2026-07-01"},
    ]
    merged = parse_registry(rows, "agencies.csv")
    inputs = hand_rows((A, 2, 10), (B, 0, 100))
    moved = onto_units(inputs, merged, Q3, Q3.end)
    assert list(moved[AGENCY]) == [new]
    expected = inputs.drop(columns=AGENCY).sum()
    pd.testing.assert_series_equal(moved.drop(columns=AGENCY).iloc[0], expected, check_names=False)
    assert completeness(moved.loc[moved[DOSSIERS_IN_PERIOD] > 0, [AGENCY]], merged, Q3).missing == ()
    # Nothing to move (empty, or all active): the rows come back as they are.
    empty = pd.DataFrame(columns=list(input_columns(RULESET)))
    assert onto_units(empty, merged, Q3, Q3.end) is empty
    assert onto_units(inputs, merged, Q2, Q2.end) is inputs


@pytest.mark.parametrize("period", [Q2, Q3])
def test_an_unknown_agency_alone_is_left_alone(period: Period) -> None:
    inputs = hand_rows((UNKNOWN, 4, 7))
    assert onto_units(inputs, registry(), period, period.end) is inputs


def test_a_merged_agencys_dossier_uses_its_successors_catalogue_entry(warehouse_url: str) -> None:
    """The catalogue lists procedure 1.000009 under B only (published after the merge); a Q3 dossier
    still recorded under A, online and paid online, is a use of B's entry: "online services used" and
    "fee procedures paid online" count it for B. Without the crosswalk in the query they could not."""
    engine = warehouse.connect(warehouse_url)
    reset_catalogue(engine, [procedure("1.000009", B, "FULL", True, True, True, True, True)])
    with engine.begin() as connection:
        for table in (tables.dossiers, tables.petitions):
            connection.execute(sa.delete(table))
        connection.execute(
            sa.insert(tables.dossiers),
            [dossier("a9", A, "1.000009", "ONLINE", "2026-08-03 08:00", fee=True, paid=True)],
        )

    def b_counts(period: Period, units: dict[str, str] | None) -> dict[str, tuple[int, int] | None]:
        with engine.connect() as connection:
            query = service_index_query(period, RULESET, units=units)
            rows = pd.DataFrame([dict(row) for row in connection.execute(query).mappings()])
        moved = onto_units(rows, registry(), period, period.end)
        return counts_of(assemble_service_index(moved, period, province_code=PROVINCE, ruleset=RULESET), B)

    units = moved_units(registry(), Q3, Q3.end)
    assert units == {A: B}
    found = b_counts(Q3, units)
    assert (found["ONLINE_SERVICES_USED"], found["FEE_PROCEDURES_PAID_ONLINE"]) == ((1, 1), (1, 1))
    assert found["ONLINE_DOSSIERS"] == (1, 1)  # a9, moved to B's line
    unmatched = b_counts(Q3, None)  # the rows moved afterwards only: B's entry looks unused
    assert (unmatched["ONLINE_SERVICES_USED"], unmatched["FEE_PROCEDURES_PAID_ONLINE"]) == ((0, 1), (0, 1))
    assert moved_units(registry(), Q2, Q2.end) == {}  # before the merge A is its own agency
    engine.dispose()


def test_a_procedure_listed_by_both_the_old_and_the_new_agency_counts_once(warehouse_url: str) -> None:
    engine = warehouse.connect(warehouse_url)
    reset_catalogue(
        engine,
        [
            procedure("1.000009", A, "FULL", True, True, True, True, True),  # the old listing, not yet removed
            procedure("1.000009", B, "FULL", True, True, True, True, True),
            procedure("1.000010", A, "NONE", False, None, False, True, True),  # A's only: moves to B
        ],
    )
    with engine.begin() as connection:
        for table in (tables.dossiers, tables.petitions):
            connection.execute(sa.delete(table))
        query = service_index_query(Q3, RULESET, units=moved_units(registry(), Q3, Q3.end))
        rows = pd.DataFrame([dict(row) for row in connection.execute(query).mappings()])
    engine.dispose()
    moved = onto_units(rows, registry(), Q3, Q3.end)
    found = counts_of(assemble_service_index(moved, Q3, province_code=PROVINCE, ruleset=RULESET), B)
    assert found["OFFERED_ONLINE"] == (1, 2)  # 1.000009 once (FULL), 1.000010 (NONE)
    assert found["PUBLISHED_ON_TIME"] == (1, 2)
