"""File sources through the whole pipeline: workbooks, the catalogue export and commune dossier CSVs,
from extract to a submission the central sandbox accepts, and refused files that leave what was stored.

The files are written by `simulators/files.py`; the catalogue is served over HTTP on loopback or read
from a drop folder; the central endpoint is the sandbox on loopback.
"""

from __future__ import annotations

import http.server
import logging
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from baocao.connectors.catalogue_xml import CatalogueError
from baocao.core import tables
from baocao.core.errors import ConfigurationError, DataQualityError, RetriableError
from baocao.core.report import ReportType
from baocao.core.settings import Config
from baocao.reports.scores import read_scores
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.simulators.central.server import RunningSandbox, start_in_thread
from baocao.simulators.central.settings import Settings
from baocao.simulators.files import (
    DISTRICT_SHEET,
    GIA_LAI_2019_EGOV,
    LAM_DONG_2019_ICT,
    CatalogueEntry,
    catalogue_xml,
    commune_csv,
    commune_dossiers,
    sample_catalogue,
    write_egov_workbook,
    write_ict_workbook,
)
from baocao.storage import ledger, warehouse
from baocao.transforms import egov_maturity, ict_ranking
from tests import central_readback

TOKEN = "file-sources-token"
YEARLY_REPORTS = """
[reports.ICT_RANKING]
receiver_code = "000.00.00.G22"
receiver_name = "Bộ Khoa học và Công nghệ"
regime = "CALENDAR"
period_type = "YEAR"
format = "xml"
sources = ["ict"]

[reports.EGOV_MATURITY]
receiver_code = "000.00.00.G22"
receiver_name = "Bộ Khoa học và Công nghệ"
regime = "CALENDAR"
period_type = "YEAR"
format = "json"
sources = ["egov"]

[[sources]]
name = "ict"
kind = "ict_workbook"
path = "workbooks/ict"                 # a drop folder: one workbook per year, the year in its name

[[sources]]
name = "egov"
kind = "egov_workbook"
path = "workbooks/egov-2019.xlsx"      # one file: the year comes from its name when no period is given
"""


@dataclass
class World:
    root: Path
    sandbox: RunningSandbox
    config: Config
    registry: dict[str, str] = field(default_factory=dict)

    def write_registry(self, rows: dict[str, tuple[str, str]]) -> None:
        """code → (name, level); district agencies end with the districts (2025-06-30)."""
        lines = ["code,name,level,valid_from,valid_to"]
        for code, (name, level) in rows.items():
            lines.append(f'{code},"{name}",{level},,{"2025-06-30" if level == "DISTRICT" else ""}')
        (self.root / "agencies.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, warehouse_url: str | None = None) -> World:
    for name, value in ((demo.CENTRAL_TOKEN_ENV, TOKEN), (demo.CLIENT_ID_ENV, "x"), (demo.CLIENT_SECRET_ENV, "x")):
        monkeypatch.setenv(name, value)
    path = tmp_path / "baocao.toml"
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'central.db'}", tokens={TOKEN: demo.DEMO_SENDER})
    sandbox = start_in_thread(settings)
    demo.write_config(path, onestop_url="http://127.0.0.1:9", central_url=sandbox.base_url)
    text = path.read_text(encoding="utf-8")
    if warehouse_url:
        text = text.replace('url = "sqlite:///var/warehouse.db"', f'url = "{warehouse_url}"')
    path.write_text(text + extra, encoding="utf-8")
    world = World(tmp_path, sandbox, load_config(path))
    world.write_registry({})
    return world


@pytest.fixture
def yearly_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    (tmp_path / "workbooks" / "ict").mkdir(parents=True)
    write_ict_workbook(tmp_path / "workbooks" / "ict" / "ict-2019.xlsx")
    (tmp_path / "workbooks" / "ict" / "~$ict-2019.xlsx").write_bytes(b"lock")  # Excel has the file open
    write_egov_workbook(tmp_path / "workbooks" / "egov-2019.xlsx")
    world = _world(tmp_path, monkeypatch, YEARLY_REPORTS)
    level = {"Sở ban ngành": "PROVINCE", "UBND cấp huyện": "DISTRICT", "UBND cấp xã": "COMMUNE"}
    units: dict[str, tuple[str, str]] = {}
    for blocks in (LAM_DONG_2019_ICT, GIA_LAI_2019_EGOV):
        for sheet, entries in blocks.items():
            for entry in entries:
                units.setdefault(entry.code, (entry.name, level[sheet]))
    world.write_registry(units)
    with world.sandbox:
        yield world


