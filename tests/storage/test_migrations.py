"""The warehouse's migrations, on SQLite and PostgreSQL: a warehouse made before them (by the code of
5277557, or older) is adopted with nothing lost and ends at head; revision 0001 is that code's schema;
head is what `baocao.core.tables` defines (a table changed without a migration fails here); workers
starting together upgrade once; `baocao db upgrade` and `baocao db current`.

The schema of 5277557 is kept as DDL files (schema_5277557/, their header says how they were made),
so that these tests need no git history.
"""

from __future__ import annotations

import multiprocessing.context
import re
from collections.abc import Collection, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner, Result

from baocao.cli import main
from baocao.core import tables
from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.storage import ledger, migrations, warehouse
from tests.storage import writers

OLD_SCHEMA = Path(__file__).parent / "schema_5277557"
# The catalogue history and the detached signatures came after the first warehouses: a warehouse of
# that time has neither (connect added them, and backfilled the history, until the migrations).
HISTORY_TABLES = ("procedure_history", "catalogue_imports")


def _old_statements(dialect: str, without_tables: Collection[str] = (), without_signature: bool = False) -> list[str]:
    text = "\n".join(
        line
        for line in (OLD_SCHEMA / f"{dialect}.sql").read_text(encoding="utf-8").splitlines()
        if not line.startswith("--")
    )
    statements = [statement.strip() for statement in re.split(r";\s*$", text, flags=re.MULTILINE) if statement.strip()]
    chosen = []
    for statement in statements:
        table = re.match(r"CREATE (?:TABLE|INDEX \w+ ON) (\w+)", statement)
        assert table, statement
        if table.group(1) in without_tables:
            continue
        if without_signature:
            statement = re.sub(r"^\s*signature TEXT,\n", "", statement, flags=re.MULTILINE)
        chosen.append(statement)
    return chosen


