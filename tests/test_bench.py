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


def test_the_sources_benchmark_reads_every_source_kind(tmp_path: Path) -> None:
    out = tmp_path / "sources.md"
    run = _bench(
        "bench_sources.py",
        *("--csv-rows", "500", "--catalogue-rows", "200", "--workbook-units", "40", "--repeat", "1"),
        *("--databases", "sqlite", "--out", str(out)),
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = [line for line in out.read_text(encoding="utf-8").splitlines() if line.startswith("| ")][1:]
    kinds = [row.split(" (")[0].removeprefix("| ") for row in rows]
    assert kinds == [
        "catalogue_xml",
        "ict_workbook",
        "egov_workbook",
        *[f"commune_csv {encoding}" for encoding in ("utf-8", "utf-8-sig", "cp1258", "tcvn3")],
        "petition_csv",
        "sql_legacy sqlite",
    ]
    cells = [row.split(" | ")[2] for row in rows]  # "40,000" or "40,000, 37 rejected"
    read = {kind: int(cell.split(", ")[0].replace(",", "")) for kind, cell in zip(kinds, cells, strict=True)}
    assert read["sql_legacy sqlite"] == read["commune_csv utf-8"] == 500  # every row of the table pulled
    assert read["petition_csv"] == 100 and read["ict_workbook"] == read["egov_workbook"] == 40
