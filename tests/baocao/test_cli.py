"""The `baocao` command line, run in-process against the simulators on loopback."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from baocao import cli
from baocao.cli import main
from baocao.core import tables
from baocao.run import pipeline
from baocao.simulators.onestop.generator import generate
from baocao.simulators.onestop.server import Settings as OneStopSettings
from baocao.storage import ledger
from tests.baocao.test_pipeline_e2e import SECRET, central_receipts, running


def test_dry_run_then_run_then_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = generate(seed=9, volume=1200, start=date(2026, 9, 15), end=date(2026, 11, 14))
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=dataset.horizon)
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        runner = CliRunner()
        base = ["run", "--report", "TTHC_RESULTS", "--period", "2026-11", "--config", str(config.path)]

        dry = runner.invoke(main, [*base, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "dry run" in dry.output and "received_total" in dry.output
        written = list((config.data_dir / "submissions" / "TTHC_RESULTS" / "2026-11").glob("v1-dry-run.xml"))
        assert len(written) == 1 and written[0].read_bytes().startswith(b"<?xml")
        assert central_receipts(config, "2026-11") == []

        real = runner.invoke(main, base)
        assert real.exit_code == 0, real.output
        assert '"status": "accepted"' in real.output
        assert len(central_receipts(config, "2026-11")) == 1

        status = runner.invoke(main, ["status", "--config", str(config.path)])
        assert status.exit_code == 0 and "ACCEPTED" in status.output and "2026-11" in status.output


def test_a_bad_period_is_a_clear_fatal_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = generate(seed=9, volume=200, start=date(2026, 9, 15), end=date(2026, 11, 14))
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=dataset.horizon)
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        result = CliRunner().invoke(
            main, ["run", "--report", "TTHC_RESULTS", "--period", "2026-13", "--config", str(config.path)]
        )
    assert result.exit_code == 1
    assert "invalid period id '2026-13'" in result.output


def test_export_writes_the_accepted_version_and_refuses_a_period_never_aggregated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = generate(seed=9, volume=300, start=date(2026, 9, 15), end=date(2026, 11, 14))
    settings = OneStopSettings(client_id="baocao", client_secret=SECRET, as_of=dataset.horizon)
    with running(tmp_path, monkeypatch, dataset, settings) as config:
        runner = CliRunner()
        never = runner.invoke(
            main,
            [
                "export",
                "--report",
                "TTHC_RESULTS",
                "--period",
                "2026-10",
                "--format",
                "csv",
                "--config",
                str(config.path),
            ],
        )
        assert never.exit_code == 1 and "never aggregated" in never.output

        run = runner.invoke(
            main, ["run", "--report", "TTHC_RESULTS", "--period", "2026-11", "--config", str(config.path)]
        )
        assert run.exit_code == 0, run.output
        [accepted] = ledger.listing(pipeline.engine_for(config), "TTHC_RESULTS", "2026-11")
        # Later data changes the period's current version; the export still writes what was accepted.
        engine = pipeline.engine_for(config)
        with engine.begin() as connection:
            connection.execute(
                sa.update(tables.dossiers).where(tables.dossiers.c.deleted.is_(False)).values(deleted=True)
            )
        moved = pipeline.aggregate(config, "TTHC_RESULTS", "2026-11")
        assert moved.content_hash != accepted["report_hash"]

        out = tmp_path / "export.csv"
        exported = runner.invoke(
            main,
            ["export", "--report", "TTHC_RESULTS", "--period", "2026-11", "--format", "csv", "--out", str(out),
             "--config", str(config.path)],
        )  # fmt: skip
        assert exported.exit_code == 0, exported.output
        assert f"stored report {accepted['report_hash'][:12]}, accepted as v1" in exported.output
        sent = pipeline.load_report(config, "TTHC_RESULTS", "2026-11", accepted["report_hash"]).report
        rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
        total = next(row for row in rows if row["kind"] == "TOTAL")
        table = sent.tables["report"]
        assert int(total["received_total"]) == int(table[table["kind"] == "TOTAL"].iloc[0]["received_total"]) > 0

        monkeypatch.setattr(cli.out, "width", 200)  # a wide terminal: each hash on one line
        status = runner.invoke(main, ["status", "--config", str(config.path)])
        assert status.exit_code == 0
        assert accepted["report_hash"][:12] in status.output and moved.content_hash[:12] in status.output
