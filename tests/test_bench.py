"""The benchmark scripts run end to end at a small size, with their correctness checks passing.

Their timings are not asserted (targets live in the README's tables); what is asserted is what
each run checks for itself: GX named exactly the planted bad records, the quarantine and merge
counts, the DuckDB aggregation equal to the warehouse's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_pipeline_benchmark_runs_and_its_correctness_checks_pass(tmp_path: Path) -> None:
    out = tmp_path / "result.md"
    run = _bench("bench_pipeline.py", "--rows", "20000", "--warehouse", "sqlite", "--out", str(out))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = out.read_text(encoding="utf-8")
    assert "correctness checks: **PASS**" in result
    assert "- [ ]" not in result  # no correctness line unticked
    assert "| validate: dossier suite (GX SQL engine on DuckDB, Data Docs) |" in result
    assert "**validation (GX) / DuckDB checks**" in result


def test_the_validation_benchmark_alternates_and_checks_every_run() -> None:
    run = _bench("bench_validation.py", "--rows", "20000", "--runs", "2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.count("failing records named") == 3  # the cold run and two more
    lines = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    assert lines[0] == "| run | GX validate s | DuckDB checks s | ratio |"
    assert [line.split(" | ")[0] for line in lines[1:]] == ["| first (cold)", "| 1", "| 2", "| median of runs 1–2"]
