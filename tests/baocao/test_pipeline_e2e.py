"""The whole pipeline, for real: simulator → extract → validate → aggregate → check → render → publish.

Department system and central endpoint are the project's simulators on loopback; the warehouse is
SQLite (the embedded default) and PostgreSQL (production).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.layouts.tthc import COUNT_COLUMNS
from baocao.core.settings import Config
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.simulators.central.server import start_in_thread as start_sandbox
from baocao.simulators.central.settings import Settings as SandboxSettings
from baocao.simulators.onestop.generator import Dataset, generate, generate_calibrated, write_registry_csv
from baocao.simulators.onestop.server import Faults
from baocao.simulators.onestop.server import Settings as OneStopSettings
from baocao.simulators.onestop.server import start_in_thread as start_onestop
from baocao.storage import ledger, warehouse

TOKEN = "e2e-token"
SECRET = "e2e-secret"


@contextmanager
def running(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dataset: Dataset,
    onestop: OneStopSettings,
    warehouse_url: str | None = None,
) -> Iterator[Config]:
    sandbox_settings = SandboxSettings(
        database_url=f"sqlite:///{tmp_path / 'central.db'}", tokens={TOKEN: demo.DEMO_SENDER}
    )
    with start_onestop(dataset, onestop) as source, start_sandbox(sandbox_settings) as sandbox:
        monkeypatch.setenv(demo.CENTRAL_TOKEN_ENV, TOKEN)
        monkeypatch.setenv(demo.CLIENT_ID_ENV, onestop.client_id)
        monkeypatch.setenv(demo.CLIENT_SECRET_ENV, SECRET)
        path = tmp_path / "baocao.toml"
        demo.write_config(
            path,
            onestop_url=source.base_url,
            central_url=sandbox.base_url,
            retry={"backoff_base_seconds": 0.05, "backoff_max_seconds": 1, "max_attempts": 10},
        )
        if warehouse_url:
            path.write_text(
                path.read_text(encoding="utf-8").replace(
                    'url = "sqlite:///var/warehouse.db"', f'url = "{warehouse_url}"'
                ),
                encoding="utf-8",
            )
        write_registry_csv(dataset, tmp_path / "agencies.csv")
        yield load_config(path)


def central_receipts(config: Config, period: str) -> list[dict[str, object]]:
    response = requests.get(
        f"{config.central.url}/submissions",
        params={"report_type": "TTHC_RESULTS", "period": period},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json())


def test_lam_dong_2019_calibrated_year_reproduces_the_published_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """491,498 received / 475,158 resolved / 470,208 early or on time / 4,950 late / 98.96 %."""
    calibrated = generate_calibrated()
    settings = OneStopSettings(
        client_id="baocao",
        client_secret=SECRET,
        as_of=calibrated.dataset.horizon,
        naive_time_share=0.2,
        nfd_field_name_share=0.2,
    )
    with running(tmp_path, monkeypatch, calibrated.dataset, settings) as config:
        result = pipeline.run_report(config, "TTHC_RESULTS", "2019")
        total = pipeline.report_summary(config, "TTHC_RESULTS", "2019")
        assert (total["received_total"], total["resolved_total"], total["resolved_late"]) == (491_498, 475_158, 4_950)
        assert total["resolved_early"] + total["resolved_on_time"] == 470_208
        assert total["on_time_rate"] == "98.96"
        # Every column of the total, and every row, equals the generator's independent classification.
        assert {k: total[k] for k in COUNT_COLUMNS} == {k: calibrated.expected_total[k] for k in COUNT_COLUMNS}
        report = pipeline.load_report(config, "TTHC_RESULTS", "2019").report.tables["report"]
        rows = report[report["kind"] == "ROW"]
        ours = {(r.agency, r.field): tuple(int(getattr(r, k)) for k in COUNT_COLUMNS) for r in rows.itertuples()}
        theirs = {key: tuple(int(v[k]) for k in COUNT_COLUMNS) for key, v in calibrated.expected_rows.items()}
        assert ours == theirs
        assert result.receipt["status"] == "accepted" and len(central_receipts(config, "2019")) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_faulty_source_incremental_runs_and_exactly_once_publication(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    dataset = generate(seed=3, volume=4000, start=date(2026, 8, 15), end=date(2026, 11, 14))
    cut = datetime(2026, 11, 15, 2, 0)
    settings = OneStopSettings(
        client_id="baocao",
        client_secret=SECRET,
        as_of=cut.replace(tzinfo=LOCAL_TIMEZONE),
        token_ttl_seconds=3,
        naive_time_share=0.3,
        nfd_field_name_share=0.3,
        faults=Faults(
            too_many_requests_share=0.1, unavailable_share=0.1, truncated_share=0.1, retry_after_seconds=1, seed=2
        ),
    )
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    with running(tmp_path, monkeypatch, dataset, settings, url) as config:
        engine = pipeline.engine_for(config)
        with engine.begin() as connection:  # a fresh warehouse for this test on the shared database
            for table in reversed(tables.metadata.sorted_tables):
                connection.execute(sa.delete(table))
        first = pipeline.validate_batch(config, pipeline.extract(config, "onestop", now=cut))
        second = pipeline.validate_batch(config, pipeline.extract(config, "onestop", now=cut))  # overlap: repeats
        assert first.merged > 3000 and second.quarantined == 0
        with engine.connect() as connection:
            stored = connection.execute(sa.select(sa.func.count()).select_from(tables.dossiers)).scalar_one()
        assert stored == len(dataset.current_dossiers(cut.replace(tzinfo=LOCAL_TIMEZONE)))
        for _ in range(2):  # the second run publishes nothing new
            pipeline.aggregate(config, "TTHC_RESULTS", "2026-11")
            pipeline.validate_report(config, "TTHC_RESULTS", "2026-11")
            rendered = pipeline.render(config, "TTHC_RESULTS", "2026-11")
            assert rendered.submission is not None
            pipeline.publish(config, rendered.submission.id)
        assert len(central_receipts(config, "2026-11")) == 1
        assert [row["state"] for row in ledger.listing(engine)] == [ledger.State.ACCEPTED]


def test_bad_records_are_quarantined_with_their_rule_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = generate(seed=5, volume=1500, start=date(2026, 9, 15), end=date(2026, 11, 14))
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=dataset.horizon)
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        # One agency is missing from the registry: its dossiers must be held back, not counted.
        registry = tmp_path / "agencies.csv"
        lines = registry.read_text(encoding="utf-8").splitlines()
        dropped = lines.pop(1).split(",")[0]
        registry.write_text("\n".join(lines) + "\n", encoding="utf-8")
        horizon = dataset.horizon.replace(tzinfo=None)
        summary = pipeline.validate_batch(config, pipeline.extract(config, "onestop", now=horizon))
        held_back = [d for d in dataset.current_dossiers() if d.agency_code == dropped]
        assert summary.quarantined == len(held_back) > 0
        assert any("registry" in rule for rule in summary.failed_rules)
        quarantined = warehouse.quarantined_records(pipeline.engine_for(config), summary.batch_id)
        assert {q["record_key"] for q in quarantined} == {d.code for d in held_back}
        assert all(dropped in q["detail"] for q in quarantined)
        assert Path(str(summary.data_docs)).is_file()


def test_a_second_vendor_dialect_is_connected_by_configuration_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vendor B renames and nests every field and has its own words: only [sources.fields]/[sources.values] change."""
    from baocao.simulators.onestop.server import VENDOR_B

    dataset = generate(seed=13, volume=1500, start=date(2026, 9, 15), end=date(2026, 11, 14))
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=dataset.horizon, dialect=VENDOR_B)
    mapping = "".join(
        f'{canonical} = "{vendor}"\n' for canonical, vendor in VENDOR_B.field_names.items() if canonical != "applicant"
    )
    words = "".join(
        f"\n[sources.values.{column}]\n"
        + "".join(f'"{vendor}" = "{canonical}"\n' for canonical, vendor in table.items())
        for column, table in VENDOR_B.words.items()
    )
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        text = config.path.read_text(encoding="utf-8")
        head, _ = text.split("[sources.fields]")
        config.path.write_text(head + "[sources.fields]\n" + mapping + words, encoding="utf-8")
        vendor_config = load_config(config.path)
        horizon = dataset.horizon.replace(tzinfo=None) + timedelta(seconds=1)  # windows exclude their end
        summary = pipeline.validate_batch(vendor_config, pipeline.extract(vendor_config, "onestop", now=horizon))
        assert summary.quarantined == 0
        pipeline.aggregate(vendor_config, "TTHC_RESULTS", "2026-11")
        total = pipeline.report_summary(vendor_config, "TTHC_RESULTS", "2026-11")
    from baocao.simulators.onestop.expected_results import tthc_results_total

    expected = tthc_results_total(dataset.current_dossiers(), date(2026, 10, 15), date(2026, 11, 14))
    assert {k: total[k] for k in COUNT_COLUMNS} == {k: expected[k] for k in COUNT_COLUMNS}


