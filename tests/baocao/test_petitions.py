"""Petitions for real: the feedback system's export → extract → `petitions` → SERVICE_INDEX → the sandbox.

Period 2026-Q3 (CALENDAR) runs from 2026-07-01 00:00 to 2026-09-30 24:00 local time. The petition
metrics (transforms/service_index.py, module docstring): PETITIONS_ANSWERED_ON_TIME counts the
petitions *due* in the period, answered no later than the deadline (a date-only deadline runs to
24:00; an answer dated without an hour is on time on the deadline's day); PETITION_SATISFACTION
counts the petitions *answered* in the period with a rating, rated 1. Score = 6 × numerator /
denominator, 3 decimals half-up; no petitions: 6. Every expected number is worked out by hand below.
"""

from __future__ import annotations

import csv
import json
import logging
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from baocao.cli import main
from baocao.core import tables
from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.errors import ConfigurationError, DataQualityError
from baocao.core.periods import parse_period
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators.files import bad_petitions, petition_export, petitions, write_petition_export
from baocao.simulators.onestop.expected_results import (
    RESOLVED_EARLY,
    RESOLVED_ON_TIME,
    RESOLVED_TOTAL,
    period_instants,
    tthc_results_total,
)
from baocao.simulators.onestop.generator import generate
from baocao.simulators.onestop.records import Channel, Status
from baocao.simulators.onestop.server import Settings as OneStopSettings
from baocao.storage import ledger, warehouse
from baocao.transforms.service_index import assemble_service_index, input_columns, ruleset_for
from tests.baocao.test_pipeline_e2e import SECRET, running
from tests.baocao.test_pipeline_file_sources import World, _central_listing, _world
from tests.baocao.test_service_index_publish import END, PERIOD, START, _province_metrics, service_index_report

A = "000.00.01.H99"  # a department with petitions on every edge
B = "000.00.02.H99"  # a department whose export gives answers without the hour
UNREGISTERED = "000.00.77.H99"
PETITION_SOURCE = """
[[sources]]
name = "phan-anh"
kind = "petition_csv"
path = "drop/petitions"
"""
EXPORT = "phan-anh-2026-10-05.csv"
PETITION_METRICS = ("PETITIONS_ANSWERED_ON_TIME", "PETITION_SATISFACTION")


def petition(
    code: str | None,
    agency: str,
    received: date,
    due: date | None,
    answered: date | None = None,
    satisfied: int | str | None = None,
) -> dict[str, Any]:
    return {
        "ma_phan_anh": code,
        "ma_donvi": agency,
        "ngay_nhan": received,
        "han_tra_loi": due,
        "ngay_tra_loi": answered,
        "hai_long": satisfied,
    }


