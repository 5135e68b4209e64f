"""The 2025 reorganisation: districts end on 2025-06-30, successors carry their work, unit codes are real."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from baocao.core.errors import ConfigurationError
from baocao.core.periods import parse_period
from baocao.core.registry import load_registry
from baocao.transforms.tthc import assemble_tthc_report, reaggregate_onto_current_units

# Đà Lạt (a district-level city) ends; ward Xuân Hương - Đà Lạt (unit 24781, Lâm Đồng) takes over.
REGISTRY_CSV = """code,name,level,valid_from,valid_to,parent,block,successor,unit_code
000.00.01.H99,Sở Tư pháp,PROVINCE,,,,,,
000.01.00.H99,UBND TP. Đà Lạt,DISTRICT,,2025-06-30,,,000.01.05.H99,
000.01.01.H99,UBND phường 1 (cũ),COMMUNE,,2025-06-30,000.01.00.H99,,000.01.05.H99,
000.01.05.H99,UBND phường Xuân Hương - Đà Lạt,COMMUNE,2025-07-01,,,,,24781
"""
COUNTS = [
    "received_total",
    "received_online",
    "received_direct",
    "carried_over",
    "resolved_total",
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "in_progress_total",
    "in_progress_within",
    "in_progress_overdue",
]


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "agencies.csv"
    path.write_text(REGISTRY_CSV, encoding="utf-8")
    return path


def rows(*agencies: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "agency": a,
                "field": "LV-HOTICH",
                "field_name": "Hộ tịch",
                **dict.fromkeys(COUNTS, 0),
                "received_total": 2,
                "carried_over": 2,
                "in_progress_total": 2,
                "in_progress_within": 2,
            }
            for a in agencies
        ]
    )


def test_district_sections_exist_only_before_the_reform(registry_file: Path) -> None:
    registry = load_registry(registry_file)
    before = assemble_tthc_report(rows("000.00.01.H99", "000.01.00.H99"), registry, parse_period("2025-06"))
    assert list(before.loc[before["kind"] == "SECTION", "level"]) == ["PROVINCE", "DISTRICT", "COMMUNE"]
    after = assemble_tthc_report(rows("000.00.01.H99", "000.01.00.H99"), registry, parse_period("2025-08"))
    assert list(after.loc[after["kind"] == "SECTION", "level"]) == ["PROVINCE", "COMMUNE"]
    # Dossiers of the abolished district still open after the reform are reported by its successor.
    moved = after[after["kind"] == "ROW"].set_index("agency")
    assert moved.loc["000.01.05.H99", "carried_over"] == 2


def test_history_reaggregated_onto_todays_units_shows_the_break(registry_file: Path) -> None:
    registry = load_registry(registry_file)
    history = rows("000.01.00.H99", "000.01.01.H99", "000.00.01.H99")
    today = reaggregate_onto_current_units(history, registry, date(2026, 11, 22)).set_index("agency")
    assert today.loc["000.01.05.H99", "received_total"] == 4 and bool(today.loc["000.01.05.H99", "series_break"])
    assert not bool(today.loc["000.00.01.H99", "series_break"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("000.02.00.H99,UBND huyện Lạc Dương,DISTRICT,,,,,,", "must end"),
        ("000.02.01.H99,UBND xã X,COMMUNE,2025-07-01,,,,,99999", "not an administrative unit"),
        ("000.02.02.H99,UBND xã Y,COMMUNE,,,000.99.99.H99,,,", "parent 000.99.99.H99"),
        ("000.02.03.H99,UBND xã Z,COMMUNE,,,,TOWN,,", "block 'TOWN'"),
    ],
)
def test_registry_refuses_what_the_reform_rules_out(registry_file: Path, line: str, message: str) -> None:
    registry_file.write_text(REGISTRY_CSV + line + "\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message):
        load_registry(registry_file)
