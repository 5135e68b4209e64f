"""Benchmark: reading each source kind (files and the legacy database) — rows per second and peak memory.

The files are written first, deterministically, by `simulators/files.py` (fixed seed) at a realistic
size: a provincial procedure catalogue, the ICT and e-government workbooks of a province, and a
commune dossier export in each encoding the readers take (UTF-8, UTF-8 with BOM, Windows-1258,
TCVN3), the feedback system's petition export, and the commune export's rows in a legacy `hoso`
table on SQLite, PostgreSQL and MariaDB. Then each is read by its connector, the way
`baocao.run.sources` (extract, one module per kind) reads it (a full pull for the database), in a fresh
Python process (so that one measurement's memory does not carry over into the next), best of
`--repeat` reads. Results are printed as a markdown table.

    uv run python bench/bench_sources.py
    uv run python bench/bench_sources.py --csv-rows 1000000 --catalogue-rows 100000 --workbook-units 3321
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ENCODINGS = ("utf-8", "utf-8-sig", "cp1258", "tcvn3")
HOSO_BENCH_TABLE = "bench_hoso"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_MARIADB = "mysql+pymysql://root@127.0.0.1:3306/test"


def _redacted(url: str) -> str:
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    where = parsed.host or Path(parsed.database or "").name
    return f"{parsed.get_backend_name()} {where}"


# ---------------------------------------------------------------- memory


def _proc_status_kib(name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset the high-water mark VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


# ---------------------------------------------------------------- the files


def write_files(folder: Path, catalogue_rows: int, workbook_units: int, csv_rows: int, seed: int) -> dict[str, Path]:
    """Every benchmark file, from the simulators, deterministic for the same arguments."""
    from baocao.simulators import files

    written: dict[str, Path] = {}
    entries = files.sample_catalogue(catalogue_rows, seed=seed)
    written["catalogue_xml"] = files.write_catalogue_xml(folder / "DanhMucTTHC.xml", entries)

    chooser = random.Random(seed)
    departments = min(30, workbook_units)
    communes = workbook_units - departments
    # Codes as the simulator spells them: 000.00.NN.H99 for departments, 000.DD.NN.H99 for communes.
    commune_codes = [files.commune_code(1 + index // 99, 1 + index % 99) for index in range(communes)]

    def score(low: int, high: int) -> Decimal:
        return Decimal(chooser.randrange(low * 1000, high * 1000)) / 1000

    ict = {
        files.DEPARTMENT_SHEET: tuple(
            files.IctScore(
                files.department_code(n + 1),
                f"Sở số {n + 1}",
                score(30, 60),
                score(30, 60),
                score(150, 300),
                score(40, 70),
            )
            for n in range(departments)
        ),
        files.COMMUNE_SHEET: tuple(
            files.IctScore(code, f"UBND xã số {n + 1}", score(10, 40), score(10, 30), score(60, 200), score(20, 40))
            for n, code in enumerate(commune_codes)
        ),
    }
    written["ict_workbook"] = files.write_ict_workbook(folder / "ict-2026.xlsx", year=2026, blocks=ict)
    levels = ("I", "II", "III", "IV", "UNRANKED")
    egov = {
        files.DEPARTMENT_SHEET: tuple(
            files.MaturityLevel(files.department_code(n + 1), f"Sở số {n + 1}", score(20, 95), chooser.choice(levels))
            for n in range(departments)
        ),
        files.COMMUNE_SHEET: tuple(
            files.MaturityLevel(code, f"UBND xã số {n + 1}", score(20, 95), chooser.choice(levels))
            for n, code in enumerate(commune_codes)
        ),
    }
    written["egov_workbook"] = files.write_egov_workbook(folder / "egov-2026.xlsx", year=2026, blocks=egov)

    rows = files.commune_dossiers(csv_rows, seed=seed, start=datetime(2026, 1, 5, 7, 30))
    for encoding in ENCODINGS:
        written[f"commune_csv {encoding}"] = files.write_commune_csv(
            folder / f"xa-{encoding}.csv", rows, encoding=encoding
        )
    petitions = files.petitions(max(1, csv_rows // 5), seed=seed, start=datetime(2026, 1, 5, 8), days=330)
    written["petition_csv"] = files.write_petition_csv(folder / "phan-anh.csv", petitions)
    return written


def fill_hoso_tables(urls: dict[str, str], csv_rows: int, seed: int) -> dict[str, str]:
    """The commune export's rows in a legacy `hoso` table on each database; returns name → URL."""
    import sqlalchemy as sa

    from baocao.simulators import files
    from baocao.simulators.legacy_sql import create_hoso, hoso_table

    rows = files.commune_dossiers(csv_rows, seed=seed, start=datetime(2026, 1, 5, 7, 30))
    filled: dict[str, str] = {}
    for backend, url in urls.items():
        create_hoso(url, HOSO_BENCH_TABLE)
        engine = sa.create_engine(url)
        table = hoso_table(sa.MetaData(), HOSO_BENCH_TABLE)
        with engine.begin() as connection:
            for offset in range(0, len(rows), 5000):
                connection.execute(sa.insert(table), rows[offset : offset + 5000])
        engine.dispose()
        filled[f"sql_legacy {backend}"] = url
    return filled


def drop_hoso_tables(urls: dict[str, str]) -> None:
    import sqlalchemy as sa

    from baocao.simulators.legacy_sql import hoso_table

    for url in urls.values():
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            hoso_table(sa.MetaData(), HOSO_BENCH_TABLE).drop(connection, checkfirst=True)
        engine.dispose()