# A, PETITIONS_ANSWERED_ON_TIME — due in Q3: 0001, 0002, 0003, 0004, 0007 → 5; on time: 0001, 0002,
# 0004 → 3; 3/5 → 3.600. (0005 and 0008 are due in Q4, 0006 in Q2.)
# A, PETITION_SATISFACTION — answered in Q3: 0001 (1), 0002 (0), 0003 (1), 0004 (unrated),
# 0005 (1), 0006 (0) → 5 rated, 3 satisfied; 3/5 → 3.600.
# B — on time 2/2 → 6.000; satisfaction: PA-B-1 rated 1, PA-B-2 unrated → 1/1 → 6.000.
# Province — on time (3 + 2)/(5 + 2) = 5/7 → 6 × 5/7 = 4.2857… → 4.286; satisfaction
# (3 + 1)/(5 + 1) = 4/6 → 4.000 (sums of the agencies' counts, not an average of their scores).
GOOD = [
    # due 10/07 (a date: until 24:00), answered 16:30 that day: on time; satisfied
    petition("0001", A, datetime(2026, 7, 1, 8), date(2026, 7, 10), datetime(2026, 7, 10, 16, 30), 1),
    # due on the period's last day, answered at 23:00 of it: on time, in Q3; not satisfied
    petition("0002", A, datetime(2026, 9, 20, 9), date(2026, 9, 30), datetime(2026, 9, 30, 23), 0),
    # due 11/08 17:00, answered 17:30 the same day: late (a later hour of the due day); satisfied
    petition("0003", A, datetime(2026, 8, 1, 8), datetime(2026, 8, 11, 17), datetime(2026, 8, 11, 17, 30), 1),
    # answered before the deadline, not rated: on time; unknown for satisfaction
    petition("0004", A, date(2026, 8, 15), date(2026, 8, 25), datetime(2026, 8, 24, 10)),
    # due in Q4 (05/10), answered in Q3: satisfaction only
    petition("0005", A, datetime(2026, 9, 25, 8), date(2026, 10, 5), datetime(2026, 9, 28, 10), 1),
    # due in Q2, answered late in Q3: satisfaction only (not satisfied)
    petition("0006", A, date(2026, 6, 10), date(2026, 6, 20), date(2026, 7, 2), 0),
    # due in Q3 and unanswered when the export was made: not on time
    petition("0007", A, datetime(2026, 9, 15, 8), date(2026, 9, 25)),
    # due at 01/10 00:00, i.e. 24:00 of the end date: Q4; unanswered: counted nowhere in Q3
    petition("0008", A, datetime(2026, 9, 25, 8), datetime(2026, 10, 1, 0, 0)),
    # answered on a date without the hour: on time (days compared); satisfied
    petition("PA-B-1", B, date(2026, 9, 1), date(2026, 9, 11), date(2026, 9, 5), 1),
    # due 12/09 08:00, answered "12/09/2026" without the hour: on time on the deadline's day; unrated
    petition("PA-B-2", B, datetime(2026, 9, 2, 8), datetime(2026, 9, 12, 8), date(2026, 9, 12)),
]
BAD = [
    *bad_petitions(A, datetime(2026, 8, 3, 9)),  # rows 12–14: no code, answer before receipt, hai_long "có"
    petition("PA-X", UNREGISTERED, date(2026, 8, 1), date(2026, 8, 11)),  # row 15
    petition("PA-NO-DEADLINE", A, date(2026, 8, 1), None),  # row 16
]
# (record key, rule): what the quarantine names, the reader's rejections first, in row order.
QUARANTINED = [
    (f"petition {EXPORT} row 12", "petition.code_missing"),
    (f"petition {EXPORT} row 14 (ma_phan_anh PA-LOI-HAI-LONG)", "petition.satisfied_invalid"),
    (f"petition {EXPORT} (ma_phan_anh PA-LOI-TRA-LOI-TRUOC)", "petition.answered_before_received"),
    (f"petition {EXPORT} (ma_phan_anh PA-X)", "petition.agency_unknown"),
    (f"petition {EXPORT} (ma_phan_anh PA-NO-DEADLINE)", "petition.deadline_missing"),
]
EXPECTED = {
    A: {"PETITIONS_ANSWERED_ON_TIME": (3, 5, "3.600"), "PETITION_SATISFACTION": (3, 5, "3.600")},
    B: {"PETITIONS_ANSWERED_ON_TIME": (2, 2, "6.000"), "PETITION_SATISFACTION": (1, 1, "6.000")},
    "province": {"PETITIONS_ANSWERED_ON_TIME": (5, 7, "4.286"), "PETITION_SATISFACTION": (4, 6, "4.000")},
}


def petition_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str | None) -> World:
    """The sandbox on loopback and a configuration whose SERVICE_INDEX has the petition source only."""
    report = service_index_report("xml").replace('sources = ["onestop"]', 'sources = ["phan-anh"]')
    world = _world(tmp_path, monkeypatch, report + PETITION_SOURCE, warehouse_url)
    world.write_registry({A: ("Sở Tư pháp", "PROVINCE"), B: ("Sở Tài chính", "PROVINCE")})
    return world


