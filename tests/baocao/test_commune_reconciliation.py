"""Dossiers deleted in a commune's `hoso` table disappear from its next export (department-systems.md
§2, §4): the pipeline marks them deleted, for the communes whose files came only, and never when a row
of the file cannot be read or the source sends changed rows only (`full_export = false`).

Everything runs the real path: the exports are written by `simulators/files.py` into a drop folder,
`pipeline.extract` reads them, `pipeline.validate_batch` merges them and `pipeline.aggregate` stores
the TTHC_RESULTS rows, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.errors import ConfigurationError, DataQualityError
from baocao.core.settings import Config
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators.files import HOSO_COLUMNS, commune_csv, commune_dossiers
from baocao.storage import warehouse

TOKEN_ENV = "RECONCILIATION_CENTRAL_TOKEN"
COMMUNE_X = "000.01.02.H99"
COMMUNE_Y = "000.01.03.H99"
PERIOD = "2019-11"  # D09: 15/10/2019 – 14/11/2019
PERSONAL = ("ho_ten", "so_cccd", "dien_thoai")


def _config_text(warehouse_url: str, source_options: str = "") -> str:
    return f"""
[province]
code = "000.00.00.H99"
name = "UBND tỉnh Mẫu"

[paths]
data_dir = "var"

[warehouse]
url = "{warehouse_url}"

[registry]
agencies = "agencies.csv"

[central]
url = "http://127.0.0.1:9"
token_env = "{TOKEN_ENV}"

[reports.TTHC_RESULTS]
receiver_code = "000.00.00.G01"
receiver_name = "Văn phòng Chính phủ"
regime = "D09"
period_type = "MONTH"
sources = ["communes"]

[[sources]]
name = "communes"
kind = "commune_csv"
path = "drop/communes"
{source_options}
"""


@dataclass
class World:
    config: Config
    drop: Path

    def export(self, files: dict[str, bytes]) -> str:
        """Replace the drop folder's content by `files` and run extract; returns the batch id."""
        for old in self.drop.iterdir():
            old.unlink()
        for name, data in files.items():
            (self.drop / name).write_bytes(data)
        return pipeline.extract(self.config, "communes")

    def load(self, files: dict[str, bytes]) -> str:
        batch_id = self.export(files)
        pipeline.validate_batch(self.config, batch_id)
        return batch_id

    def deleted(self) -> dict[str, bool]:
        d = tables.dossiers.c
        with pipeline.engine_for(self.config).connect() as connection:
            return {row.code: row.deleted for row in connection.execute(sa.select(d.code, d.deleted))}

    def received(self) -> dict[str, int]:
        """TTHC_RESULTS received_total per agency for the period, as the pipeline's aggregate stores it."""
        pipeline.aggregate(self.config, "TTHC_RESULTS", PERIOD)
        report = pipeline.load_report(self.config, "TTHC_RESULTS", PERIOD).report.tables["report"]
        rows = report[report["kind"] == "ROW"]
        return {str(agency): int(total) for agency, total in rows.groupby("agency")["received_total"].sum().items()}


def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str, source_options: str = "") -> World:
    monkeypatch.setenv(TOKEN_ENV, "not-used")
    drop = tmp_path / "drop" / "communes"
    drop.mkdir(parents=True)
    (tmp_path / "agencies.csv").write_text(
        f'code,name,level\n{COMMUNE_X},"Xã Tà Nung",COMMUNE\n{COMMUNE_Y},"Xã Xuân Thọ",COMMUNE\n', encoding="utf-8"
    )
    path = tmp_path / "baocao.toml"
    path.write_text(_config_text(warehouse_url, source_options), encoding="utf-8")
    return World(load_config(path), drop)