def _old_warehouse(url: str, without_tables: Collection[str] = (), without_signature: bool = False) -> sa.Engine:
    """A warehouse as the code of 5277557 (or older) left it: its tables, no alembic_version."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in _old_statements(engine.dialect.name, without_tables, without_signature):
            connection.exec_driver_sql(statement)
    return engine


def _fill(engine: sa.Engine) -> None:
    """A few rows in every table the old warehouse has, written through its own (reflected) tables."""
    found = sa.MetaData()
    found.reflect(engine)
    at = datetime(2026, 11, 1, 6, 0)
    rows: dict[str, list[dict[str, Any]]] = {
        "batches": [
            {
                "batch_id": f"b{number}",
                "source": source,
                "kind": kind,
                "state": state,
                "window_from": None,
                "window_to": at,
                "pulled": 3,
                "staged": 3,
                "quarantined": 1,
                "merged": 2,
                "started_at": at,
                "finished_at": at,
            }
            for number, (source, kind, state) in enumerate(
                [
                    ("onestop", "rest_onestop", "MERGED"),
                    ("danh-muc", "catalogue_xml", "STORED"),
                    ("y", "ict_workbook", "REJECTED"),
                ]
            )
        ],
        "dossiers": [
            {
                "code": f"H99.{number:04d}",
                "agency_code": "000.00.01.H99",
                "procedure_code": "1.000001",
                "field_code": "LV-TUPHAP",
                "field_name": "Tư pháp",
                "channel": "ONLINE" if number % 2 else "DIRECT",
                "status": "RESOLVED",
                "received_at": datetime(2026, 10, 1 + number, 8, 30),
                "due_at": datetime(2026, 10, 10 + number, 17, 0),
                "finished_at": datetime(2026, 10, 5 + number, 10, 0) if number < 3 else None,
                "fee_required": number == 1,
                "paid_online": None,
                "digitized": True,
                "result_electronic": False,
                "rating": number,
                "updated_at": datetime(2026, 10, 5 + number, 10, 0, 0, 123456),
                "deleted": number == 4,
                "source": "onestop",
                "batch_id": "b0",
            }
            for number in range(5)
        ],
        "procedures": [
            {
                "code": f"1.00000{number}",
                "agency_code": "000.00.01.H99",
                "name": f"Thủ tục {number}",
                "field_code": "LV-01",
                "online_type": ("FULL", "PARTIAL", "NONE")[number],
                "fee_required": None,
                "online_payment": number == 0,
                "published_on_time": True,
                "publication_updated_on_time": True,
                "content_complete": number != 2,
                "source": "danh-muc",
                "batch_id": "b1",
            }
            for number in range(3)
        ],
        "petitions": [
            {
                "code": f"0{number}7",
                "agency_code": "000.00.01.H99",
                "received_at": datetime(2026, 10, 2, 9, 0),
                "due_at": datetime(2026, 10, 12, 23, 59, 59, 999999),
                "answered_at": datetime(2026, 10, 8, 9, 0) if number else None,
                "satisfied": True if number else None,
                "source": "phan-anh",
                "batch_id": "b9",
            }
            for number in range(2)
        ],
        "quarantine": [
            {
                "batch_id": "b0",
                "source": "onestop",
                "stage": stage,
                "record_key": "H99.9999",
                "rule": "Known status",
                "detail": "status=X",
                "at": at,
            }
            for stage in ("extract", "validate")
        ],
        "source_state": [{"source": "onestop", "watermark": at, "batch_id": "b0"}],
        "report_tthc_rows": [
            {
                "period_id": "2026-10",
                "regime": "D09",
                "agency": "000.00.01.H99",
                "field": field,
                "level": "PROVINCE",
                "field_name": field,
                **{name: number for number, name in enumerate(tables.COUNT_COLUMNS)},
                "on_time_rate": Decimal("97.25"),
                "computed_at": at,
            }
            for field in ("LV-01", "LV-02")
        ],
        "submissions": [
            {
                "report_type": "TTHC_RESULTS",
                "period_id": "2026-10",
                "regime": "D09",
                "sender": "H99",
                "version": 1,
                "live_slot": "H99|TTHC_RESULTS|2026-10|D09|v1",
                "idempotency_key": "H99:TTHC_RESULTS:2026-10:D09:v1:0123456789abcdef",
                "submission_id": "7c0b0a8e-0000-4000-8000-000000000001",
                "format": "json",
                "content_type": "application/json",
                "payload": b'{"bao_cao": "II.06a"}\x00\xff',
                "sha256": "0" * 64,
                "supersedes": None,
                "state": "ACCEPTED",
                "attempts": 1,
                "last_status": 201,
                "last_error": None,
                "receipt_id": "R-1",
                "receipt": '{"receipt_id": "R-1"}',
                "created_at": at,
                "updated_at": at,
                **({"signature": "header..signature"} if "signature" in found.tables["submissions"].c else {}),
            }
        ],
        "agency_scores": [
            {
                "report_type": "ICT_RANKING",
                "period_id": "2026",
                "regime": "CALENDAR",
                "code": code,
                "block": "PROVINCE",
                "name": f"Sở {code}",
                **{name: Decimal(f"{number}.125") for number, name in enumerate(tables.SCORE_COLUMNS)},
                "level": None,
                "source": "ict",
                "batch_id": "b2",
            }
            for code in ("A1", "A2")
        ],
    }
    if "procedure_history" in found.tables:
        # A catalogue with history: entry 0 changed at the second import, the others as first stored.
        first, second = datetime(2026, 9, 1, 6, 0), datetime(2026, 10, 1, 6, 0)
        rows["procedure_history"] = [
            {**entry, "valid_from": first, "valid_to": second if entry["code"] == "1.000000" else None}
            for entry in rows["procedures"]
        ] + [{**rows["procedures"][0], "valid_from": second, "valid_to": None}]
        rows["procedure_history"][0] = {**rows["procedure_history"][0], "online_type": "NONE"}
        rows["catalogue_imports"] = [
            {"source": "danh-muc", "imported_at": first, "batch_id": "b0", "entries": 3},
            {"source": "danh-muc", "imported_at": second, "batch_id": "b1", "entries": 3},
        ]
    with engine.begin() as connection:
        for table in found.sorted_tables:
            if table.name != "submission_attempts":  # it needs the submission's number, below
                assert rows.get(table.name), f"no rows for {table.name}"
                connection.execute(sa.insert(table), rows[table.name])
        submission = connection.execute(sa.select(found.tables["submissions"].c.id)).scalar_one()
        attempt = {"submission": submission, "at": at, "status": 201, "outcome": "ACCEPTED", "detail": "ok"}
        connection.execute(sa.insert(found.tables["submission_attempts"]), [attempt])


def _contents(engine: sa.Engine, only: Mapping[str, Collection[str]] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (or of `only`'s tables and columns), in primary key order."""
    found = sa.MetaData()
    found.reflect(engine)
    chosen = only or {name: list(table.c.keys()) for name, table in found.tables.items() if name != "alembic_version"}
    with engine.connect() as connection:
        return {
            name: [
                dict(row)
                for row in connection.execute(
                    sa.select(*[found.tables[name].c[column] for column in columns]).order_by(
                        *found.tables[name].primary_key.columns
                    )
                ).mappings()
            ]
            for name, columns in chosen.items()
        }