SCORE_INPUTS = {
    ReportType.ICT_RANKING: ict_ranking.INPUT_COLUMNS,
    ReportType.EGOV_MATURITY: egov_maturity.INPUT_COLUMNS,
}


def _stored_scores(config: Config, report_type: ReportType, period_id: str) -> list[dict[str, Any]]:
    period = pipeline.period_of(config, report_type, period_id)
    with pipeline.engine_for(config).connect() as connection:
        frame = read_scores(connection, report_type, period, SCORE_INPUTS[report_type])
    return sorted(frame.to_dict("records"), key=lambda row: str(row["code"]))


def _central_listing(world: World, report_type: str, period: str) -> list[dict[str, Any]]:
    return central_readback.submissions(world.sandbox.base_url, TOKEN, report_type, period)


# ---------------------------------------------------------------- yearly workbooks


def test_ict_ranking_from_the_workbook_to_an_accepted_submission(yearly_world: World) -> None:
    config = yearly_world.config
    batch_id = pipeline.extract(config, "ict", period_id="2019")
    assert pipeline.validate_batch(config, batch_id).merged == 0  # scores carry no dossiers
    batch = warehouse.batch_summary(pipeline.engine_for(config), batch_id)
    units = sum(len(entries) for entries in LAM_DONG_2019_ICT.values())
    assert (batch["state"], batch["pulled"], batch["merged"]) == ("STORED", units, units)
    pipeline.aggregate(config, ReportType.ICT_RANKING, "2019")
    pipeline.validate_report(config, ReportType.ICT_RANKING, "2019")
    rendered = pipeline.render(config, ReportType.ICT_RANKING, "2019")
    assert rendered.submission is not None
    receipt = pipeline.publish(config, rendered.submission.id)
    assert receipt["status"] == "accepted" and receipt["report_type"] == "ICT_RANKING"
    assert len(_central_listing(yearly_world, "ICT_RANKING", "2019")) == 1

    report = pipeline.load_report(config, ReportType.ICT_RANKING, "2019").report.tables["report"]
    departments = report[report["block"] == "DEPARTMENT"].sort_values("rank")
    assert [(row.name, Decimal(row.total), int(row.rank)) for row in departments.head(3).itertuples()] == [
        ("Sở Thông tin và Truyền thông", Decimal("465.000"), 1),
        ("Sở Tài chính", Decimal("464.230"), 2),
        ("Sở Giáo dục và Đào tạo", Decimal("462.000"), 3),
    ]
    districts = report[report["block"] == "DISTRICT"].sort_values("rank")
    first = districts.iloc[0]
    assert (first["name"], Decimal(first["total"]), int(first["rank"])) == ("TP. Đà Lạt", Decimal("452.531"), 1)
    assert b"452.531" in rendered.payload and b"465.000" in rendered.payload

    # A rerun of extract replaces the year's scores: still one copy.
    pipeline.extract(config, "ict", period_id="2019")
    assert len(_stored_scores(config, ReportType.ICT_RANKING, "2019")) == units


def test_egov_maturity_through_run_report_takes_the_year_from_the_file_name(yearly_world: World) -> None:
    config = yearly_world.config
    result = pipeline.run_report(config, ReportType.EGOV_MATURITY, "2019")  # extract is given no period
    assert result.receipt["status"] == "accepted"
    assert [r["state"] for r in ledger.listing(pipeline.engine_for(config), "EGOV_MATURITY")] == ["ACCEPTED"]
    summary_table = pipeline.load_report(config, ReportType.EGOV_MATURITY, "2019").report.tables["summary"]
    summary = [(row.block, row.level, int(row.count), str(row.share)) for row in summary_table.itertuples()]
    assert summary == [
        ("DEPARTMENT", "I", 2, "10.00"),
        ("DEPARTMENT", "II", 8, "40.00"),
        ("DEPARTMENT", "III", 5, "25.00"),
        ("DEPARTMENT", "IV", 2, "10.00"),
        ("DEPARTMENT", "UNRANKED", 3, "15.00"),
        ("DISTRICT", "I", 0, "0.00"),
        ("DISTRICT", "II", 0, "0.00"),
        ("DISTRICT", "III", 0, "0.00"),
        ("DISTRICT", "IV", 1, "5.88"),
        ("DISTRICT", "UNRANKED", 16, "94.12"),
    ]


