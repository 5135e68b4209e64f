"""Benchmark: the dossier suite in Great Expectations against the same checks in DuckDB, run after run.

The pipeline benchmark times validation once per run, and on a shared 2-core machine one run says
little about a ratio. This one stages a batch once (the pipeline benchmark's generator and staging)
and then alternates, in one process: the 17 checks as DuckDB COUNT queries, the suite through
`SuiteRunner.validate_parquet` (GX's SQL engine on DuckDB, Data Docs included), the COUNT queries
again. Each run's ratio is GX's seconds over the mean of the two DuckDB timings around it. The first
validation (Data Docs templates compiled, GX's caches cold) is reported apart from the others.

    uv run python bench/bench_validation.py --rows 5000000 --runs 8

To compare two commits, check the other one out beside this one (`git worktree add`) and run its
copy of this script with the same arguments, alternating the two.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_pipeline as pipeline  # noqa: E402 (the bench folder is not a package)

from baocao.core.canonical import Col  # noqa: E402
from baocao.expectations import dossiers as dossier_rules  # noqa: E402
from baocao.expectations.runner import Outcome, SuiteRunner  # noqa: E402
from baocao.storage import warehouse  # noqa: E402


def duckdb_checks(parquet: Path, checks: Sequence[pipeline.SqlCheck]) -> float:
    """Seconds for the suite's checks as one COUNT query each on the staged file."""
    connection = pipeline.staged_view(parquet)
    try:
        started = time.perf_counter()
        pipeline.count_failing(connection, checks)
        return time.perf_counter() - started
    finally:
        connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=8, help="validations after the first (8)")
    parser.add_argument("--seed", type=int, default=20261214)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--workdir", type=Path, help="staged file and GX context (a temporary folder)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="baocao-bench-validation-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        catalogue = pipeline.build_catalogue(args.seed)
        engine = warehouse.connect(f"sqlite:///{workdir / 'warehouse.db'}")
        print(f"staging {args.rows:,} dossiers …", flush=True)
        staged = pipeline.stage(
            engine, catalogue, args.rows, args.chunk_rows, args.seed, workdir / "staging", workdir / "copy.parquet"
        )
        engine.dispose()
        expectations = dossier_rules.dossier_suite(catalogue.registry.codes)
        checks = pipeline.suite_as_sql(expectations, pipeline.PARQUET_VIEW)
        planted = sum(staged.bad.values())

        def validate(run: int) -> tuple[float, Outcome]:
            started = time.perf_counter()
            outcome = SuiteRunner(workdir / "validation").validate_parquet(
                staged.staged_file,
                suite_name=dossier_rules.SUITE_NAME,
                expectations=expectations,
                key_column=Col.CODE,
                run_name=f"bench-{run}",
            )
            return time.perf_counter() - started, outcome

        rows: list[tuple[str, float, float, float]] = []
        wrong = 0
        for run in range(args.runs + 1):
            before = duckdb_checks(staged.parquet, checks)
            seconds, outcome = validate(run)
            after = duckdb_checks(staged.parquet, checks)
            duck = (before + after) / 2
            label = "first (cold)" if run == 0 else str(run)
            rows.append((label, seconds, duck, seconds / duck))
            named = len(outcome.failed_keys)
            wrong += named != planted or bool(outcome.incomplete_rules)
            print(
                f"  run {label}: GX {seconds:.2f} s, DuckDB {before:.2f}/{after:.2f} s, "
                f"ratio {seconds / duck:.2f}, {named:,} failing records named ({planted:,} planted)",
                flush=True,
            )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    warm = [ratio for label, _, _, ratio in rows[1:]]
    print()
    print(f"{args.rows:,} dossiers, {len(checks)} checks, {datetime.now():%Y-%m-%d %H:%M}")
    print()
    print("| run | GX validate s | DuckDB checks s | ratio |")
    print("|---|---:|---:|---:|")
    for label, seconds, duck, ratio in rows:
        print(f"| {label} | {seconds:.2f} | {duck:.2f} | {ratio:.2f}× |")
    if warm:
        print(f"| median of runs 1–{len(warm)} | | | **{statistics.median(warm):.2f}×** |")
        spread = f"{min(warm):.2f}–{max(warm):.2f}×"
        print(f"\nratio range after the first run: {spread} (target ≤ {pipeline.TARGET_RATIO:g}×)")
    if wrong:
        print(f"{wrong} run(s) did not name exactly the planted bad records")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
