"""ICT_RANKING and EGOV_MATURITY through the same path: stored scores → suite → ledger → the sandbox's rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.errors import DataQualityError
from baocao.core.report import ReportType
from baocao.core.settings import Config
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.simulators.central.server import RunningSandbox, start_in_thread
from baocao.simulators.central.settings import Settings
from baocao.storage import ledger
from baocao.storage import scores as stored_scores
from tests.transforms.test_egov_maturity import gia_lai_2019
from tests.transforms.test_ict_ranking import LAM_DONG_2019

TOKEN = "yearly-token"
REPORTS = """
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


def _registry(*frames: pd.DataFrame) -> str:
    level = {"DEPARTMENT": "PROVINCE", "DISTRICT": "DISTRICT", "COMMUNE": "COMMUNE"}
    lines: dict[str, str] = {}
    for frame in frames:
        for row in frame.itertuples():
            valid_to = "2025-06-30" if row.block == "DISTRICT" else ""
            lines.setdefault(str(row.code), f'{row.code},"{row.name}",{level[str(row.block)]},,{valid_to}')
    return "\n".join(["code,name,level,valid_from,valid_to", *lines.values()]) + "\n"


@pytest.fixture(params=["xml", "json"])
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Config, RunningSandbox]]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'central.db'}", tokens={TOKEN: demo.DEMO_SENDER})
    with start_in_thread(settings) as sandbox:
        for name, value in ((demo.CENTRAL_TOKEN_ENV, TOKEN), (demo.CLIENT_ID_ENV, "x"), (demo.CLIENT_SECRET_ENV, "x")):
            monkeypatch.setenv(name, value)
        path = tmp_path / "baocao.toml"
        demo.write_config(path, onestop_url="http://127.0.0.1:9", central_url=sandbox.base_url, fmt=request.param)
        path.write_text(path.read_text(encoding="utf-8") + REPORTS, encoding="utf-8")
        (tmp_path / "agencies.csv").write_text(_registry(LAM_DONG_2019, gia_lai_2019()), encoding="utf-8")
        yield load_config(path), sandbox


def _publish(config: Config, report_type: ReportType) -> dict[str, object]:
    pipeline.aggregate(config, report_type, "2019")
    pipeline.validate_report(config, report_type, "2019")
    rendered = pipeline.render(config, report_type, "2019")
    assert rendered.submission is not None
    return pipeline.publish(config, rendered.submission.id)


@pytest.mark.parametrize(
    ("report_type", "scores"), [(ReportType.ICT_RANKING, LAM_DONG_2019), (ReportType.EGOV_MATURITY, gia_lai_2019())]
)
def test_yearly_report_is_accepted_by_the_central(
    setup: tuple[Config, RunningSandbox], report_type: ReportType, scores: pd.DataFrame
) -> None:
    config, sandbox = setup
    engine = pipeline.engine_for(config)
    period = pipeline.period_of(config, report_type, "2019")
    stored_scores.store_scores(engine, report_type, period, "test", "b1", scores.to_dict("records"))  # type: ignore[arg-type]
    receipt = _publish(config, report_type)
    assert receipt["status"] == "accepted" and receipt["report_type"] == report_type.value
    listed = requests.get(
        f"{sandbox.base_url}/submissions",
        params={"report_type": report_type.value, "period": "2019"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()
    assert len(listed) == 1
    assert [r["state"] for r in ledger.listing(engine, report_type.value)] == [ledger.State.ACCEPTED]


def test_a_broken_ranking_is_blocked_before_it_is_sent(setup: tuple[Config, RunningSandbox]) -> None:
    config, _ = setup
    engine = pipeline.engine_for(config)
    period = pipeline.period_of(config, ReportType.ICT_RANKING, "2019")
    doubled = pd.concat([LAM_DONG_2019, LAM_DONG_2019.iloc[[0]]])  # the same agency twice in a block
    stored_scores.store_scores(
        engine, ReportType.ICT_RANKING, period, "test", "b1", doubled.drop_duplicates("code").to_dict("records")
    )  # type: ignore[arg-type]
    # validate_report checks the stored report, which aggregate writes from the stored scores.
    pipeline.aggregate(config, ReportType.ICT_RANKING, "2019")
    pipeline.validate_report(config, ReportType.ICT_RANKING, "2019")  # clean data passes
    with engine.begin() as connection:
        connection.execute(
            sa.update(tables.agency_scores).where(tables.agency_scores.c.code == "000.00.10.H99").values(policy=-1)
        )
    pipeline.aggregate(config, ReportType.ICT_RANKING, "2019")
    with pytest.raises(DataQualityError, match="000.00.10.H99"):
        pipeline.validate_report(config, ReportType.ICT_RANKING, "2019")