def test_a_refused_workbook_leaves_the_stored_scores_as_they_were(yearly_world: World) -> None:
    config, folder = yearly_world.config, yearly_world.root / "workbooks" / "ict"
    engine = pipeline.engine_for(config)
    pipeline.extract(config, "ict", period_id="2019")
    before = _stored_scores(config, ReportType.ICT_RANKING, "2019")

    # One score typed as text that is no number: the whole workbook is refused, naming sheet, row and rule.
    workbook = load_workbook(folder / "ict-2019.xlsx")
    workbook["Sở ban ngành"]["E10"] = "năm mươi"
    workbook.save(folder / "ict-2019.xlsx")
    with pytest.raises(DataQualityError) as refused:
        pipeline.extract(config, "ict", period_id="2019")
    message = str(refused.value)
    assert message.startswith("source ict: file refused, the ICT_RANKING 2019 scores stored before are kept")
    assert "rule 'ict.score_invalid' failed on ict ict-2019.xlsx [Sở ban ngành] row 10 (000.00.02.H99)" in message
    assert "Nguồn nhân lực: not a number in Vietnamese format: 'năm mươi'" in message
    assert _stored_scores(config, ReportType.ICT_RANKING, "2019") == before
    with engine.connect() as connection:
        batch = (
            connection.execute(
                sa.select(tables.batches).where(tables.batches.c.source == "ict").order_by(tables.batches.c.started_at)
            )
            .mappings()
            .all()[-1]
        )
    assert (batch["state"], batch["quarantined"]) == ("REJECTED", 1)
    [held] = warehouse.quarantined_records(engine, batch["batch_id"])
    assert (held["stage"], held["rule"]) == ("extract", "ict.score_invalid")

    # A district sheet in a year after the districts were abolished: refused before anything is stored.
    write_ict_workbook(folder / "ict-2026.xlsx", year=2026)
    with pytest.raises(DataQualityError, match="districts were abolished on 2025-07-01"):
        pipeline.extract(config, "ict", period_id="2026")
    assert _stored_scores(config, ReportType.ICT_RANKING, "2026") == []

    # The year must be the period's; a period that is not a year is refused.
    with pytest.raises(ConfigurationError, match="one workbook for 2025 expected .* found none"):
        pipeline.extract(config, "ict", period_id="2025")
    with pytest.raises(ConfigurationError, match="no period given"):
        pipeline.extract(config, "ict")
    with pytest.raises(ConfigurationError, match="the workbook egov-2019.xlsx is for 2019, not 2020"):
        pipeline.extract(config, "egov", period_id="2020")
    with pytest.raises(ConfigurationError, match="workbooks hold a year; 2019-Q1 is not one"):
        pipeline.extract(config, "egov", period_id="2019-Q1")


def test_an_unscored_unit_is_refused_with_its_row(yearly_world: World) -> None:
    config = yearly_world.config
    pipeline.extract(config, "egov")
    before = _stored_scores(config, ReportType.EGOV_MATURITY, "2019")
    path = yearly_world.root / "workbooks" / "egov-2019.xlsx"
    workbook = load_workbook(path)
    workbook[DISTRICT_SHEET]["D9"] = None  # the second district's readiness score
    workbook.save(path)
    with pytest.raises(DataQualityError, match=r"\[UBND cấp huyện\] row 9 \(000.02.00.H99\): missing Điểm"):
        pipeline.extract(config, "egov")
    assert _stored_scores(config, ReportType.EGOV_MATURITY, "2019") == before


# ---------------------------------------------------------------- catalogue over HTTP and commune CSVs


class _Export(http.server.BaseHTTPRequestHandler):
    """The provincial TTHC database's catalogue export: whatever `files` holds at the moment."""

    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        data = self.files.get(self.path)
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server API
        pass


@pytest.fixture
def export_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    files: dict[str, bytes] = {}
    handler = type("Export", (_Export,), {"files": files})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()
    httpd.server_close()