def metric_lines(config: Any) -> dict[str, dict[str, tuple[int | None, int | None, str]]]:
    """Entity ("province" for the province) → petition metric → (numerator, denominator, score), as the
    period aggregated from what the warehouse holds now stores them."""
    pipeline.aggregate(config, "SERVICE_INDEX", PERIOD)
    report = pipeline.load_report(config, "SERVICE_INDEX", PERIOD).report.tables["report"]
    lines = report[report["metric"].isin(PETITION_METRICS)].to_dict("records")
    found: dict[str, dict[str, tuple[int | None, int | None, str]]] = {}
    for line in lines:
        entity = "province" if line["kind"] == "PROVINCE" else str(line["agency"])
        counts = (line["numerator"], line["denominator"])
        found.setdefault(entity, {})[line["metric"]] = (*counts, str(line["score"]))
    return found


def stored_petitions(config: Any) -> list[dict[str, Any]]:
    with pipeline.engine_for(config).connect() as connection:
        rows = connection.execute(sa.select(tables.petitions).order_by(tables.petitions.c.code)).mappings()
        return [dict(row) for row in rows]


def quarantined(config: Any, batch_id: str) -> list[tuple[str, str]]:
    rows = warehouse.quarantined_records(pipeline.engine_for(config), batch_id)
    return [(row["record_key"], row["rule"]) for row in rows]