def _dossiers(agency: str, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` dossiers of the commune, all received in the period and still in progress at its end:
    each counts once in received_total (applicants fictitious, as the simulator writes them)."""
    rows = []
    for number, row in enumerate(commune_dossiers(count, seed=seed, agency_code=agency)):
        received = datetime(2019, 10, 20, 8, 0) + timedelta(days=number)
        rows.append(
            {
                **row,
                "ngay_nhan": received,
                "ngay_hen_tra": received + timedelta(days=10),
                "ngay_tra": None,
                "trang_thai": 2,
                "ngay_capnhat": received,
            }
        )
    return rows


def _csv(rows: Iterable[dict[str, Any]], extra_lines: Sequence[str] = ()) -> bytes:
    return commune_csv(list(rows), "utf-8", extra_lines=extra_lines)


def _line(row: dict[str, Any], **changes: str) -> str:
    """One raw export line for the row (the simulator's formatting), with some cells replaced."""
    data = commune_csv([row]).decode("utf-8").splitlines()[1].split(";")
    for column, value in changes.items():
        data[HOSO_COLUMNS.index(column)] = value
    return ";".join(data)


def _personal(*groups: Iterable[dict[str, Any]]) -> list[str]:
    return [str(row[column]) for rows in groups for row in rows for column in PERSONAL]


def _marked_lines(caplog: pytest.LogCaptureFixture, batch_id: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if batch_id in record.getMessage() and "marked deleted" in record.getMessage()
    ]


def test_a_dossier_gone_from_its_communes_export_is_deleted_and_no_longer_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = _world(tmp_path, monkeypatch, warehouse_url)
    a, b, c = x = _dossiers(COMMUNE_X, 3, seed=1)
    [d] = y = _dossiers(COMMUNE_Y, 1, seed=2)
    caplog.set_level(logging.INFO)
    first = world.load({"xa-ta-nung.csv": _csv(x), "xa-xuan-tho.csv": _csv(y)})
    assert _marked_lines(caplog, first) == [
        f"source communes: batch {first}: 0 dossier(s) no longer in the exports of 2 agency(ies) marked deleted "
        "(0 agency(ies) not compared: rows without a readable code)"
    ]
    assert world.deleted() == {row["ma_hoso"]: False for row in (a, b, c, d)}
    assert world.received() == {COMMUNE_X: 3, COMMUNE_Y: 1}

    # Export 2: commune X only, without B (deleted in its table); commune Y sent nothing this time.
    second = world.load({"xa-ta-nung.csv": _csv([a, c])})
    assert world.deleted() == {a["ma_hoso"]: False, b["ma_hoso"]: True, c["ma_hoso"]: False, d["ma_hoso"]: False}
    assert world.received() == {COMMUNE_X: 2, COMMUNE_Y: 1}
    assert _marked_lines(caplog, second) == [
        f"source communes: batch {second}: 1 dossier(s) no longer in the exports of 1 agency(ies) marked deleted "
        "(0 agency(ies) not compared: rows without a readable code)"
    ]
    d_ = tables.dossiers.c
    with pipeline.engine_for(world.config).connect() as connection:
        marked_by = connection.execute(sa.select(d_.batch_id).where(d_.code == b["ma_hoso"])).scalar_one()
    assert marked_by == second  # the batch that saw it gone

    # Nothing personal, and not the deleted dossier's code, reached the log.
    assert b["ma_hoso"] not in "\n".join(_marked_lines(caplog, second))
    assert not [value for value in _personal(x, y) if value in caplog.text]


def test_a_dossier_that_moved_to_another_communes_file_is_not_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str
) -> None:
    world = _world(tmp_path, monkeypatch, warehouse_url)
    a, b = x = _dossiers(COMMUNE_X, 2, seed=1)
    world.load({"xa-ta-nung.csv": _csv(x)})
    # B is now listed in commune Y's file (transferred, or the exports were split differently).
    world.load({"xa-ta-nung.csv": _csv([a]), "xa-xuan-tho.csv": _csv([{**b, "ma_donvi": COMMUNE_Y}])})
    assert world.deleted() == {a["ma_hoso"]: False, b["ma_hoso"]: False}
    assert world.received() == {COMMUNE_X: 1, COMMUNE_Y: 1}


def test_a_row_without_a_readable_code_leaves_its_files_communes_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = _world(tmp_path, monkeypatch, warehouse_url)
    a, b, c = x = _dossiers(COMMUNE_X, 3, seed=1)
    d, e = y = _dossiers(COMMUNE_Y, 2, seed=2)
    world.load({"xa-ta-nung.csv": _csv(x), "xa-xuan-tho.csv": _csv(y)})

    # X's file lacks B but has a row without ma_hoso (it may be B); Y's file is clean and lacks E.
    caplog.set_level(logging.INFO)
    second = world.load(
        {
            "xa-ta-nung.csv": _csv([a, c], extra_lines=[_line(b, ma_hoso="")]),
            "xa-xuan-tho.csv": _csv([d]),
        }
    )
    assert world.deleted() == {
        a["ma_hoso"]: False,
        b["ma_hoso"]: False,
        c["ma_hoso"]: False,
        d["ma_hoso"]: False,
        e["ma_hoso"]: True,
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and second in r.getMessage()]
    assert warnings == [
        f"source communes: batch {second}: xa-ta-nung.csv has 1 row(s) without a readable dossier code; deleted "
        "dossiers of its 1 agency(ies) are not looked for in this batch (a deleted dossier cannot be told from "
        "an unreadable row)"
    ]
    assert _marked_lines(caplog, second) == [
        f"source communes: batch {second}: 1 dossier(s) no longer in the exports of 1 agency(ies) marked deleted "
        "(1 agency(ies) not compared: rows without a readable code)"
    ]
    # The unreadable row itself is quarantined by the reader, as before.
    quarantined = warehouse.quarantined_records(pipeline.engine_for(world.config), second)
    assert [r["record_key"] for r in quarantined] == ["commune xa-ta-nung.csv row 4"]
    assert world.received() == {COMMUNE_X: 3, COMMUNE_Y: 1}

    # A row with the wrong number of fields has no code either.
    third = world.load({"xa-ta-nung.csv": _csv([a], extra_lines=["1;2;3"])})
    assert world.deleted()[c["ma_hoso"]] is False
    assert any("xa-ta-nung.csv has 1 row(s) without a readable dossier code" in m for m in caplog.messages)
    assert _marked_lines(caplog, third)[0].startswith(f"source communes: batch {third}: 0 dossier(s)")


def test_a_rejected_row_with_a_code_still_counts_as_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str
) -> None:
    world = _world(tmp_path, monkeypatch, warehouse_url)
    a, b, c = x = _dossiers(COMMUNE_X, 3, seed=1)
    world.load({"xa-ta-nung.csv": _csv(x)})
    # B's row now has a date the reader refuses, and C is gone: B stays (stored version), C is deleted.
    second = world.load({"xa-ta-nung.csv": _csv([a], extra_lines=[_line(b, ngay_nhan="20/10/2019")])})
    quarantined = warehouse.quarantined_records(pipeline.engine_for(world.config), second)
    assert [r["record_key"] for r in quarantined] == [f"commune xa-ta-nung.csv row 3 (ma_hoso {b['ma_hoso']})"]
    assert world.deleted() == {a["ma_hoso"]: False, b["ma_hoso"]: False, c["ma_hoso"]: True}
    assert world.received() == {COMMUNE_X: 2}


def test_a_refused_file_stops_the_batch_and_marks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str
) -> None:
    world = _world(tmp_path, monkeypatch, warehouse_url)
    a, b = x = _dossiers(COMMUNE_X, 2, seed=1)
    y = _dossiers(COMMUNE_Y, 1, seed=2)
    world.load({"xa-ta-nung.csv": _csv(x), "xa-xuan-tho.csv": _csv(y)})
    with pytest.raises(DataQualityError, match="commune.encoding"):
        world.export({"xa-ta-nung.csv": _csv([a]), "xa-xuan-tho.csv": commune_csv(y, "vni")})
    assert not any(world.deleted().values())


def test_full_export_false_marks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = _world(tmp_path, monkeypatch, warehouse_url, "full_export = false")
    assert world.config.source("communes").full_export is False
    a, b, c = x = _dossiers(COMMUNE_X, 3, seed=1)
    world.load({"xa-ta-nung.csv": _csv(x)})
    caplog.set_level(logging.INFO)
    # Changed rows only: A changed (now resolved), B and C did not, so they are not in the file.
    changed = {**a, "trang_thai": 4, "ngay_tra": a["ngay_nhan"] + timedelta(days=1)}
    changed["ngay_capnhat"] = changed["ngay_tra"]
    second = world.load({"xa-ta-nung.csv": _csv([changed])})
    assert world.deleted() == {a["ma_hoso"]: False, b["ma_hoso"]: False, c["ma_hoso"]: False}
    assert world.received() == {COMMUNE_X: 3}
    assert (
        f"source communes: batch {second}: full_export = false (exports hold changed rows only): "
        "no dossier marked deleted"
    ) in caplog.messages


def test_a_dossier_listed_again_by_a_later_export_is_live_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str
) -> None:
    world = _world(tmp_path, monkeypatch, warehouse_url)
    a, b, c = x = _dossiers(COMMUNE_X, 3, seed=1)
    world.load({"xa-ta-nung.csv": _csv(x)})
    world.load({"xa-ta-nung.csv": _csv([a, c])})
    assert world.deleted()[b["ma_hoso"]] is True
    assert world.received() == {COMMUNE_X: 2}

    # The row is back, unchanged (same ngay_capnhat): the merge takes the export's deleted=False.
    third = world.load({"xa-ta-nung.csv": _csv(x)})
    assert world.deleted() == {row["ma_hoso"]: False for row in x}
    assert world.received() == {COMMUNE_X: 3}
    d = tables.dossiers.c
    with pipeline.engine_for(world.config).connect() as connection:
        assert connection.execute(sa.select(d.batch_id).where(d.code == b["ma_hoso"])).scalar_one() == third

    # Changed since (a later ngay_capnhat): live, with the new version.
    resolved = {**b, "trang_thai": 4, "ngay_tra": b["ngay_nhan"] + timedelta(days=2)}
    resolved["ngay_capnhat"] = resolved["ngay_tra"]
    world.load({"xa-ta-nung.csv": _csv([a, c])})
    assert world.deleted()[b["ma_hoso"]] is True
    world.load({"xa-ta-nung.csv": _csv([a, resolved, c])})
    with pipeline.engine_for(world.config).connect() as connection:
        row = connection.execute(sa.select(d.deleted, d.status).where(d.code == b["ma_hoso"])).one()
    assert (row.deleted, row.status) == (False, "RESOLVED")


def test_full_export_and_agency_in_file_name_are_commune_csv_options_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert _world(tmp_path, monkeypatch, url).config.source("communes").full_export is True  # the default
    path = tmp_path / "other.toml"
    monkeypatch.setenv("OTHER_DB_URL", "sqlite:///x.db")

    def refused(text: str, problem: str) -> None:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigurationError, match=problem):
            load_config(path)

    other = '\n[[sources]]\nname = "so"\nkind = "sql_legacy"\nurl_env = "OTHER_DB_URL"\n'
    refused(_config_text(url) + other + "full_export = true\n", r"\(source so\): full_export applies to commune_csv")
    refused(
        _config_text(url, 'full_export = "yes"'), r"\(source communes\): full_export must be true or false, got 'yes'"
    )
    refused(
        _config_text(url) + other + "agency_in_file_name = '(?P<agency>.+)'\n",
        r"\(source so\): agency_in_file_name applies to commune_csv",
    )


BY_NAME = r"agency_in_file_name = '^(?P<agency>\d{3}\.\d{2}\.\d{2}\.H\d{2})'"


def test_a_header_only_export_deletes_its_communes_dossiers_when_the_file_name_says_whose_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = _world(tmp_path, monkeypatch, warehouse_url, BY_NAME)
    x = _dossiers(COMMUNE_X, 2, seed=1)
    [d] = y = _dossiers(COMMUNE_Y, 1, seed=2)
    world.load({f"{COMMUNE_X}-2019-11.csv": _csv(x), f"{COMMUNE_Y}-2019-11.csv": _csv(y)})
    assert world.received() == {COMMUNE_X: 2, COMMUNE_Y: 1}
    caplog.set_level(logging.INFO)
    # Commune X deleted every dossier in its table: its export is the header line alone.
    second = world.load({f"{COMMUNE_X}-2019-12.csv": _csv([]), f"{COMMUNE_Y}-2019-12.csv": _csv(y)})
    assert world.deleted() == {**{row["ma_hoso"]: True for row in x}, d["ma_hoso"]: False}
    assert world.received() == {COMMUNE_Y: 1}
    assert _marked_lines(caplog, second) == [
        f"source communes: batch {second}: 2 dossier(s) no longer in the exports of 2 agency(ies) marked deleted "
        "(0 agency(ies) not compared: rows without a readable code)"
    ]


def test_without_the_file_name_a_header_only_export_names_no_commune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str
) -> None:
    world = _world(tmp_path, monkeypatch, warehouse_url)
    x = _dossiers(COMMUNE_X, 2, seed=1)
    world.load({"xa-ta-nung.csv": _csv(x)})
    world.load({"xa-ta-nung.csv": _csv([])})  # whose table this is cannot be known: nothing marked
    assert world.deleted() == {row["ma_hoso"]: False for row in x}


def test_a_file_whose_name_names_no_commune_is_refused_and_nothing_is_staged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str
) -> None:
    world = _world(tmp_path, monkeypatch, warehouse_url, BY_NAME)
    x = _dossiers(COMMUNE_X, 2, seed=1)
    world.load({f"{COMMUNE_X}.csv": _csv(x)})
    with pytest.raises(DataQualityError) as refused:
        world.export({f"{COMMUNE_X}.csv": _csv(x[:1]), "xa-xuan-tho.csv": _csv([])})
    message = str(refused.value)
    assert "rule 'commune.file_name' failed on commune xa-xuan-tho.csv" in message
    assert "does not match agency_in_file_name" in message
    assert world.deleted() == {row["ma_hoso"]: False for row in x}
    assert world.received() == {COMMUNE_X: 2}


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ("agency_in_file_name = '^(\\d+)'", "has no group named agency"),
        ("agency_in_file_name = '^(?P<agency>[0-9'", "is not a regular expression"),
        ("agency_in_file_name = 3", "must be a regular expression"),
    ],
)
def test_agency_in_file_name_is_checked_when_the_configuration_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, problem: str
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with pytest.raises(ConfigurationError, match=rf"\(source communes\): agency_in_file_name .*{problem}"):
        _world(tmp_path, monkeypatch, url, option)