# ---------------------------------------------------------------- one measurement (in its own process)


@dataclass
class _Pulled:
    """A full pull of a `hoso` table, shaped like a file reader's result."""

    records: list[dict[str, Any]]
    rejects: tuple[()] = ()
    skipped: tuple[()] = ()
    encoding: str | None = None


def _pull_hoso(url: str) -> _Pulled:
    """Every row of the table, as extract's first (full) pull reads it: the connector's own query,
    chunked, mapped by the default `hoso` mapping."""
    from baocao.connectors.sql_legacy import LegacySqlSource

    with LegacySqlSource(url, HOSO_BENCH_TABLE, name="bench") as source:
        return _Pulled(list(source.changed_rows(None, datetime(2100, 1, 1))))


def _reader(kind: str) -> Any:
    if kind == "sql_legacy":
        import baocao.connectors.sql_legacy  # noqa: F401 (imported before the timed reads, as for the readers)

        return _pull_hoso
    if kind == "catalogue_xml":
        from baocao.connectors.catalogue_xml import read_catalogue_file

        return read_catalogue_file
    from baocao.connectors import commune_csv, petition_csv, workbooks

    return {
        "ict_workbook": workbooks.read_ict_workbook,
        "egov_workbook": workbooks.read_egov_workbook,
        "commune_csv": commune_csv.read_commune_csv,
        "petition_csv": petition_csv.read_petition_csv,
    }[kind]


def measure(kind: str, path: Path | str, repeat: int) -> dict[str, Any]:
    """Read the file `repeat` times: the best time, rows read, and the peak RSS over all reads."""
    read = _reader(kind)
    gc.collect()
    baseline_kib = _proc_status_kib("VmRSS")  # interpreter and imports, before the first read
    exact = _reset_peak()
    best = float("inf")
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        started = time.perf_counter()
        result = read(path)
        best = min(best, time.perf_counter() - started)
    assert result is not None
    peak_kib = _proc_status_kib("VmHWM") if exact else _proc_status_kib("VmRSS")
    return {
        "records": len(result.records),
        "rejects": len(result.rejects),
        "skipped": len(result.skipped),
        "encoding": result.encoding,
        "seconds": best,
        "baseline_mib": baseline_kib / 1024,
        "peak_mib": peak_kib / 1024,
        "peak_exact": exact,
    }


def _measure_in_child(kind: str, path: Path | str, repeat: int) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(path), "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- the table


def _mib(value: float) -> str:
    return f"{value:,.0f} MiB"


def _size(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB" if size >= 2**20 else f"{size / 1024:,.0f} KiB"


def table(files: dict[str, Path | str], results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| source kind (file) | size | rows read | rows / s | best of reads | peak RSS (Δ over imports) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, path in files.items():
        result = results[name]
        rows = result["records"] + result["rejects"]
        if isinstance(path, Path):
            where, size = f"`{path.name}`", _size(path.stat().st_size)
        else:  # a database: the table, and where it lives (no password in the URL)
            where, size = f"`{HOSO_BENCH_TABLE}` on {_redacted(path)}", "—"
        extra = f", {result['rejects']} rejected" if result["rejects"] else ""
        lines.append(
            f"| {name} ({where}) | {size} | {rows:,}{extra} | {rows / result['seconds']:,.0f} | "
            f"{result['seconds']:.2f} s | {_mib(result['peak_mib'])} "
            f"(+{_mib(result['peak_mib'] - result['baseline_mib'])}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue-rows", type=int, default=40_000, help="procedure × agency entries (40,000)")
    parser.add_argument("--workbook-units", type=int, default=200, help="units per workbook (200: a province)")
    parser.add_argument("--csv-rows", type=int, default=100_000, help="dossiers in the commune export (100,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="reads per file; the best time is reported")
    parser.add_argument("--workdir", type=Path, help="where the files are written (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql,mariadb",
        help="where the legacy hoso table is read from (sqlite,postgresql,mariadb; empty: none)",
    )
    parser.add_argument("--postgresql-url", default=os.environ.get("BAOCAO_BENCH_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--mariadb-url", default=os.environ.get("BAOCAO_BENCH_MARIADB", DEFAULT_MARIADB))
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure:  # the child process: one measurement, printed as JSON
        kind, path = args.measure
        print(json.dumps(measure(kind, path if kind == "sql_legacy" else Path(path), args.repeat)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-sources-") as temporary:
        folder = args.workdir or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        urls = {
            "sqlite": f"sqlite:///{folder / 'legacy.db'}",
            "postgresql": args.postgresql_url,
            "mariadb": args.mariadb_url,
        }
        chosen = {name: urls[name] for name in filter(None, args.databases.split(","))}
        files: dict[str, Path | str] = {
            **write_files(folder, args.catalogue_rows, args.workbook_units, args.csv_rows, args.seed),
            **fill_hoso_tables(chosen, args.csv_rows, args.seed),
        }
        generated = time.perf_counter() - started
        try:
            results = {name: _measure_in_child(name.split()[0], path, args.repeat) for name, path in files.items()}
        finally:
            drop_hoso_tables(chosen)
        text = table(files, results)
    exact = all(result["peak_exact"] for result in results.values())
    header = (
        f"Reading sources — {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now():%Y-%m-%d %H:%M}; seed {args.seed}; files generated in {generated:.1f} s; "
        f"peak RSS {'exact (VmHWM reset)' if exact else 'VmRSS after the reads'}, one process per file"
    )
    print(header)
    print()
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(header + "\n\n" + text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