def test_petitions_from_the_export_to_the_index_and_the_sandbox(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = petition_world(tmp_path, monkeypatch, warehouse_url)
    config = world.config
    with world.sandbox:
        # Configured, but nothing delivered yet: the metrics are not connected (never "no petitions").
        before = metric_lines(config)
        assert before["province"] == {metric: (None, None, "0.000") for metric in PETITION_METRICS}

        write_petition_export(tmp_path / "drop" / "petitions" / EXPORT, GOOD, bad_rows=BAD)
        assert (tmp_path / "drop" / "petitions" / EXPORT).read_bytes().startswith(b"\xef\xbb\xbfma_phan_anh;")
        ran = CliRunner().invoke(
            main, ["run", "--report", "SERVICE_INDEX", "--period", PERIOD, "--config", str(config.path)]
        )
        assert ran.exit_code == 0, ran.output
        assert '"status": "accepted"' in ran.output
        [listed] = _central_listing(world, "SERVICE_INDEX", PERIOD)
        [stored] = ledger.listing(pipeline.engine_for(config), "SERVICE_INDEX")
        assert stored["state"] == ledger.State.ACCEPTED and listed["receipt_id"] == stored["receipt_id"]

        assert metric_lines(config) == EXPECTED
        # What was sent: the province's petition metrics with their counts, as computed.
        with pipeline.engine_for(config).connect() as connection:
            payload = connection.execute(sa.select(tables.submissions.c.payload)).scalar_one()
        code, sent = _province_metrics(payload, "xml")
        assert code == config.province_code
        assert {m: (sent[m]["numerator"], sent[m]["denominator"], sent[m]["score"]) for m in PETITION_METRICS} == {
            "PETITIONS_ANSWERED_ON_TIME": ("5", "7", "4.286"),
            "PETITION_SATISFACTION": ("4", "6", "4.000"),
        }

        # The batch: 15 rows read, 10 stored, 5 quarantined with their rules; the run went on.
        engine = pipeline.engine_for(config)
        with engine.connect() as connection:
            batch = connection.execute(sa.select(tables.batches).where(tables.batches.c.kind == "petition_csv"))
            [first] = [dict(row) for row in batch.mappings()]
        assert (first["state"], first["pulled"], first["merged"], first["quarantined"]) == ("STORED", 15, 10, 5)
        assert quarantined(config, first["batch_id"]) == QUARANTINED
        details = [row["detail"] for row in warehouse.quarantined_records(engine, first["batch_id"])]
        assert details[:2] == ["missing ma_phan_anh", "hai_long must be 1, 0 or empty, got 'có'"]

        # Stored as read: codes with their leading zeros, date-only deadlines to the end of the day,
        # date-only answers at the start of theirs, unrated as NULL, and no column for anything personal.
        rows = {row["code"]: row for row in stored_petitions(config)}
        assert sorted(rows) == ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "PA-B-1", "PA-B-2"]
        assert rows["0001"]["due_at"] == datetime(2026, 7, 10, 23, 59, 59, 999999)
        assert rows["0003"]["due_at"] == datetime(2026, 8, 11, 17, 0)
        assert rows["PA-B-2"]["answered_at"] == datetime(2026, 9, 12, 0, 0)
        assert (rows["0004"]["satisfied"], rows["0007"]["answered_at"]) == (None, None)
        assert (rows["0002"]["satisfied"], rows["0001"]["source"]) == (False, "phan-anh")
        assert {column.name for column in tables.petitions.columns} == {
            "code",
            "agency_code",
            "received_at",
            "due_at",
            "answered_at",
            "satisfied",
            "source",
            "batch_id",
        }

        # A re-export replaces: 0007 is now answered on 24/09 (on time) and rated satisfied; the
        # petitions the new file leaves out stay stored. A: on time 4/5 → 4.800; answered in Q3 and
        # rated 6, satisfied 4 → 4.000. Province: 6/7 → 5.142857… → 5.143; 5/7 → 4.285714… → 4.286.
        write_petition_export(
            tmp_path / "drop" / "petitions" / EXPORT,
            [petition("0007", A, datetime(2026, 9, 15, 8), date(2026, 9, 25), datetime(2026, 9, 24, 15), 1)],
            bad_rows=[],
        )
        again = pipeline.validate_batch(config, pipeline.extract(config, "phan-anh", period_id=PERIOD))
        assert again.quarantined == 0
        rows = {row["code"]: row for row in stored_petitions(config)}
        assert len(rows) == 10 and rows["0007"]["answered_at"] == datetime(2026, 9, 24, 15)
        assert rows["0007"]["batch_id"] == again.batch_id != rows["0001"]["batch_id"]
        replaced = {
            A: {"PETITIONS_ANSWERED_ON_TIME": (4, 5, "4.800"), "PETITION_SATISFACTION": (4, 6, "4.000")},
            B: EXPECTED[B],
            "province": {"PETITIONS_ANSWERED_ON_TIME": (6, 7, "5.143"), "PETITION_SATISFACTION": (5, 7, "4.286")},
        }
        assert metric_lines(config) == replaced

        # A file refused whole (its header lacks columns), then one whose every row is rejected: the
        # batch stops with the reason in the quarantine, and every stored petition stays as it was.
        kept = stored_petitions(config)
        (tmp_path / "drop" / "petitions" / EXPORT).write_text("ma_phan_anh;ma_donvi\n0001;000.00.01.H99\n")
        with pytest.raises(DataQualityError, match="petition.header"):
            pipeline.extract(config, "phan-anh", period_id=PERIOD)
        write_petition_export(tmp_path / "drop" / "petitions" / EXPORT, [], bad_rows=BAD[:2])
        with pytest.raises(DataQualityError, match="petition.no_sound_rows"):
            pipeline.extract(config, "phan-anh", period_id=PERIOD)
        with engine.connect() as connection:
            states = connection.execute(
                sa.select(tables.batches.c.batch_id, tables.batches.c.state)
                .where(tables.batches.c.kind == "petition_csv")
                .order_by(tables.batches.c.started_at)
            ).all()
        assert [state for _, state in states] == ["STORED", "STORED", "REJECTED", "REJECTED"]
        assert [rule for _, rule in quarantined(config, states[2][0])] == ["petition.header"]
        assert [rule for _, rule in quarantined(config, states[3][0])] == [
            "petition.no_sound_rows",
            "petition.code_missing",
            "petition.answered_before_received",
        ]
        assert stored_petitions(config) == kept
        assert metric_lines(config) == replaced