COMMUNES = {"000.01.02.H99": "Xã Tà Nung", "000.01.03.H99": "Xã Xuân Thọ"}
DEPARTMENTS = {"000.00.01.H99": "Sở Tư pháp", "000.00.02.H99": "Sở Tài chính"}


def _online_services_sources(catalogue_url: str, catalogue_folder: str | None = None) -> str:
    where = f'path = "{catalogue_folder}"' if catalogue_folder else f'base_url = "{catalogue_url}"'
    return f"""
[reports.ONLINE_SERVICES]
receiver_code = "000.00.00.G01"
receiver_name = "Văn phòng Chính phủ"
regime = "D09"
period_type = "MONTH"
sources = ["catalogue", "communes"]

[[sources]]
name = "catalogue"
kind = "catalogue_xml"
{where}

[[sources]]
name = "communes"
kind = "commune_csv"
path = "drop/communes"
"""


def _commune_rows() -> dict[str, list[dict[str, Any]]]:
    return {code: commune_dossiers(60, seed=number, agency_code=code) for number, code in enumerate(COMMUNES, 1)}


def _catalogue_for(rows: dict[str, list[dict[str, Any]]]) -> list[CatalogueEntry]:
    """Each commune's procedures (those its dossiers name, FULL/PARTIAL/NONE in turn) and two departments'."""
    entries = []
    for agency, dossiers in rows.items():
        for index, code in enumerate(sorted({row["ma_thutuc"] for row in dossiers})):
            online = ("FULL", "PARTIAL", "NONE")[index % 3]
            entries.append(CatalogueEntry(code, f"Thủ tục {code}", "LV-HOTICH", agency, online, index % 2 == 0, False))
    return entries + [entry for entry in sample_catalogue(6) if entry.agency_code in DEPARTMENTS]


def _expected_online_services(
    rows: dict[str, list[dict[str, Any]]], entries: list[CatalogueEntry], left_out: set[str]
) -> dict[str, int]:
    """ONLINE_SERVICES totals by hand: dossiers received 2019-10-15 ≤ t < 2019-11-15, not cancelled."""
    start, end = datetime(2019, 10, 15), datetime(2019, 11, 15)
    counted = [
        row
        for dossiers in rows.values()
        for row in dossiers
        if start <= row["ngay_nhan"] < end and row["trang_thai"] != 9 and row["ma_hoso"] not in left_out
    ]
    online = {(e.code, e.agency_code): e.online_type for e in entries if e.online_type != "NONE"}
    used = {(row["ma_thutuc"], row["ma_donvi"]) for row in counted} & set(online)
    return {
        "authority_count": len(entries),
        "full_process_count": sum(1 for e in entries if e.online_type == "FULL"),
        "services_with_dossiers": len(used),
        "full_process_with_dossiers": sum(1 for key in used if online[key] == "FULL"),
        "dossiers_total": len(counted),
        "dossiers_online": sum(1 for row in counted if row["hinhthuc_nop"] == 2),
        "fee_dossiers": sum(1 for row in counted if row["co_phi"]),
    }


def _all_text(engine: sa.Engine) -> str:
    """Every value stored anywhere in the warehouse, as one text to search."""
    parts = []
    with engine.connect() as connection:
        for table in tables.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                for value in row:
                    parts.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return "\n".join(parts)


