"""What was validated is what is sent, for every report type.

aggregate stores the report as a version named by the hash of its content; validate_report approves
that version; render sends exactly the version it is given (the DAG and the CLI pass the one
validate_report returned). New data merged in between changes nothing that is sent, and a rerun after
new data aggregates and validates again before anything new can be rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.errors import FatalError
from baocao.core.report import ReportType
from baocao.core.settings import Config
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.storage import ledger, warehouse
from baocao.storage import scores as stored_scores
from baocao.transforms import diff
from tests.catalogue_fixture import reset_catalogue
from tests.transforms import test_online_services as online
from tests.transforms import test_tthc_aggregation as tthc
from tests.transforms.test_egov_maturity import gia_lai_2019
from tests.transforms.test_ict_ranking import LAM_DONG_2019

CALENDAR_REPORTS = """
[reports.ONLINE_SERVICES]
receiver_code = "000.00.00.G01"
receiver_name = "Văn phòng Chính phủ"
regime = "CALENDAR"
period_type = "MONTH"
sources = []

[reports.SERVICE_INDEX]
receiver_code = "000.00.00.G01"
receiver_name = "Văn phòng Chính phủ"
regime = "CALENDAR"
period_type = "QUARTER"
sources = []

[reports.ICT_RANKING]
receiver_code = "000.00.00.G22"
receiver_name = "Bộ Khoa học và Công nghệ"
regime = "CALENDAR"
period_type = "YEAR"
sources = []

