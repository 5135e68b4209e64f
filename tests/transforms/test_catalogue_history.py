"""The catalogue's history: a period is counted on the catalogue its cut-off found, also when
aggregated again months later (a correction), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from baocao.core import tables
from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.periods import Period, parse_period
from baocao.storage import warehouse
from baocao.transforms.online_services import online_services_query
from baocao.transforms.service_index import ruleset_for, service_index_query
from tests.transforms.test_online_services import dossier, procedure

AGENCY = "000.00.01.H99"
SEPTEMBER, OCTOBER, NOVEMBER, DECEMBER = (parse_period(f"2026-{m:02d}", "CALENDAR") for m in (9, 10, 11, 12))
FIRST = datetime(2026, 11, 1, 6, 0)  # the cut-off run of October pulls the catalogue
SECOND = datetime(2026, 12, 1, 6, 0)  # November's: X is no longer online, Y is gone, Z is new
UNCHANGED = datetime(2026, 12, 10, 6, 0)  # an import that changes nothing


def _catalogue_counts(engine: sa.Engine, period: Period) -> tuple[int, int, int, int, int]:
    with engine.connect() as connection:
        [row] = connection.execute(online_services_query(period)).mappings().all()
    return (
        row["authority_count"],
        row["full_process_count"],
        row["partial_count"],
        row["services_with_dossiers"],
        row["full_process_with_dossiers"],
    )


def _offered_online(engine: sa.Engine, period: Period) -> tuple[int, int]:
    """SERVICE_INDEX's "procedures offered online" (numerator, denominator) for the agency."""
    query = service_index_query(period, ruleset_for(period))
    with engine.connect() as connection:
        [row] = connection.execute(query).mappings().all()
    return row["procedures_offered_online_numerator"], row["procedures_offered_online_denominator"]


def _history(engine: sa.Engine) -> list[tuple[Any, ...]]:
    h = tables.procedure_history.c
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(h.code, h.online_type, h.valid_from, h.valid_to).order_by(h.code, h.valid_from)
        ).all()
    return [tuple(row) for row in rows]


def test_each_period_counts_the_catalogue_its_cut_off_found(warehouse_url: str) -> None:
    engine = warehouse.connect(warehouse_url)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(tables.dossiers),
            [
                dossier("d-oct", AGENCY, "X", "ONLINE", "2026-10-20 08:00"),
                dossier("d-nov", AGENCY, "Z", "ONLINE", "2026-11-20 08:00"),
            ],
        )
    first = [procedure("X", AGENCY, "FULL"), procedure("Y", AGENCY, "PARTIAL")]
    second = [procedure("X", AGENCY, "NONE"), procedure("Z", AGENCY, "FULL")]
    warehouse.replace_procedures(engine, "danh-muc", "b1", first, as_of=FIRST)
    assert _catalogue_counts(engine, OCTOBER) == (2, 1, 1, 1, 1)  # X (FULL) had the October dossier

    warehouse.replace_procedures(engine, "danh-muc", "b2", second, as_of=SECOND)
    warehouse.replace_procedures(engine, "danh-muc", "b3", second, as_of=UNCHANGED)
    # October again after the catalogue changed (a correction): the same catalogue as at its cut-off.
    assert _catalogue_counts(engine, OCTOBER) == (2, 1, 1, 1, 1)
    assert _offered_online(engine, OCTOBER) == (2, 2)
    # November's cut-off found the second catalogue: X offline, Y gone, Z (FULL) used by d-nov.
    assert _catalogue_counts(engine, NOVEMBER) == (2, 1, 0, 1, 1)
    assert _offered_online(engine, NOVEMBER) == (1, 2)
    # No import since December ended (a period being reported now): the catalogue as it is now.
    assert _catalogue_counts(engine, DECEMBER) == (2, 1, 0, 0, 0)
    # A period from before the first import counts the first catalogue seen.
    assert _catalogue_counts(engine, SEPTEMBER) == (2, 1, 1, 0, 0)

    # One version per entry per change; the unchanged import added none, only its time.
    assert _history(engine) == [
        ("X", "FULL", FIRST, SECOND),
        ("X", "NONE", SECOND, None),
        ("Y", "PARTIAL", FIRST, SECOND),
        ("Z", "FULL", SECOND, None),
    ]
    with engine.connect() as connection:
        imports = connection.execute(
            sa.select(tables.catalogue_imports.c.imported_at, tables.catalogue_imports.c.entries).order_by(
                tables.catalogue_imports.c.imported_at
            )
        ).all()
        current = connection.execute(sa.select(tables.procedures.c.code).order_by("code")).scalars().all()
    assert [tuple(row) for row in imports] == [(FIRST, 2), (SECOND, 2), (UNCHANGED, 2)]
    assert current == ["X", "Z"]  # `procedures` stays the catalogue as published now
    engine.dispose()