def test_catalogue_and_commune_exports_publish_online_services(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    export_server: tuple[str, dict[str, bytes]],
    warehouse_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    base, files = export_server
    rows = _commune_rows()
    entries = _catalogue_for(rows)
    files["/export/DanhMucTTHC.xml"] = catalogue_xml(entries)
    drop = tmp_path / "drop" / "communes"
    drop.mkdir(parents=True)
    first, second = list(COMMUNES)
    # Two communes, two legacy encodings; one row of the first with a date the reader refuses.
    bad_row = rows[first][0]
    faulty = {**bad_row, "ngay_nhan": bad_row["ngay_nhan"].strftime("%d/%m/%Y")}  # no time of day
    (drop / "xa-ta-nung.csv").write_bytes(commune_csv([faulty, *rows[first][1:]], "tcvn3"))
    (drop / "xa-xuan-tho.csv").write_bytes(commune_csv(rows[second], "cp1258"))
    world = _world(tmp_path, monkeypatch, _online_services_sources(f"{base}/export/DanhMucTTHC.xml"), warehouse_url)
    world.write_registry(
        {**{c: (n, "COMMUNE") for c, n in COMMUNES.items()}, **{c: (n, "PROVINCE") for c, n in DEPARTMENTS.items()}}
    )
    caplog.set_level(logging.DEBUG)
    with world.sandbox:
        result = pipeline.run_report(world.config, "ONLINE_SERVICES", "2019-11")
        total = pipeline.report_summary(world.config, "ONLINE_SERVICES", "2019-11")
    assert result.receipt["status"] == "accepted"
    catalogue_batch, commune_batch = result.prepared.batches
    assert commune_batch.merged == 119
    engine = pipeline.engine_for(world.config)
    assert warehouse.batch_summary(engine, commune_batch.batch_id)["quarantined"] == 1  # the refused row
    assert warehouse.batch_summary(engine, catalogue_batch.batch_id)["state"] == "STORED"
    expected = _expected_online_services(rows, entries, left_out={bad_row["ma_hoso"]})
    assert {name: total[name] for name in expected} == expected

    [held] = [r for r in warehouse.quarantined_records(engine, commune_batch.batch_id) if r["stage"] == "extract"]
    assert held["record_key"] == f"commune xa-ta-nung.csv row 2 (ma_hoso {bad_row['ma_hoso']})"
    assert held["detail"].startswith("ngay_nhan: not a time in dd/mm/yyyy HH:MM form")
    with engine.connect() as connection:
        names = connection.execute(sa.select(tables.dossiers.c.field_name).distinct()).scalars().all()
    assert any(name and not name.isascii() for name in names)  # TCVN3 and Windows-1258 decoded to NFC text
    assert all(name == unicodedata.normalize("NFC", name) for name in names if name)

    # Nothing personal reached the warehouse or the logs.
    personal = [row[column] for dossiers in rows.values() for row in dossiers for column in ("so_cccd", "dien_thoai")]
    personal += [row["ho_ten"] for dossiers in rows.values() for row in dossiers]
    stored, logged = _all_text(engine), caplog.text
    assert not [value for value in personal if value in stored or value in logged]


def test_a_hostile_or_faulty_catalogue_leaves_the_stored_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, export_server: tuple[str, dict[str, bytes]]
) -> None:
    base, files = export_server
    good = sample_catalogue(12)
    files["/c.xml"] = catalogue_xml(good)
    world = _world(tmp_path, monkeypatch, _online_services_sources(f"{base}/c.xml"))
    engine = pipeline.engine_for(world.config)

    def stored() -> list[tuple[str, str, str]]:
        with engine.connect() as connection:
            table = tables.procedures
            query = sa.select(table.c.code, table.c.agency_code, table.c.online_type).order_by(table.c.code)
            return [tuple(row) for row in connection.execute(query)]

    with world.sandbox:
        pipeline.extract(world.config, "catalogue")
        before = stored()
        assert len(before) == 12

        files["/c.xml"] = b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><DanhMucTTHC>&x;</DanhMucTTHC>'
        with pytest.raises(CatalogueError, match="has a DOCTYPE declaration"):
            pipeline.extract(world.config, "catalogue")
        assert stored() == before

        wrong = "<ThuTuc><MaTTHC>9.9</MaTTHC><TenTTHC>Mức lạ</TenTTHC><MaLinhVuc>LV</MaLinhVuc>"
        wrong += "<MaDonVi>000.00.01.H99</MaDonVi><MucDo>MUC_4</MucDo><CoPhi>0</CoPhi>"
        wrong += "<ThanhToanTrucTuyen>0</ThanhToanTrucTuyen></ThuTuc>"
        files["/c.xml"] = catalogue_xml(sample_catalogue(15), extra_records=[wrong])
        with pytest.raises(DataQualityError) as refused:
            pipeline.extract(world.config, "catalogue")
        assert "source catalogue: file refused, the catalogue stored before is kept" in str(refused.value)
        assert "rule 'catalogue.online_type' failed on" in str(refused.value)
        assert "ThuTuc #16 (MaTTHC 9.9): unknown MucDo 'MUC_4'" in str(refused.value)
        assert stored() == before

        files["/c.xml"] = b"<DanhMucTTHC/>"
        with pytest.raises(DataQualityError, match="catalogue.empty"):
            pipeline.extract(world.config, "catalogue")
        assert stored() == before

        # A procedure another source already publishes (here: the one-stop system's own catalogue).
        other = CatalogueEntry("1.999999", "Thủ tục khác", "LV-HOTICH", "000.00.03.H99", "FULL", False, False)
        warehouse.replace_procedures(
            engine, "onestop", "b0", [{"code": other.code, "agency_code": other.agency_code, "online_type": "FULL"}]
        )
        files["/c.xml"] = catalogue_xml([*good, other])
        with pytest.raises(DataQualityError, match="MaTTHC 1.999999, MaDonVi 000.00.03.H99: already published by"):
            pipeline.extract(world.config, "catalogue")
        assert [row for row in stored() if row not in before] == [(other.code, other.agency_code, "FULL")]