[reports.EGOV_MATURITY]
receiver_code = "000.00.00.G22"
receiver_name = "Bộ Khoa học và Công nghệ"
regime = "CALENDAR"
period_type = "YEAR"
sources = []
"""


def _dossier_registry() -> str:
    return "code,name,level\n" + "".join(f"{a.code},{a.name},{a.level.value}\n" for a in tthc.REGISTRY.agencies)


def _score_registry() -> str:
    level = {"DEPARTMENT": "PROVINCE", "DISTRICT": "DISTRICT", "COMMUNE": "COMMUNE"}
    lines: dict[str, str] = {}
    for frame in (LAM_DONG_2019, gia_lai_2019()):
        for row in frame.itertuples():
            valid_to = "2025-06-30" if row.block == "DISTRICT" else ""
            lines.setdefault(str(row.code), f'{row.code},"{row.name}",{level[str(row.block)]},,{valid_to}')
    return "\n".join(["code,name,level,valid_from,valid_to", *lines.values()]) + "\n"


def _insert_dossiers(config: Config, rows: list[dict[str, object]]) -> None:
    with pipeline.engine_for(config).begin() as connection:
        connection.execute(sa.insert(tables.dossiers), rows)


def _store_scores(config: Config, report_type: ReportType, scores: pd.DataFrame) -> None:
    period = pipeline.period_of(config, report_type, "2019")
    records = scores.to_dict("records")
    stored_scores.store_scores(pipeline.engine_for(config), report_type, period, "test", "b1", records)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    """One report: its period, the data it starts from, and new data that changes it."""

    report_type: ReportType
    period: str
    registry: Callable[[], str]
    load: Callable[[Config], None]
    new_data: Callable[[Config], None]


def _tthc_load(config: Config) -> None:
    _insert_dossiers(config, tthc.DOSSIERS)


def _tthc_new(config: Config) -> None:
    # One more dossier resolved at the department, inside the D09 month 2026-11.
    _insert_dossiers(config, [{**tthc.DOSSIERS[0], "code": "new-01", "received_at": datetime(2026, 11, 1, 9, 0)}])


def _online_load(config: Config) -> None:
    reset_catalogue(pipeline.engine_for(config), online.PROCEDURES, as_of=datetime(2026, 9, 1))
    _insert_dossiers(config, online.DOSSIERS)


def _online_new(config: Config) -> None:
    # P5 (PARTIAL, no dossiers until now) gets an online dossier: one more service with dossiers.
    _insert_dossiers(config, [online.dossier("new-01", online.DEPARTMENT, "1.000005", "ONLINE", "2026-10-20 08:00")])


def _ict_new(config: Config) -> None:
    scores = LAM_DONG_2019.copy()
    scores.loc[scores.index[0], "policy"] = Decimal(str(scores.iloc[0]["policy"])) + 1
    _store_scores(config, ReportType.ICT_RANKING, scores)


def _egov_new(config: Config) -> None:
    scores = gia_lai_2019().copy()
    scores.loc[scores.index[0], "readiness_score"] = Decimal(str(scores.iloc[0]["readiness_score"])) - Decimal("0.5")
    _store_scores(config, ReportType.EGOV_MATURITY, scores)


CASES = [
    Case(ReportType.TTHC_RESULTS, "2026-11", _dossier_registry, _tthc_load, _tthc_new),
    Case(ReportType.ONLINE_SERVICES, "2026-10", _dossier_registry, _online_load, _online_new),
    Case(ReportType.SERVICE_INDEX, "2026-Q4", _dossier_registry, _online_load, _online_new),
    Case(
        ReportType.ICT_RANKING,
        "2019",
        _score_registry,
        lambda config: _store_scores(config, ReportType.ICT_RANKING, LAM_DONG_2019),
        _ict_new,
    ),
    Case(
        ReportType.EGOV_MATURITY,
        "2019",
        _score_registry,
        lambda config: _store_scores(config, ReportType.EGOV_MATURITY, gia_lai_2019()),
        _egov_new,
    ),
]


@dataclass(frozen=True)
class World:
    config: Config
    case: Case
    fmt: str


@pytest.fixture(params=CASES, ids=lambda case: case.report_type.value)
def world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str
) -> Iterator[World]:
    case: Case = request.param
    fmt = "json" if case.report_type in (ReportType.ONLINE_SERVICES, ReportType.EGOV_MATURITY) else "xml"
    for name in (demo.CENTRAL_TOKEN_ENV, demo.CLIENT_ID_ENV, demo.CLIENT_SECRET_ENV):
        monkeypatch.setenv(name, "unused")
    path = tmp_path / "baocao.toml"
    demo.write_config(path, onestop_url="http://127.0.0.1:9", central_url="http://127.0.0.1:9", fmt=fmt)
    text = path.read_text(encoding="utf-8").replace('url = "sqlite:///var/warehouse.db"', f'url = "{warehouse_url}"')
    path.write_text(text + CALENDAR_REPORTS, encoding="utf-8")
    (tmp_path / "agencies.csv").write_text(case.registry(), encoding="utf-8")
    config = load_config(path)
    warehouse.connect(config.warehouse_url)
    case.load(config)
    yield World(config, case, fmt)
    pipeline.engine_for(config).dispose()


def test_new_data_merged_between_validation_and_render_changes_nothing_sent(world: World) -> None:
    config, case = world.config, world.case
    pipeline.aggregate(config, case.report_type, case.period)
    checked = pipeline.validate_report(config, case.report_type, case.period)
    before = pipeline.render(config, case.report_type, case.period, dry_run=True, content_hash=checked.content_hash)

    case.new_data(config)  # another DAG's merge, a backfill, a manual run: lands before render
    rendered = pipeline.render(config, case.report_type, case.period, content_hash=checked.content_hash)

    assert rendered.submission is not None and rendered.submission.report_hash == checked.content_hash
    assert diff.diff(before.payload, rendered.payload, world.fmt) == []
    # The new data does change the report: aggregated again, it is another version with other cells.
    again = pipeline.aggregate(config, case.report_type, case.period)
    assert again.content_hash != checked.content_hash
    pipeline.validate_report(config, case.report_type, case.period)
    fresh = pipeline.render(config, case.report_type, case.period, dry_run=True, content_hash=again.content_hash)
    assert diff.diff(rendered.payload, fresh.payload, world.fmt) != []


def test_a_rerun_after_new_data_validates_again_before_anything_new_is_rendered(world: World) -> None:
    config, case = world.config, world.case
    first = pipeline.aggregate(config, case.report_type, case.period)
    pipeline.validate_report(config, case.report_type, case.period)

    case.new_data(config)
    second = pipeline.aggregate(config, case.report_type, case.period)
    assert second.content_hash != first.content_hash
    with pytest.raises(FatalError, match="has not passed the report suite"):
        pipeline.render(config, case.report_type, case.period, dry_run=True)
    checked = pipeline.validate_report(config, case.report_type, case.period)
    assert checked.content_hash == second.content_hash
    rendered = pipeline.render(config, case.report_type, case.period, dry_run=True)
    stored = pipeline.load_report(config, case.report_type, case.period)
    assert stored.content_hash == second.content_hash and stored.validated
    assert rendered.path.exists()


def test_a_stored_report_changed_after_validation_is_refused(world: World) -> None:
    config, case = world.config, world.case
    pipeline.aggregate(config, case.report_type, case.period)
    checked = pipeline.validate_report(config, case.report_type, case.period)
    with pipeline.engine_for(config).begin() as connection:
        connection.execute(
            sa.update(tables.report_lines)
            .where(tables.report_lines.c.line == 0)
            .values(data=sa.func.replace(tables.report_lines.c.data, ":", ": "))
        )
    with pytest.raises(FatalError, match="no longer matches its hash"):
        pipeline.render(config, case.report_type, case.period, content_hash=checked.content_hash)
    assert ledger.listing(pipeline.engine_for(config)) == []


def test_aggregating_the_same_data_again_keeps_the_validated_version(world: World) -> None:
    config, case = world.config, world.case
    first = pipeline.aggregate(config, case.report_type, case.period)
    pipeline.validate_report(config, case.report_type, case.period)
    again = pipeline.aggregate(config, case.report_type, case.period)
    assert again.content_hash == first.content_hash
    assert pipeline.validated_report(config, case.report_type, case.period).content_hash == first.content_hash


def test_a_period_never_aggregated_is_refused_with_a_clear_error(world: World) -> None:
    config, case = world.config, world.case
    with pytest.raises(FatalError, match="never aggregated"):
        pipeline.validate_report(config, case.report_type, case.period)
    with pytest.raises(FatalError, match="never aggregated"):
        pipeline.report_for_export(config, case.report_type, case.period)


def test_the_case_list_covers_every_report() -> None:
    assert {case.report_type for case in CASES} == set(ReportType)