def _drift(engine: sa.Engine, metadata: sa.MetaData = tables.metadata) -> list[Any]:
    """What `alembic check` would find between the warehouse and `metadata` (types included)."""
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), metadata))


def _schema(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    """The warehouse's tables as the database reports them: columns, keys, indexes, constraint names."""
    inspector = sa.inspect(engine)
    schema: dict[str, dict[str, Any]] = {}
    for name in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        schema[name] = {
            "columns": [
                (column["name"], str(column["type"]), column["nullable"], column.get("default"))
                for column in inspector.get_columns(name)
            ],
            "primary_key": inspector.get_pk_constraint(name),
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), index["unique"]) for index in inspector.get_indexes(name)
            ),
            "unique": sorted(
                (unique["name"] or "", tuple(unique["column_names"]))
                for unique in inspector.get_unique_constraints(name)
            ),
            "foreign_keys": sorted(
                (
                    key["name"] or "",
                    tuple(key["constrained_columns"]),
                    key["referred_table"],
                    tuple(key["referred_columns"]),
                )
                for key in inspector.get_foreign_keys(name)
            ),
        }
    return schema


def test_a_warehouse_of_5277557_is_adopted_with_nothing_lost(warehouse_url: str) -> None:
    old = _old_warehouse(warehouse_url)
    _fill(old)
    before = _contents(old)
    stored = sum(len(rows) for rows in before.values())
    assert stored == 28 and len(before) == 12 and all(before.values())
    assert migrations.current(old) is None
    old.dispose()

    engine = warehouse.connect(warehouse_url)  # a worker of this version starts
    assert migrations.current(engine) == migrations.head()
    # Every row and column that was there is there still; later revisions only add.
    assert _contents(engine, only={name: list(rows[0]) for name, rows in before.items()}) == before
    added = _contents(engine, only={"report_versions": ["id"], "report_heads": ["period_id"]})
    assert added == {"report_versions": [], "report_heads": []}
    assert [row["report_hash"] for row in _contents(engine, only={"submissions": ["report_hash"]})["submissions"]] == [
        None
    ]
    assert _drift(engine) == []
    # The catalogue had its history already: nothing backfilled. The next import continues it.
    history = tables.procedure_history.c
    at = datetime(2026, 11, 2, 6, 0)
    changed = [{**row, "online_type": "NONE"} if row["code"] == "1.000001" else row for row in before["procedures"]]
    warehouse.replace_procedures(engine, "danh-muc", "b10", changed, as_of=at)
    with engine.connect() as connection:
        versions = connection.execute(
            sa.select(history.online_type, history.valid_from, history.valid_to)
            .where(history.code == "1.000001")
            .order_by(history.valid_from)
        ).all()
    assert versions == [("PARTIAL", datetime(2026, 9, 1, 6, 0), at), ("NONE", at, None)]
    # Keys keep counting from where the old warehouse stopped (PostgreSQL's sequences came along).
    warehouse.record_quarantine(engine, "b10", "danh-muc", [("x", "rule", "detail")], "extract")
    assert [row["id"] for row in warehouse.quarantined_records(engine, "b10")] == [3]
    assert ledger.get(engine, 1).signature == "header..signature"
    engine.dispose()

    again = warehouse.connect(warehouse_url)  # and the next start changes nothing
    assert migrations.current(again) == migrations.head() and _drift(again) == []
    again.dispose()
    print(f"\n{again.dialect.name}: a 5277557 warehouse with {stored} rows adopted, at {migrations.head()}")


def test_an_older_warehouse_is_adopted_once_by_workers_starting_together(
    warehouse_url: str, writer_processes: multiprocessing.context.BaseContext
) -> None:
    # Before the catalogue history and the signatures: connect used to add both, and backfill.
    old = _old_warehouse(warehouse_url, without_tables=HISTORY_TABLES, without_signature=True)
    _fill(old)
    found = sa.MetaData()
    found.reflect(old)
    kept = {name: list(table.c.keys()) for name, table in found.tables.items()}
    before = _contents(old, kept)
    old.dispose()

    started = datetime.now(LOCAL_TIMEZONE).replace(tzinfo=None)
    returned = writers.run_together(writer_processes, writers.connect, warehouse_url, 1)
    finished = datetime.now(LOCAL_TIMEZONE).replace(tzinfo=None)
    assert list(returned.values()) == [[migrations.head()]] * writers.WRITERS

    engine = warehouse.open_engine(warehouse_url)
    assert _contents(engine, kept) == before
    assert _drift(engine) == []
    assert "signature" in {column["name"] for column in sa.inspect(engine).get_columns("submissions")}
    # The stored catalogue became the first version of each entry, once, imported at the upgrade.
    with engine.connect() as connection:
        history = connection.execute(sa.select(tables.procedure_history)).mappings().all()
        imports = connection.execute(sa.select(tables.catalogue_imports)).mappings().all()
    assert sorted((row["code"], row["online_type"], row["valid_to"]) for row in history) == [
        ("1.000000", "FULL", None),
        ("1.000001", "PARTIAL", None),
        ("1.000002", "NONE", None),
    ]
    [imported] = imports
    assert (imported["source"], imported["batch_id"], imported["entries"]) == ("danh-muc", "b1", 3)
    assert {row["valid_from"] for row in history} == {imported["imported_at"]}
    assert started <= imported["imported_at"] <= finished
    engine.dispose()