def test_the_procedure_catalogue_is_stored_whole_with_each_pull(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = generate(seed=5, volume=300, start=date(2026, 9, 15), end=date(2026, 11, 14))
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=dataset.horizon)
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        for _ in range(2):  # a second pull replaces, never duplicates
            pipeline.extract(config, "onestop")
        with pipeline.engine_for(config).connect() as connection:
            stored = connection.execute(
                sa.select(tables.procedures.c.code, tables.procedures.c.agency_code, tables.procedures.c.online_type)
            ).all()
    assert sorted((p.code, p.agency_code, p.online_type.value) for p in dataset.procedures) == sorted(stored)


def test_a_procedure_another_source_publishes_stays_with_it_and_the_pull_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = generate(seed=5, volume=300, start=date(2026, 9, 15), end=date(2026, 11, 14))
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=dataset.horizon)
    first = dataset.procedures[0]
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        engine = pipeline.engine_for(config)
        # A catalogue export stored the first procedure before the one-stop pull.
        row = {"code": first.code, "agency_code": first.agency_code, "online_type": "NONE"}
        warehouse.replace_procedures(engine, "danh-muc", "catalogue-xml", [row])
        pipeline.extract(config, "onestop")
        with engine.connect() as connection:
            table = tables.procedures
            stored = connection.execute(sa.select(table.c.code, table.c.agency_code, table.c.source)).all()
    owners = {(code, agency): source for code, agency, source in stored}
    assert owners.pop((first.code, first.agency_code)) == "danh-muc"
    assert set(owners.values()) == {"onestop"} and len(owners) == len(dataset.procedures) - 1