def test_a_catalogue_split_over_a_drop_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop = tmp_path / "drop" / "catalogue"
    drop.mkdir(parents=True)
    entries = sample_catalogue(20)
    (drop / "so-ban-nganh.xml").write_bytes(catalogue_xml(entries[:12]))
    (drop / "ubnd-xa.XML").write_bytes(catalogue_xml(entries[12:]))
    (drop / ".ubnd-xa.xml.partial").write_bytes(b"<DanhMucTTHC><ThuTuc>")  # an upload in progress: not read
    world = _world(tmp_path, monkeypatch, _online_services_sources("", catalogue_folder="drop/catalogue"))
    engine = pipeline.engine_for(world.config)
    with world.sandbox:
        pipeline.extract(world.config, "catalogue")
        with engine.connect() as connection:
            assert connection.execute(sa.select(sa.func.count()).select_from(tables.procedures)).scalar_one() == 20
        # The same procedure of the same agency in two files: refused, naming both files.
        (drop / "ubnd-xa.XML").write_bytes(catalogue_xml(entries[11:]))
        with pytest.raises(DataQualityError) as refused:
            pipeline.extract(world.config, "catalogue")
        assert f"ubnd-xa.XML (MaTTHC {entries[11].code}, MaDonVi {entries[11].agency_code})" in str(refused.value)
        assert "also listed in so-ban-nganh.xml" in str(refused.value)
        with engine.connect() as connection:
            assert connection.execute(sa.select(sa.func.count()).select_from(tables.procedures)).scalar_one() == 20


def test_an_undecodable_commune_export_is_refused_and_the_stored_dossiers_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = tmp_path / "drop" / "communes"
    drop.mkdir(parents=True)
    rows = commune_dossiers(30)
    (drop / "xa.csv").write_bytes(commune_csv(rows, "utf-8-sig"))
    world = _world(tmp_path, monkeypatch, _online_services_sources("http://127.0.0.1:9/c.xml"))
    world.write_registry({"000.01.02.H99": ("Xã Tà Nung", "COMMUNE")})
    engine = pipeline.engine_for(world.config)
    with world.sandbox:
        assert pipeline.validate_batch(world.config, pipeline.extract(world.config, "communes")).merged == 30
        with engine.connect() as connection:
            before = pd.DataFrame(connection.execute(sa.select(tables.dossiers)).mappings().all())

        (drop / "xa.csv").write_bytes(commune_csv(rows, "vni"))  # VNI: no converter, refused with the reason
        with pytest.raises(DataQualityError) as refused:
            pipeline.extract(world.config, "communes")
        assert "rule 'commune.encoding' failed on commune xa.csv (whole file)" in str(refused.value)
        assert "looks like VNI" in str(refused.value)
        with engine.connect() as connection:
            after = pd.DataFrame(connection.execute(sa.select(tables.dossiers)).mappings().all())
        pd.testing.assert_frame_equal(before, after)

        # The catalogue server is down: a retriable error (Airflow retries the task), nothing stored.
        with pytest.raises(RetriableError, match="catalogue http://127.0.0.1:9/c.xml: ConnectionError"):
            pipeline.extract(world.config, "catalogue")
        with engine.connect() as connection:
            states = connection.execute(
                sa.select(tables.batches.c.state).where(tables.batches.c.source == "catalogue")
            ).scalars()
            assert list(states) == ["FAILED"]