def test_revision_0001_is_the_schema_of_5277557(warehouse_url: str) -> None:
    old = _old_warehouse(warehouse_url)
    expected = _schema(old)
    with old.begin() as connection:
        reflected = sa.MetaData()
        reflected.reflect(connection)
        reflected.drop_all(connection)
    assert _schema(old) == {}
    old.dispose()

    engine = warehouse.open_engine(warehouse_url)
    assert migrations.upgrade(engine, "0001") == migrations.Upgrade(None, "0001")
    assert _schema(engine) == expected
    engine.dispose()


def test_head_is_what_the_tables_define(
    warehouse_url: str, writer_processes: multiprocessing.context.BaseContext
) -> None:
    """`alembic check` in a test: a table, column, type, index or key changed in baocao.core.tables
    without a revision that makes the change fails here, on either database."""
    # Two workers starting on an empty warehouse: one creates it, the other finds it made.
    returned = writers.run_together(writer_processes, writers.connect, warehouse_url, 1)
    assert list(returned.values()) == [[migrations.head()]] * writers.WRITERS
    engine = warehouse.open_engine(warehouse_url)
    assert _drift(engine) == []

    # The comparison sees drift: a new table, a new column and a changed type, each without a revision.
    changed = sa.MetaData()
    for table in tables.metadata.sorted_tables:
        table.to_metadata(changed)
    sa.Table("stored_reports", changed, sa.Column("id", sa.Integer, primary_key=True))
    changed.tables["dossiers"].append_column(sa.Column("commune_code", sa.String(32)))
    changed.tables["procedures"].c["name"].type = sa.String(2000)
    found = {
        (difference[0] if isinstance(difference, tuple) else difference[0][0]) for difference in _drift(engine, changed)
    }
    assert found == {"add_table", "add_column", "modify_type"}
    engine.dispose()


def _said(result: Result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_db_upgrade_and_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAOCAO_TEST_CENTRAL_TOKEN", "token")
    config = tmp_path / "baocao.toml"
    config.write_text(
        '[province]\ncode = "H99"\nname = "Tỉnh thử"\n\n[warehouse]\nurl = "sqlite:///var/warehouse.db"\n\n'
        '[registry]\nagencies = "agencies.csv"\n\n'
        '[central]\nurl = "http://127.0.0.1:1/api/v1"\ntoken_env = "BAOCAO_TEST_CENTRAL_TOKEN"\n',
        encoding="utf-8",
    )
    (tmp_path / "var").mkdir()
    url = f"sqlite:///{tmp_path / 'var' / 'warehouse.db'}"
    _old_warehouse(url, without_tables=HISTORY_TABLES).dispose()
    runner = CliRunner()
    head = migrations.head()

    current = runner.invoke(main, ["db", "current", "--config", str(config)])
    assert current.exit_code == 0, current.output
    assert f"revision none, newest {head} (behind: run `baocao db upgrade`)" in _said(current)
    assert migrations.current(warehouse.open_engine(url)) is None  # looking changed nothing

    upgraded = runner.invoke(main, ["db", "upgrade", "--config", str(config)])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"upgraded from no revision to {head}" in _said(upgraded)
    again = runner.invoke(main, ["db", "upgrade", "--config", str(config)])
    assert again.exit_code == 0 and f"at {head} already, nothing to do" in _said(again)
    current = runner.invoke(main, ["db", "current", "--config", str(config)])
    assert f"revision {head}, newest {head} (up to date)" in _said(current)

    # A warehouse a newer version migrated: refused, not used with a schema this code does not know.
    engine = warehouse.open_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    current = runner.invoke(main, ["db", "current", "--config", str(config)])
    assert "revision 9999" in _said(current) and "newer code migrated it" in _said(current)
    refused = runner.invoke(main, ["db", "upgrade", "--config", str(config)])
    assert refused.exit_code == 1 and "does not know" in _said(refused)