ONLINE_SERVICES_REPORT = """
[reports.ONLINE_SERVICES]
receiver_code = "000.00.00.G01"
receiver_name = "Văn phòng Chính phủ"
regime = "D09"
period_type = "MONTH"
sources = ["onestop"]
"""


def test_online_services_from_the_simulator_to_an_accepted_submission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = generate(seed=17, volume=2000, start=date(2026, 9, 15), end=date(2026, 11, 14))
    cut = datetime(2026, 11, 15, 2, 0, tzinfo=LOCAL_TIMEZONE)  # the source as it stood at the cut-off
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=cut)
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        config.path.write_text(config.path.read_text(encoding="utf-8") + ONLINE_SERVICES_REPORT, encoding="utf-8")
        config = load_config(config.path)
        result = pipeline.run_report(config, "ONLINE_SERVICES", "2026-11")
        total = pipeline.report_summary(config, "ONLINE_SERVICES", "2026-11")
        assert result.receipt["status"] == "accepted" and result.receipt["report_type"] == "ONLINE_SERVICES"
        period_start, period_end = datetime(2026, 10, 15), datetime(2026, 11, 15)
        counted = [
            d
            for d in dataset.current_dossiers(cut)
            if not d.deleted
            and d.status.value != "CANCELLED"
            and period_start <= d.received_at.replace(tzinfo=None) < period_end
        ]
        assert total["dossiers_total"] == len(counted)
        assert total["dossiers_online"] == sum(1 for d in counted if d.channel.value == "ONLINE")
        assert total["authority_count"] == len(dataset.procedures)
