"""A poison record is quarantined, never fatal: each one, among good records, through every source kind
and both warehouses. Dates at the ends of the calendar, a 10 MiB field name, NUL, ESC, newline and a
right-to-left override in a code, a list where a record or a value belongs: each is held back at extract
with the rule it breaks (`baocao.core.bounds`), the same on SQLite and PostgreSQL, and the good records
of the batch merge. A catalogue export stores the rest too, keeping the stored entry of a poisoned
procedure; a score workbook is refused whole, naming the rule, and keeps what it stored before (a
ranking without one of its units would be wrong for all).

Department systems are real on loopback: a one-stop-shop API served by `http.server` in a thread, a
legacy `hoso` database in SQLite, export files in drop folders.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.errors import DataQualityError
from baocao.core.settings import Config
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators.files import (
    LAM_DONG_2019_ICT,
    CatalogueEntry,
    catalogue_xml,
    commune_csv,
    commune_dossiers,
    write_ict_workbook,
)
from baocao.simulators.legacy_sql import create_hoso, hoso_table
from baocao.storage import warehouse
from tests.delivery.support import SECRETS_ENV, write_config
from tests.transforms.test_tthc_aggregation import COMMUNE, DEPARTMENT

NOW = datetime(2026, 11, 15, 2, 0)
LEGACY_URL_ENV = "BAOCAO_TEST_POISON_LEGACY_URL"
TEN_MIB = 10 * 2**20
# A code whose poison is what it holds, as the quarantine and the log show it (escaped).
POISON_CODES = {
    "P-NUL\x00": "P-NUL\\x00",
    "P-ESC\x1b[31m": "P-ESC\\x1b[31m",
    "P-NL\nX": "P-NL\\x0aX",
    "P-RLO\u202eX": "P-RLO\\u202eX",
}
CONTROL_CHARACTERS = ("\x00", "\x1b", "\u202e")


def good_dossier(number: int, agency: str = DEPARTMENT) -> dict[str, Any]:
    """A dossier as the one-stop API sends it (the canonical names: the default mapping)."""
    return {
        "code": f"GOOD-{number:03d}",
        "agency_code": agency,
        "procedure_code": "1.000001",
        "field_code": "LV-TUPHAP",
        "field_name": "Tư pháp",
        "channel": "ONLINE",
        "status": "RESOLVED",
        "received_at": "2026-10-20T09:00:00+07:00",
        "due_at": "2026-10-25T17:00:00+07:00",
        "finished_at": "2026-10-24T10:00:00+07:00",
        "updated_at": "2026-10-24T10:00:00+07:00",
        "fee_required": False,
        "paid_online": False,
        "digitized": True,
        "result_electronic": False,
        "applicant": {"name": "Nguyễn Văn A", "id_number": "079123456789"},
    }


def poison_dossiers() -> tuple[list[object], set[tuple[str, str]]]:
    """Poison records of every kind, and the quarantine entries (record key, rule) they must leave."""
    records: list[object] = [
        {**good_dossier(901), "code": "P-9999", "received_at": "9999-12-31T23:59:59Z"},
        {**good_dossier(902), "code": "P-0001", "updated_at": "0001-01-01T00:00:00+08:00"},
        {**good_dossier(903), "code": "P-LONG", "field_name": "x" * TEN_MIB},
        {**good_dossier(904), "code": "P-SHAPE", "field_code": {"ma": "LV-TUPHAP"}},
        {**good_dossier(905), "code": "P-DATE", "due_at": "25/10/2026"},
        # A lone surrogate (JSON "\ud800"): neither Parquet nor PostgreSQL can encode it.
        {**good_dossier(907), "code": "P-SURROGATE", "field_name": "Tư\ud800pháp"},
        ["not", "a", "record"],
    ]
    records += [{**good_dossier(906), "code": code} for code in POISON_CODES]
    expected = {
        ("P-9999", "dossier.date_out_of_range"),
        ("P-0001", "dossier.date_out_of_range"),
        ("P-LONG", "dossier.text_too_long"),
        ("P-SHAPE", "dossier.unknown_shape"),
        ("P-DATE", "dossier.date_invalid"),
        ("P-SURROGATE", "dossier.control_character"),
        ("record #8", "dossier.unknown_shape"),  # its position among the records pulled (after GOOD-001)
    }
    expected |= {(shown, "dossier.control_character") for shown in POISON_CODES.values()}
    return records, expected


@dataclass
class World:
    root: Path
    config_path: Path

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    def run_batch(self, source: str) -> str:
        config = self.config
        batch_id = pipeline.extract(config, source, now=NOW)
        pipeline.validate_batch(config, batch_id)
        return batch_id

    def quarantine(self, batch_id: str) -> set[tuple[str, str]]:
        rows = warehouse.quarantined_records(pipeline.engine_for(self.config), batch_id)
        for row in rows:
            for value in (row["record_key"], row["detail"]):
                assert not any(character in value for character in (*CONTROL_CHARACTERS, "\n")), value
            assert len(row["detail"]) < 1000 and "xxxxxxxxxx" not in row["detail"]
        return {(row["record_key"], row["rule"]) for row in rows if row["stage"] == "extract"}

    def stored(self, table: sa.Table) -> list[dict[str, Any]]:
        with pipeline.engine_for(self.config).connect() as connection:
            return [dict(row) for row in connection.execute(sa.select(table)).mappings()]


class OneStopApi(BaseHTTPRequestHandler):
    """The department's one-stop API on loopback: a token, one page of dossiers, the catalogue."""

    dossiers: list[object] = []  # noqa: RUF012 - set per test on a subclass
    procedures: list[object] = []  # noqa: RUF012

    def _answer(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer({"access_token": "poison-test", "expires_in": 300})

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/dossiers"):
            self._answer({"data": self.dossiers, "next_cursor": None})
        else:
            self._answer({"data": self.procedures})

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def one_stop() -> Iterator[tuple[str, type[OneStopApi]]]:
    handler = type("Api", (OneStopApi,), {"dossiers": [], "procedures": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def world(
    tmp_path: Path,
    warehouse_url: str,
    one_stop: tuple[str, type[OneStopApi]],
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    legacy_url = f"sqlite:///{tmp_path / 'legacy.db'}"
    monkeypatch.setenv(LEGACY_URL_ENV, legacy_url)
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)
    path = write_config(tmp_path, "http://127.0.0.1:9/api/v1", warehouse_url=warehouse_url, onestop_url=one_stop[0])
    for folder in ("communes", "petitions", "catalogue", "workbooks"):
        (tmp_path / folder).mkdir()
    path.write_text(
        path.read_text(encoding="utf-8")
        + f"""
[reports.ICT_RANKING]
receiver_code = "000.00.00.G22"
receiver_name = "Bộ Khoa học và Công nghệ"
regime = "CALENDAR"
period_type = "YEAR"
format = "xml"
sources = ["ict"]

[[sources]]
name = "legacy"
kind = "sql_legacy"
url_env = "{LEGACY_URL_ENV}"

[[sources]]
name = "communes"
kind = "commune_csv"
path = "communes"

[[sources]]
name = "petitions"
kind = "petition_csv"
path = "petitions"

[[sources]]
name = "catalogue"
kind = "catalogue_xml"
path = "catalogue"

[[sources]]
name = "ict"
kind = "ict_workbook"
path = "workbooks"
""",
        encoding="utf-8",
    )
    return World(tmp_path, path)


def test_rest_onestop_quarantines_each_poison_record_and_merges_the_rest(
    world: World, one_stop: tuple[str, type[OneStopApi]]
) -> None:
    poison, expected = poison_dossiers()
    good = [good_dossier(n) for n in range(1, 4)]
    api = one_stop[1]
    api.dossiers = [good[0], *poison, good[1], good[2]]
    good_entry = {"code": "1.000001", "agency_code": DEPARTMENT, "name": "Đăng ký khai sinh", "field_code": "LV"}
    api.procedures = [
        {**good_entry, "online_type": "FULL"},
        {**good_entry, "code": "1.000002", "name": "n" * 1001, "online_type": "FULL"},
        {**good_entry, "code": "1.000\u202e003", "online_type": "FULL"},
    ]
    batch_id = world.run_batch("onestop")

    assert world.quarantine(batch_id) == expected | {
        (f"procedure 1.000002 of {DEPARTMENT}", "catalogue.text_too_long"),
        (f"procedure 1.000\\u202e003 of {DEPARTMENT}", "catalogue.control_character"),
    }
    assert sorted(row["code"] for row in world.stored(tables.dossiers)) == ["GOOD-001", "GOOD-002", "GOOD-003"]
    assert [row["code"] for row in world.stored(tables.procedures)] == ["1.000001"]
    batch = warehouse.batch_summary(pipeline.engine_for(world.config), batch_id)
    assert (batch["state"], batch["pulled"], batch["merged"]) == ("MERGED", 3 + len(poison), 3)


def test_sql_legacy_quarantines_each_poison_row_and_merges_the_rest(world: World) -> None:
    url = f"sqlite:///{world.root / 'legacy.db'}"
    create_hoso(url)

    def row(code: str, **changes: Any) -> dict[str, Any]:
        base = {
            "ma_hoso": code,
            "ma_donvi": DEPARTMENT,
            "ma_thutuc": "1.000001",
            "ma_linhvuc": "LV-TUPHAP",
            "ten_linhvuc": "Tư pháp",
            "hinhthuc_nop": 2,
            "ngay_nhan": datetime(2026, 10, 20, 9),
            "ngay_hen_tra": datetime(2026, 10, 25, 17),
            "ngay_tra": datetime(2026, 10, 24, 10),
            "trang_thai": 4,
            "co_phi": 0,
            "tt_truc_tuyen": 0,
            "da_so_hoa": 1,
            "ho_ten": "Nguyễn Văn A",
            "ngay_capnhat": datetime(2026, 10, 24, 10),
        }
        return {**base, **changes}

    rows = [row(f"GOOD-{n:03d}") for n in range(1, 4)]
    rows += [
        row("P-9999", ngay_hen_tra=datetime(9999, 12, 31, 23, 59, 59)),
        row("P-0001", ngay_nhan=datetime(1, 1, 1)),
        row("P-LONG", ten_linhvuc="x" * TEN_MIB),
        *[row(code) for code in POISON_CODES],
    ]
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.insert(hoso_table(sa.MetaData())), rows)
    engine.dispose()
    batch_id = world.run_batch("legacy")

    assert world.quarantine(batch_id) == {
        ("P-9999", "dossier.date_out_of_range"),
        ("P-0001", "dossier.date_out_of_range"),
        ("P-LONG", "dossier.text_too_long"),
        *[(shown, "dossier.control_character") for shown in POISON_CODES.values()],
    }
    assert sorted(row["code"] for row in world.stored(tables.dossiers)) == ["GOOD-001", "GOOD-002", "GOOD-003"]


def test_commune_csv_quarantines_each_poison_row_and_merges_the_rest(world: World) -> None:
    good = commune_dossiers(count=4, agency_code=COMMUNE, start=datetime(2026, 9, 20, 8))
    base = good[0]
    poison = [
        {**base, "ma_hoso": "P-9999", "ngay_hen_tra": datetime(9999, 12, 31, 23, 59)},
        {**base, "ma_hoso": "P-1900", "ngay_nhan": datetime(1900, 1, 1, 8)},
        {**base, "ma_hoso": "P-LONG", "ten_linhvuc": "x" * 600},
        {**base, "ma_hoso": "P-ESC\x1b[31m"},
        {**base, "ma_hoso": "P-NL\nX"},
        {**base, "ma_hoso": "P-RLO\u202eX"},
        {**base, "ma_hoso": "P-NAME", "ten_linhvuc": "Hộ\x00tịch"},
    ]
    (world.root / "communes" / "xa-01.csv").write_bytes(commune_csv([*good, *poison]))
    batch_id = world.run_batch("communes")

    assert world.quarantine(batch_id) == {
        ("P-9999", "dossier.date_out_of_range"),
        ("P-1900", "dossier.date_out_of_range"),
        ("P-LONG", "dossier.text_too_long"),
        ("P-ESC\\x1b[31m", "dossier.control_character"),
        ("P-NL\\x0aX", "dossier.control_character"),
        ("P-RLO\\u202eX", "dossier.control_character"),
        ("P-NAME", "dossier.control_character"),
    }
    assert sorted(row["code"] for row in world.stored(tables.dossiers)) == sorted(row["ma_hoso"] for row in good)


def test_petition_csv_quarantines_each_poison_row_and_stores_the_rest(world: World) -> None:
    lines = ["ma_phan_anh;ma_donvi;ngay_nhan;han_tra_loi;ngay_tra_loi;hai_long"]
    lines += [f"PA-{n};{DEPARTMENT};01/10/2026;11/10/2026;05/10/2026;1" for n in range(1, 4)]
    lines += [
        f"P-9999;{DEPARTMENT};01/10/2026;31/12/9999;;",
        f"P-1900;{DEPARTMENT};01/01/1900;11/10/2026;;",
        f"{'P' * 101};{DEPARTMENT};01/10/2026;11/10/2026;;",
        f"P-ESC\x1b[31m;{DEPARTMENT};01/10/2026;11/10/2026;;",
        f"P-RLO\u202eX;{DEPARTMENT};01/10/2026;11/10/2026;;",
        f'"P-NL\nX";{DEPARTMENT};01/10/2026;11/10/2026;;',
    ]
    (world.root / "petitions" / "phan-anh.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    batch_id = pipeline.extract(world.config, "petitions", now=NOW)

    where = "petition phan-anh.csv (ma_phan_anh {})"
    quarantined = world.quarantine(batch_id)
    [too_long] = [key for key, rule in quarantined if rule == "petition.text_too_long"]
    assert too_long.startswith(where.format("PPPP")[:-1]) and "characters)" in too_long and len(too_long) <= 100
    assert quarantined - {(too_long, "petition.text_too_long")} == {
        (where.format("P-9999"), "petition.date_out_of_range"),
        (where.format("P-1900"), "petition.date_out_of_range"),
        (where.format("P-ESC\\x1b[31m"), "petition.control_character"),
        (where.format("P-RLO\\u202eX"), "petition.control_character"),
        (where.format("P-NL\\x0aX"), "petition.control_character"),
    }
    assert sorted(row["code"] for row in world.stored(tables.petitions)) == ["PA-1", "PA-2", "PA-3"]


def test_a_poison_catalogue_entry_is_quarantined_the_rest_stored_and_its_stored_entry_kept(world: World) -> None:
    first = [
        CatalogueEntry("1.000001", "Đăng ký khai sinh", "LV-HOTICH", DEPARTMENT, "FULL", False, False),
        CatalogueEntry("1.000002", "Đăng ký khai tử", "LV-HOTICH", DEPARTMENT, "PARTIAL", False, False),
    ]
    export = world.root / "catalogue" / "danh-muc.xml"
    export.write_bytes(catalogue_xml(first))
    pipeline.extract(world.config, "catalogue", now=NOW)
    entries = [
        CatalogueEntry("1.000001", "Đăng ký khai sinh (sửa)", "LV-HOTICH", DEPARTMENT, "FULL", False, False),
        CatalogueEntry("1.000002", "n" * 1001, "LV-HOTICH", DEPARTMENT, "FULL", False, False),
        CatalogueEntry("1.000\u202e003", "Đăng ký kết hôn", "LV-HOTICH", DEPARTMENT, "FULL", False, False),
        CatalogueEntry("1.000004", "Đăng ký giám hộ", "LV-HOTICH", DEPARTMENT, "FULL", False, False),
    ]
    export.write_bytes(catalogue_xml(entries))
    batch_id = pipeline.extract(world.config, "catalogue", now=NOW + timedelta(hours=1))

    assert {rule for _, rule in world.quarantine(batch_id)} == {
        "catalogue.text_too_long",
        "catalogue.control_character",
    }
    stored = {row["code"]: row for row in world.stored(tables.procedures)}
    # The sound entries are stored; the poisoned one of a procedure stored before keeps its old entry;
    # the one whose code is the poison is left out.
    assert sorted(stored) == ["1.000001", "1.000002", "1.000004"]
    assert stored["1.000001"]["name"] == "Đăng ký khai sinh (sửa)"
    assert stored["1.000002"]["name"] == "Đăng ký khai tử" and stored["1.000002"]["online_type"] == "PARTIAL"
    with pipeline.engine_for(world.config).connect() as connection:
        state = connection.execute(
            sa.select(tables.batches.c.state).where(tables.batches.c.batch_id == batch_id)
        ).scalar_one()
    assert state == "STORED"


def test_a_poison_workbook_unit_refuses_the_workbook_naming_the_rule(world: World) -> None:
    blocks = {sheet: tuple(units) for sheet, units in LAM_DONG_2019_ICT.items()}
    sheet = next(iter(blocks))
    first, *rest = blocks[sheet]
    blocks[sheet] = (replace(first, name="Sở\u202e" + "n" * 600), *rest)
    write_ict_workbook(world.root / "workbooks" / "ict-2019.xlsx", blocks=blocks)
    with pytest.raises(DataQualityError) as refused:
        pipeline.extract(world.config, "ict", now=NOW, period_id="2019")
    assert "\u202e" not in str(refused.value)
    with pipeline.engine_for(world.config).connect() as connection:
        [batch_id] = connection.execute(sa.select(tables.batches.c.batch_id)).scalars()
    assert {rule for _, rule in world.quarantine(batch_id)} == {"ict.text_too_long", "ict.control_character"}
    assert world.stored(tables.agency_scores) == []


def test_a_poisoned_update_of_a_stored_commune_dossier_neither_replaces_nor_deletes_it(world: World) -> None:
    good = commune_dossiers(count=3, agency_code=COMMUNE, start=datetime(2026, 9, 20, 8))
    export = world.root / "communes" / "xa-01.csv"
    export.write_bytes(commune_csv(good))
    world.run_batch("communes")
    # The next export lists the same dossiers, one of them now with a deadline in year 9999.
    poisoned = {**good[0], "ngay_hen_tra": datetime(9999, 12, 31, 23, 59), "ngay_capnhat": datetime(2026, 10, 30)}
    export.write_bytes(commune_csv([poisoned, *good[1:]]))
    batch_id = world.run_batch("communes")

    assert world.quarantine(batch_id) == {(good[0]["ma_hoso"], "dossier.date_out_of_range")}
    stored = {row["code"]: row for row in world.stored(tables.dossiers)}
    assert set(stored) == {row["ma_hoso"] for row in good}
    assert not stored[good[0]["ma_hoso"]]["deleted"]  # still in its commune's table: not deleted
    assert stored[good[0]["ma_hoso"]]["due_at"] == good[0]["ngay_hen_tra"]  # the stored version stays