def test_an_export_without_petitions_gives_full_points_once_delivered(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = petition_world(tmp_path, monkeypatch, warehouse_url)
    config = world.config
    with world.sandbox:
        write_petition_export(tmp_path / "drop" / "petitions" / EXPORT, [], bad_rows=[])  # the header alone
        result = pipeline.run_report(config, "SERVICE_INDEX", PERIOD)
        assert result.receipt["status"] == "accepted"
    # Connected with zero petitions: `zero_denominator: full`, 6 points each (DOMAIN.md).
    assert metric_lines(config) == {"province": {metric: (0, 0, "6.000") for metric in PETITION_METRICS}}
    assert pipeline.report_summary(config, "SERVICE_INDEX", PERIOD)["SATISFACTION"] == "12.000"


def test_no_personal_data_reaches_the_warehouse_or_the_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world = petition_world(tmp_path, monkeypatch, None)
    config = world.config
    folder = tmp_path / "drop" / "petitions"
    folder.mkdir(parents=True)
    # A feedback system that adds the petitioner's name and phone: both columns are dropped at the
    # door, also from the rejected row's quarantine entry.
    (folder / EXPORT).write_text(
        "\ufeffma_phan_anh;ma_donvi;ho_ten;dien_thoai;ngay_nhan;han_tra_loi;ngay_tra_loi;hai_long\n"
        "0001;000.00.01.H99;Nguyễn Văn An;0912345678;01/07/2026;10/07/2026;05/07/2026;1\n"
        "0002;000.00.01.H99;Trần Thị Bình;0987654321;01/07/2026;10/07/2026;05/07/2026;có\n",
        encoding="utf-8",
    )
    with world.sandbox, caplog.at_level(logging.DEBUG):
        batch_id = pipeline.extract(config, "phan-anh", period_id=PERIOD)
    engine = pipeline.engine_for(config)
    stored = pd.read_sql_table("petitions", engine).to_string() + pd.read_sql_table("quarantine", engine).to_string()
    assert [row["code"] for row in stored_petitions(config)] == ["0001"]
    assert quarantined(config, batch_id) == [
        (f"petition {EXPORT} row 3 (ma_phan_anh 0002)", "petition.satisfied_invalid")
    ]
    for personal in ("Nguyễn Văn An", "0912345678", "Trần Thị Bình", "0987654321"):
        assert personal not in stored and personal not in caplog.text

    # A mapping that would bring a personal field in is refused, naming the field (not its values).
    toml = config.path.read_text(encoding="utf-8")
    config.path.write_text(toml + '\n[sources.fields]\nagency_code = "ho_ten"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="personal field"):
        pipeline.extract(load_config(config.path), "phan-anh", period_id=PERIOD)


def _petition_counts(rows: list[dict[str, Any]], agency: str | None = None) -> dict[str, tuple[int, int]]:
    """A plain reading of the generated petitions (all with times), independent of the warehouse query."""
    start, end = datetime(2026, 7, 1), datetime(2026, 10, 1)
    mine = [row for row in rows if agency is None or row["ma_donvi"] == agency]
    due = [row for row in mine if start <= row["han_tra_loi"] < end]
    on_time = [row for row in due if row["ngay_tra_loi"] is not None and row["ngay_tra_loi"] <= row["han_tra_loi"]]
    answered = [row for row in mine if row["ngay_tra_loi"] is not None and start <= row["ngay_tra_loi"] < end]
    rated = [row for row in answered if row["hai_long"] is not None]
    return {
        "PETITIONS_ANSWERED_ON_TIME": (len(on_time), len(due)),
        "PETITION_SATISFACTION": (sum(row["hai_long"] == 1 for row in rated), len(rated)),
    }


def test_service_index_with_petitions_from_the_simulators_to_an_accepted_submission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As test_service_index_publish, with the petition source beside the one-stop system (JSON)."""
    dataset = generate(seed=23, volume=1500, start=START, end=END)
    cut = datetime(2026, 10, 5, 4, 0, tzinfo=LOCAL_TIMEZONE)
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=cut)
    first, second = (agency.code for agency in dataset.agencies[:2])
    rows = [
        *petitions(40, seed=11, agency_code=first, start=datetime(2026, 6, 20, 8), days=100),
        *petitions(25, seed=12, agency_code=second, start=datetime(2026, 6, 20, 8), days=100),
    ]
    for number, row in enumerate(rows):  # the generator numbers per agency: make the codes unique
        row["ma_phan_anh"] = f"PA-{number:05d}"
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        (tmp_path / "drop" / "petitions").mkdir(parents=True)
        (tmp_path / "drop" / "petitions" / EXPORT).write_bytes(
            petition_export(rows, bad_rows=bad_petitions(first), delimiter=",")
        )
        report = service_index_report("json").replace('sources = ["onestop"]', 'sources = ["onestop", "phan-anh"]')
        config.path.write_text(config.path.read_text(encoding="utf-8") + report + PETITION_SOURCE, encoding="utf-8")
        config = load_config(config.path)
        result = pipeline.run_report(config, "SERVICE_INDEX", PERIOD)
        assert result.receipt["status"] == "accepted" and result.receipt["report_type"] == "SERVICE_INDEX"
        [petition_batch] = [batch for batch in result.prepared.batches if batch.batch_id.startswith("phan-anh-")]
        assert petition_batch.quarantined == 3
        rendered = pipeline.render(config, "SERVICE_INDEX", PERIOD)
        by_agency = metric_lines(config)

    _, sent = _province_metrics(rendered.payload, "json")
    expected = _petition_counts(rows)
    assert all(denominator > 0 for _, denominator in expected.values())  # the fixture does exercise them
    for metric, (numerator, denominator) in expected.items():
        assert (sent[metric]["numerator"], sent[metric]["denominator"]) == (numerator, denominator)
        score = (Decimal(6 * numerator) / denominator).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
        assert sent[metric]["score"] == float(score)
    for agency in (first, second):
        counts = {metric: line[:2] for metric, line in by_agency[agency].items()}
        assert counts == _petition_counts(rows, agency)
    # The other unconnected sources stay unconnected.
    assert "numerator" not in sent["NATIONAL_PORTAL_SYNC"] and sent["NATIONAL_PORTAL_SYNC"]["score"] == 0


def test_a_merged_communes_dossiers_and_petitions_count_for_its_successor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulators' commune with the most dossiers merged on 2026-07-01 into a new commune, which has
    no records of its own: the one-stop system and the feedback system still write the old code. The
    new commune's line carries them (counts by a plain reading of the simulators' data), the old code
    has no line in the report nor in what is sent, and the new commune counts as having reported."""
    dataset = generate(seed=23, volume=1500, start=START, end=END)
    cut = datetime(2026, 10, 5, 4, 0, tzinfo=LOCAL_TIMEZONE)
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=cut)
    current = [d for d in dataset.current_dossiers(cut) if not d.deleted and d.status is not Status.CANCELLED]
    communes = [agency.code for agency in dataset.agencies if agency.level.value == "COMMUNE"]
    old = max(communes, key=lambda code: (sum(d.agency_code == code for d in current), code))
    new = "000.99.01.H99"  # the commune formed on 2026-07-01
    assert new not in {agency.code for agency in dataset.agencies}
    rows = petitions(30, seed=13, agency_code=old, start=datetime(2026, 6, 20, 8), days=100)
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        with (tmp_path / "agencies.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["code", "name", "level", "valid_from", "valid_to", "successor"])
            for agency in dataset.agencies:
                ended = ("2026-06-30", new) if agency.code == old else ("", "")
                writer.writerow([agency.code, agency.name, agency.level.value, "", *ended])
            writer.writerow([new, "UBND xã mới", "COMMUNE", "2026-07-01", "", ""])
        (tmp_path / "drop" / "petitions").mkdir(parents=True)
        (tmp_path / "drop" / "petitions" / EXPORT).write_bytes(petition_export(rows, bad_rows=[], delimiter=","))
        report = service_index_report("json").replace('sources = ["onestop"]', 'sources = ["onestop", "phan-anh"]')
        config.path.write_text(config.path.read_text(encoding="utf-8") + report + PETITION_SOURCE, encoding="utf-8")
        config = load_config(config.path)
        result = pipeline.run_report(config, "SERVICE_INDEX", PERIOD)
        assert result.receipt["status"] == "accepted"
        [petition_batch] = [batch for batch in result.prepared.batches if batch.batch_id.startswith("phan-anh-")]
        assert petition_batch.quarantined == 0  # the old code is in the registry
        assert [row["agency_code"] for row in stored_petitions(config)] == [old] * 30  # stored as written
        rendered = pipeline.render(config, "SERVICE_INDEX", PERIOD)
        by_agency = metric_lines(config)
        found = pipeline.load_report(config, "SERVICE_INDEX", PERIOD).report.completeness

    assert old not in by_agency and new in by_agency
    sent = {agency["code"]: agency for agency in json.loads(rendered.payload)["body"]["service_index"]["agencies"]}
    assert old not in sent and new in sent
    metrics = {m["id"]: (m.get("numerator"), m.get("denominator")) for g in sent[new]["groups"] for m in g["metrics"]}
    # The old commune's records, read one by one (the new commune has none of its own).
    start, end = period_instants(START, END)
    mine = [d for d in current if d.agency_code == old]
    received = [d for d in mine if start <= d.received_at < end]
    resolved = [
        d for d in mine if d.status is Status.RESOLVED and d.finished_at is not None and start <= d.finished_at < end
    ]
    tthc = tthc_results_total(mine, START, END)
    procedures = [p for p in dataset.procedures if p.agency_code == old]
    assert received and resolved and procedures  # the fixture does exercise them
    assert metrics["ONLINE_DOSSIERS"] == (sum(d.channel is Channel.ONLINE for d in received), len(received))
    assert metrics["PAPERS_DIGITIZED"] == (sum(d.digitized for d in received), len(received))
    assert metrics["RESULT_ELECTRONIC"] == (sum(d.result_electronic for d in resolved), len(resolved))
    assert metrics["RESOLVED_ON_TIME"] == (
        int(tthc[RESOLVED_EARLY] or 0) + int(tthc[RESOLVED_ON_TIME] or 0),
        int(tthc[RESOLVED_TOTAL] or 0),
    )
    assert metrics["OFFERED_ONLINE"] == (sum(p.online_type.value != "NONE" for p in procedures), len(procedures))
    expected = _petition_counts(rows)
    assert all(denominator > 0 for _, denominator in expected.values())
    assert {metric: metrics[metric] for metric in PETITION_METRICS} == expected
    # Completeness: the old commune is not expected in Q3; the new one is, and has reported.
    assert new not in found.missing and old not in found.missing
    assert found.expected == len(dataset.agencies)  # one commune ended, one began


def test_answered_petitions_all_unrated_are_not_no_petitions() -> None:
    """An agency whose two answered petitions carry no rating: satisfaction is unknown (no counts, 0),
    not "no petitions" (6); nothing was due in the period, so on time is 0/0 → 6.000."""
    period = parse_period(PERIOD, "CALENDAR")
    ruleset = ruleset_for(period)
    columns = input_columns(ruleset, petitions=True)
    row = dict.fromkeys(columns, 0) | {"agency": A, "petitions_answered_satisfied_unknown": 2}
    report = assemble_service_index(pd.DataFrame([row], columns=list(columns)), period, "000.00.00.H99", ruleset)
    lines = report[report["metric"].isin(PETITION_METRICS)]
    found = {(line["kind"], line["metric"]): line for line in lines.to_dict("records")}
    for kind in ("AGENCY", "PROVINCE"):
        satisfaction, on_time = found[(kind, "PETITION_SATISFACTION")], found[(kind, "PETITIONS_ANSWERED_ON_TIME")]
        assert (satisfaction["numerator"], satisfaction["connected"], str(satisfaction["score"])) == (
            None,
            False,
            "0.000",
        )
        assert (on_time["numerator"], on_time["denominator"], str(on_time["score"])) == (0, 0, "6.000")
    # Without the petition columns (no petition source delivered), both are not connected.
    plain = assemble_service_index(pd.DataFrame(columns=list(input_columns(ruleset))), period, "000.00.00.H99", ruleset)
    assert not plain[plain["metric"].isin(PETITION_METRICS)]["connected"].any()