def test_two_imports_in_the_same_instant_stay_ordered(warehouse_url: str) -> None:
    engine = warehouse.connect(warehouse_url)
    warehouse.replace_procedures(engine, "danh-muc", "b1", [procedure("X", AGENCY, "FULL")], as_of=FIRST)
    warehouse.replace_procedures(engine, "danh-muc", "b2", [procedure("X", AGENCY, "NONE")], as_of=FIRST)
    [(_, _, first_from, first_to), (_, second_type, second_from, second_to)] = _history(engine)
    assert first_from == FIRST and first_to == second_from > FIRST and second_to is None
    assert second_type == "NONE"
    assert _catalogue_counts(engine, DECEMBER)[:2] == (1, 0)
    engine.dispose()


def test_a_catalogue_stored_before_the_history_existed_becomes_its_first_version(warehouse_url: str) -> None:
    engine = warehouse.connect(warehouse_url)
    # A warehouse of an earlier version: the catalogue in `procedures`, no history, no imports (and,
    # being from before the migrations, no alembic_version: revision 0001 adopts it).
    with engine.begin() as connection:
        connection.execute(
            sa.insert(tables.procedures), [procedure("X", AGENCY, "FULL"), procedure("Y", AGENCY, "NONE")]
        )
        for table in ("procedure_history", "catalogue_imports", "alembic_version"):
            connection.execute(sa.text(f"DROP TABLE {table}"))
        # Nor what later revisions add (0002: stored reports).
        for table in ("report_lines", "report_heads", "report_versions"):
            connection.execute(sa.text(f"DROP TABLE {table}"))
        connection.execute(sa.text("ALTER TABLE submissions DROP COLUMN report_hash"))
    engine.dispose()
    before = datetime.now(LOCAL_TIMEZONE).replace(tzinfo=None)
    engine = warehouse.connect(warehouse_url)  # the upgraded code connects
    after = datetime.now(LOCAL_TIMEZONE).replace(tzinfo=None)
    [(x, x_type, upgraded, x_to), (y, _, y_from, _)] = _history(engine)
    assert (x, x_type, x_to, y) == ("X", "FULL", None, "Y") and before <= upgraded == y_from <= after
    # Periods that ended before the upgrade count the catalogue as found then, as they did before it.
    ended = parse_period(f"{before.year - 1}-12", "CALENDAR")
    assert _catalogue_counts(engine, ended)[:2] == (2, 1)
    # The next import closes those versions as any other; a period ending after it counts the new one.
    later = after + timedelta(days=1)
    warehouse.replace_procedures(engine, "test", "b1", [procedure("X", AGENCY, "NONE")], as_of=later)
    assert _catalogue_counts(engine, ended)[:2] == (2, 1)
    assert _catalogue_counts(engine, parse_period(f"{later.year + 1}-01", "CALENDAR"))[:2] == (1, 0)
    assert _history(engine)[0] == ("X", "FULL", upgraded, later)
    engine.dispose()
