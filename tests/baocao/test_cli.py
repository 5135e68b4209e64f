"""The `baocao` command line, run in-process against the simulators on loopback."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from baocao.cli import main
from baocao.simulators.onestop.generator import generate
from baocao.simulators.onestop.server import Settings as OneStopSettings
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
