"""Benchmark: a province-year of dossiers through validate → merge → aggregate → check → render.

The data is synthetic and deterministic (fixed seed, vectorised numpy), shaped like what the one-stop
simulator produces: ~300 agencies (22 departments, the rest communes), the simulator's field
catalogue, the D09 year 2026 plus dossiers carried over from before it, ~98 % on time, and a small
share of deliberately bad records so that quarantine has work. It is staged into the warehouse
(SQLite or PostgreSQL) and written to Parquet; then each pipeline step runs as
`baocao.pipeline` composes it, timed, with the process's peak memory. In the same run DuckDB runs
the same aggregation and the same checks on the Parquet file, as the yardstick and as a
cross-engine correctness check.

    uv run python bench/bench_pipeline.py --rows 5000000 --warehouse sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.sql.expression import ColumnElement

from baocao.core import tables
from baocao.core.canonical import DUE_DAYS, LOCAL_TIMEZONE, Col
from baocao.core.layouts.tthc import COUNT_COLUMNS
from baocao.core.periods import Period, Regime, parse_period
from baocao.core.registry import Agency, Level, Registry
from baocao.core.report import Report, ReportType
from baocao.expectations import dossiers as dossier_rules
from baocao.expectations import tthc_report as report_rules
from baocao.expectations.runner import SuiteRunner
from baocao.simulators.onestop import names
from baocao.storage import reports as stored_reports
from baocao.storage import staging, warehouse
from baocao.storage.warehouse import utc_now
from baocao.transforms import render as renderer
from baocao.transforms.tthc import assemble_tthc_report, completeness, tthc_rows_query

BENCH_DIR = Path(__file__).resolve().parent
PERIOD_ID = "2026"  # D09: 2025-12-15 → 2026-12-14
SOURCE = "bench-onestop"
VALIDATE_STEP = "validate: dossier suite (GX SQL engine on DuckDB, Data Docs)"
TARGET_SECONDS = 120.0
TARGET_PEAK_MIB = 2048.0
TARGET_RATIO = 3.0
DEFAULT_POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# ---------------------------------------------------------------- measuring


def _proc_status_kib(name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


class MemoryMeter:
    """Peak RSS of this process per step.

    Linux resets the high-water mark (VmHWM) when "5" is written to /proc/self/clear_refs, which makes
    the peak exact; a thread sampling VmRSS every 50 ms is the fallback where that is not allowed.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self._interval = interval
        self._sampled_peak = 0
        self._hwm_resettable = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self._sampled_peak = max(self._sampled_peak, _proc_status_kib("VmRSS"))

    def reset(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")
        except OSError:
            self._hwm_resettable = False
        self._sampled_peak = _proc_status_kib("VmRSS")

    def peak_mib(self) -> float:
        peak = max(self._sampled_peak, _proc_status_kib("VmRSS"))
        if self._hwm_resettable:
            peak = max(peak, _proc_status_kib("VmHWM"))
        return peak / 1024

    @property
    def method(self) -> str:
        return "VmHWM reset per step (exact)" if self._hwm_resettable else "VmRSS sampled every 50 ms"

    def close(self) -> None:
        self._stop.set()


@dataclass
class StepResult:
    group: str  # staging | pipeline | warehouse | duckdb
    name: str
    seconds: float
    peak_mib: float | None
    note: str = ""
    # Other work on the machine skews seconds: the 1-minute load average at the end of the step, and
    # how long this process's threads sat runnable but waiting for a CPU during it.
    load: float | None = None
    cpu_wait: float | None = None


def _cpu_wait_seconds() -> float:
    """Run-queue wait of this process's live threads (/proc/<pid>/task/*/schedstat, 2nd field, ns)."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/self/task/{task}/schedstat") as f:
            total += int(f.read().split()[1])
    return total / 1e9


@dataclass
class Bench:
    meter: MemoryMeter
    results: list[StepResult] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, group: str, name: str) -> Iterator[dict[str, str]]:
        """Times the block and records the peak RSS reached in it; the yielded dict takes a note."""
        note: dict[str, str] = {}
        self.meter.reset()
        waited = _cpu_wait_seconds()
        started = time.perf_counter()
        yield note
        seconds = time.perf_counter() - started
        result = StepResult(
            group,
            name,
            seconds,
            self.meter.peak_mib(),
            note.get("note", ""),
            load=os.getloadavg()[0],
            cpu_wait=max(0.0, _cpu_wait_seconds() - waited),
        )
        self.results.append(result)
        peak = f"{result.peak_mib:8.0f} MiB" if result.peak_mib is not None else ""
        print(
            f"  {group:<9} {name:<50} {seconds:8.2f} s {peak}  load {result.load:.1f}, "
            f"waited {result.cpu_wait:.1f} s for a CPU  {result.note}",
            flush=True,
        )

    def seconds(self, group: str, name: str) -> float:
        return next(r.seconds for r in self.results if r.group == group and r.name == name)


# ---------------------------------------------------------------- synthetic province-year

YEAR_START = np.datetime64("2025-12-15T00:00:00", "s")
# The extraction runs just after the period: what finishes later is still open in the data.
SNAPSHOT = np.datetime64("2026-12-15T02:00:00", "s")
DAY = np.timedelta64(86400, "s")
HOUR = np.timedelta64(3600, "s")

COMMUNE_COUNT = 278
COMMUNE_FIELDS_PER_COMMUNE = 14
PROCEDURES_PER_PAIR = 3
# Time limits in working days (-1: the procedure has none), as procedures are spread in practice.
TIME_LIMITS = np.array([-1, 1, 2, 3, 5, 7, 10, 15, 20, 30, 45])
TIME_LIMIT_WEIGHTS = np.array([5, 18, 6, 20, 14, 6, 14, 8, 4, 4, 1], dtype=float)
CHANNELS = np.array(["ONLINE", "DIRECT", "POSTAL"], dtype=object)
CHANNEL_WEIGHTS = np.array([0.46, 0.51, 0.03])
# Final states: resolved, returned, withdrawn, cancelled, processing, supplement requested, received.
STATUSES = np.array(
    ["RESOLVED", "RETURNED", "WITHDRAWN", "CANCELLED", "PROCESSING", "SUPPLEMENT_REQUESTED", "RECEIVED"], dtype=object
)
STATUS_WEIGHTS = np.array([0.935, 0.015, 0.010, 0.005, 0.020, 0.010, 0.005])
RESOLVED, RETURNED, WITHDRAWN, CANCELLED, PROCESSING, SUPPLEMENT, RECEIVED = range(7)
CARRIED_OVER_SHARE = 0.05
DELETED_SHARE = 0.001

# Deliberately bad records, one rule broken each, so quarantine has work (share of all rows each).
# Each kind breaks exactly one expectation, named by (expectation type, column).
BAD_KINDS: dict[str, tuple[str, str]] = {
    "unknown agency": ("expect_column_values_to_be_in_set", Col.AGENCY_CODE),
    "finished before received": ("expect_column_pair_values_a_to_be_greater_than_b", Col.FINISHED_AT),
    "field code off the schema": ("expect_column_values_to_match_regex", Col.FIELD_CODE),
    "unknown status": ("expect_column_values_to_be_in_set", Col.STATUS),
    "due date too far": ("expect_column_values_to_be_between", DUE_DAYS),
    "finished without a time": ("expect_column_values_to_not_be_null", Col.FINISHED_AT),
}
BAD_SHARE_EACH = 0.0002
UNKNOWN_AGENCY = "000.99.99.H99"


@dataclass(frozen=True)
class Catalogue:
    """Agencies, fields and which agency handles which field (with volumes): the generator's dice."""

    registry: Registry
    agency_codes: np.ndarray  # object array, index → code
    field_codes: np.ndarray
    field_names: np.ndarray
    pair_agency: np.ndarray  # pair index → agency index
    pair_field: np.ndarray  # pair index → field index
    pair_probability: np.ndarray
    procedure_codes: np.ndarray  # (pair, k) → national procedure code
    procedure_limits: np.ndarray  # (pair, k) → working days, -1 when none


def build_catalogue(seed: int) -> Catalogue:
    rng = np.random.default_rng([seed, 0])
    field_index = {entry.code: i for i, entry in enumerate(names.FIELDS)}
    field_weight = np.array([entry.weight for entry in names.FIELDS])
    agencies: list[Agency] = []
    pair_agency: list[int] = []
    pair_field: list[int] = []
    pair_weight: list[float] = []
    total_department_weight = sum(d.weight for d in names.DEPARTMENTS)
    # Departments take about a fifth of a province's dossiers; communes the rest.
    for number, department in enumerate(names.DEPARTMENTS, start=1):
        agencies.append(Agency(f"000.00.{number:02d}.H99", department.name, Level.PROVINCE))
        fields = [field_index[code] for code in department.field_codes]
        share = 0.2 * department.weight / total_department_weight
        local = field_weight[fields] / field_weight[fields].sum()
        for f, w in zip(fields, local, strict=True):
            pair_agency.append(len(agencies) - 1)
            pair_field.append(f)
            pair_weight.append(share * w)
    commune_fields = np.array([field_index[code] for code in names.COMMUNE_FIELD_CODES])
    commune_size = rng.lognormal(0.0, 0.6, COMMUNE_COUNT)
    commune_size = 0.8 * commune_size / commune_size.sum()
    for n in range(COMMUNE_COUNT):
        group, member = divmod(n, 25)
        base = names.COMMUNE_NAMES[n % len(names.COMMUNE_NAMES)]
        suffix = "" if n < len(names.COMMUNE_NAMES) else f" {n // len(names.COMMUNE_NAMES) + 1}"
        agencies.append(Agency(f"000.{group + 1:02d}.{member + 1:02d}.H99", f"UBND xã {base}{suffix}", Level.COMMUNE))
        chosen = rng.choice(commune_fields, size=min(COMMUNE_FIELDS_PER_COMMUNE, len(commune_fields)), replace=False)
        local = field_weight[chosen] / field_weight[chosen].sum()
        for f, w in zip(chosen, local, strict=True):
            pair_agency.append(len(agencies) - 1)
            pair_field.append(int(f))
            pair_weight.append(commune_size[n] * w)
    pairs = len(pair_agency)
    serial = rng.choice(np.arange(1000, 10000), size=(pairs, PROCEDURES_PER_PAIR), replace=True)
    procedure_codes = np.array([f"1.00{s:04d}" for s in serial.ravel()], dtype=object).reshape(serial.shape)
    limits = rng.choice(TIME_LIMITS, size=(pairs, PROCEDURES_PER_PAIR), p=TIME_LIMIT_WEIGHTS / TIME_LIMIT_WEIGHTS.sum())
    probability = np.array(pair_weight)
    return Catalogue(
        registry=Registry(tuple(agencies)),
        agency_codes=np.array([a.code for a in agencies], dtype=object),
        field_codes=np.array([entry.code for entry in names.FIELDS], dtype=object),
        field_names=np.array([entry.name for entry in names.FIELDS], dtype=object),
        pair_agency=np.array(pair_agency),
        pair_field=np.array(pair_field),
        pair_probability=probability / probability.sum(),
        procedure_codes=procedure_codes,
        procedure_limits=limits,
    )


def _strings(values: np.ndarray, index: np.ndarray) -> pa.Array:
    """values[index] as an Arrow string array, gathered in C++ (no per-row Python)."""
    return pc.take(pa.array(values, pa.string()), pa.array(index, pa.int32()))


def _times(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("datetime64[us]"), pa.timestamp("us"), mask=np.isnat(values))


def _day_start(values: np.ndarray) -> np.ndarray:
    return values.astype("datetime64[D]").astype("datetime64[s]")


def _seconds(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).astype("int64") * np.timedelta64(1, "s")


def generate_chunk(catalogue: Catalogue, seed: int, chunk: int, first: int, rows: int) -> tuple[pa.Table, Counter[str]]:
    """Rows first..first+rows of the province-year, canonical columns plus due_days, as an Arrow table."""
    rng = np.random.default_rng([seed, chunk + 1])
    n = rows
    pair = rng.choice(len(catalogue.pair_probability), size=n, p=catalogue.pair_probability)
    agency = catalogue.pair_agency[pair]
    field_index = catalogue.pair_field[pair]
    procedure = rng.integers(0, PROCEDURES_PER_PAIR, n)
    limit = catalogue.procedure_limits[pair, procedure]

    carried = rng.random(n) < CARRIED_OVER_SHARE
    day = np.where(carried, rng.integers(-92, 0, n), rng.integers(0, 365, n))
    received = YEAR_START + day * DAY + _seconds(rng.integers(7 * 3600, 17 * 3600 + 1800, n))
    has_due = limit >= 0
    # Working days to calendar days (≈ 7/5), due at 17:00 of the due day.
    due_days_calendar = np.ceil(np.maximum(limit, 1) * 1.4).astype("int64")
    due = np.where(has_due, _day_start(received) + due_days_calendar * DAY + 17 * HOUR, np.datetime64("NaT"))

    state = rng.choice(len(STATUSES), size=n, p=STATUS_WEIGHTS)
    finished = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    u = rng.random(n)
    timing = rng.random(n)
    resolved = state == RESOLVED
    due_day = _day_start(due)
    # Resolved with a due date: 72 % early (before the due day), 26 % on the due day by 17:00, 2 % late.
    early = resolved & has_due & (timing < 0.72)
    on_time = resolved & has_due & (timing >= 0.72) & (timing < 0.98)
    late = resolved & has_due & (timing >= 0.98)
    span = (due_day - received).astype("int64")
    finished[early] = received[early] + _seconds((0.05 + 0.95 * u[early]) * span[early])
    finished[on_time] = due_day[on_time] + _seconds((7 + 10 * u[on_time]) * 3600)
    finished[late] = due[late] + HOUR + _seconds(rng.exponential(3 * 86400, n)[late])
    no_due = resolved & ~has_due
    finished[no_due] = received[no_due] + _seconds(1800 + rng.exponential(5 * 86400, n)[no_due])
    gave_up = (state == RETURNED) | (state == WITHDRAWN)
    finished[gave_up] = received[gave_up] + _seconds(3600 + u[gave_up] * 7 * 86400)
    # Whatever would finish after the extraction is still being processed when the data is pulled.
    future = ~np.isnat(finished) & (finished > SNAPSHOT)
    state[future] = PROCESSING
    finished[future] = np.datetime64("NaT")

    updated = np.where(np.isnat(finished), received, finished) + _seconds(600)
    deleted = rng.random(n) < DELETED_SHARE
    channel = rng.choice(len(CHANNELS), size=n, p=CHANNEL_WEIGHTS)
    fee_required = rng.random(n) < 0.3
    paid_online = fee_required & (channel == 0) & (rng.random(n) < 0.6)
    digitized = rng.random(n) < 0.7
    result_electronic = rng.random(n) < 0.4
    rated = ~np.isnat(finished) & (rng.random(n) < 0.4)
    rating = rng.choice(np.arange(1, 6), size=n, p=[0.01, 0.02, 0.05, 0.22, 0.70])

    agency_code = _strings(catalogue.agency_codes, agency)
    field_code = _strings(catalogue.field_codes, field_index)

    # The bad records: each breaks exactly one rule of the dossier suite.
    bad = rng.random(n) < BAD_SHARE_EACH * len(BAD_KINDS)
    bad_kind = np.where(bad, rng.integers(0, len(BAD_KINDS), n), -1)
    counts: Counter[str] = Counter({kind: int((bad_kind == k).sum()) for k, kind in enumerate(BAD_KINDS)})
    which = {kind: bad_kind == k for k, kind in enumerate(BAD_KINDS)}
    for kind in ("finished before received", "finished without a time", "unknown status", "due date too far"):
        # Untouched by anything else: a known status, never deleted or cancelled.
        state[which[kind]] = RESOLVED
        deleted[which[kind]] = False
    finished[which["finished before received"]] = received[which["finished before received"]] - 3 * HOUR
    finished[which["finished without a time"]] = np.datetime64("NaT")
    finished[which["unknown status"]] = np.datetime64("NaT")
    mask = which["due date too far"]
    due[mask] = received[mask] + 800 * DAY
    finished[mask] = np.datetime64("NaT")
    rated &= ~np.isnat(finished)
    status = STATUSES[state]
    status[which["unknown status"]] = "DANG XU LY"
    status[mask] = "PROCESSING"
    status_text = pa.array(status, pa.string())
    agency_code = pc.if_else(pa.array(which["unknown agency"]), pa.scalar(UNKNOWN_AGENCY), agency_code)
    field_code = pc.if_else(pa.array(which["field code off the schema"]), pa.scalar("LV TƯ PHÁP"), field_code)

    sequence = pc.utf8_lpad(pc.cast(pa.array(np.arange(first, first + n)), pa.string()), 8, "0")
    code = pc.binary_join_element_wise(
        pc.replace_substring(agency_code, "000.", "", max_replacements=1),
        pc.strftime(_times(received), format="%y%m%d"),
        sequence,
        "-",
    )
    due_days_value = np.where(np.isnat(due), np.nan, (due - received).astype("int64") / 86400)
    table = pa.table(
        {
            Col.CODE: code,
            Col.AGENCY_CODE: agency_code,
            Col.PROCEDURE_CODE: _strings(catalogue.procedure_codes.ravel(), pair * PROCEDURES_PER_PAIR + procedure),
            Col.FIELD_CODE: field_code,
            Col.FIELD_NAME: _strings(catalogue.field_names, field_index),
            Col.CHANNEL: _strings(CHANNELS, channel),
            Col.STATUS: status_text,
            Col.RECEIVED_AT: _times(received),
            Col.DUE_AT: _times(due),
            Col.FINISHED_AT: _times(finished),
            Col.FEE_REQUIRED: pa.array(fee_required),
            Col.PAID_ONLINE: pa.array(paid_online),
            Col.DIGITIZED: pa.array(digitized),
            Col.RESULT_ELECTRONIC: pa.array(result_electronic),
            Col.RATING: pa.array(rating.astype("int32"), pa.int32(), mask=~rated),
            Col.UPDATED_AT: _times(updated),
            Col.DELETED: pa.array(deleted),
            DUE_DAYS: pa.array(due_days_value, pa.float64(), mask=np.isnan(due_days_value)),
        }
    )
    return table, counts


# ---------------------------------------------------------------- staging


@dataclass
class Staged:
    batch_id: str
    rows: int
    bad: Counter[str]
    staged_file: Path
    parquet: Path
    generate_seconds: float
    parquet_seconds: float


def stage(
    engine: Engine, catalogue: Catalogue, rows: int, chunk_rows: int, seed: int, staging_dir: Path, copy: Path
) -> Staged:
    """Generate the batch chunk by chunk into its staging file, as extract stages a pull
    (`baocao.staging`); `copy` is a hard link that outlives the merge, for the DuckDB yardstick."""
    batch_id = f"{SOURCE}-{PERIOD_ID}-{uuid.uuid4().hex[:8]}"
    warehouse.start_batch(engine, batch_id, SOURCE, "rest_onestop", None, datetime(2026, 12, 15, 2, 0))
    bad: Counter[str] = Counter()
    timings = {"generate": 0.0, "parquet": 0.0}
    writer = staging.BatchWriter(staging_dir, batch_id)
    try:
        for chunk, first in enumerate(range(0, rows, chunk_rows)):
            started = time.perf_counter()
            table, counts = generate_chunk(catalogue, seed, chunk, first, min(chunk_rows, rows - first))
            bad += counts
            generated = time.perf_counter()
            writer.write(table)
            timings["generate"] += generated - started
            timings["parquet"] += time.perf_counter() - generated
            del table
    except BaseException:
        writer.abort()
        raise
    path = writer.close()
    copy.unlink(missing_ok=True)
    os.link(path, copy)
    warehouse.record_staged(engine, batch_id, pulled=rows, staged=rows)
    return Staged(batch_id, rows, bad, path, copy, timings["generate"], timings["parquet"])


# ---------------------------------------------------------------- the same checks in plain SQL

# DuckDB sees the Parquet copy through this view; its columns are the staged table's.
_SQL_TYPES = {pa.string(): sa.String(), pa.timestamp("us"): sa.DateTime(), pa.bool_(): sa.Boolean()}
PARQUET_VIEW = sa.table(
    "staged",
    *[
        sa.column(f.name, _SQL_TYPES.get(f.type, sa.Float() if pa.types.is_floating(f.type) else sa.Integer()))
        for f in staging.SCHEMA
    ],
)


def _row_condition(table: Any, condition: dict[str, Any] | None) -> ColumnElement[bool]:
    if not condition:
        return sa.true()
    if condition.get("type") != "comparison":
        raise NotImplementedError(f"row condition {condition!r} has no SQL translation in the bench")
    column = table.c[condition["column"]["name"]]
    parameter = condition["parameter"]
    operators: dict[str, Any] = {
        "IN": lambda: column.in_(parameter),
        "==": lambda: column == parameter,
        "!=": lambda: column != parameter,
        "<": lambda: column < parameter,
        "<=": lambda: column <= parameter,
        ">": lambda: column > parameter,
        ">=": lambda: column >= parameter,
    }
    if condition.get("operator") not in operators:
        raise NotImplementedError(f"row condition {condition!r} has no SQL translation in the bench")
    result: ColumnElement[bool] = operators[condition["operator"]]()
    return result


@dataclass(frozen=True)
class SqlCheck:
    """One expectation as plain SQL over one table, with GX's semantics (nulls are not failures)."""

    rule: str
    expectation_type: str
    column: str
    failing: ColumnElement[bool] | None  # row-level checks: the condition a failing row meets
    unique: ColumnElement[Any] | None  # uniqueness: the column whose repeated values fail
    where: ColumnElement[bool]  # the expectation's row condition

    def count_query(self, table: Any, scope: ColumnElement[bool]) -> sa.Select[Any]:
        if self.unique is not None:
            repeated = (
                sa.select(sa.func.count().label("n"))
                .select_from(table)
                .where(scope, self.where, self.unique.is_not(None))
                .group_by(self.unique)
                .having(sa.func.count() > 1)
                .subquery()
            )
            return sa.select(sa.func.coalesce(sa.func.sum(repeated.c.n), 0))
        assert self.failing is not None
        return sa.select(sa.func.count()).select_from(table).where(scope, self.where, self.failing)


def suite_as_sql(expectations: Sequence[Any], table: Any) -> list[SqlCheck]:
    """Each expectation of the suite as SQL on `table`, so the yardstick follows the suite as it changes."""
    checks: list[SqlCheck] = []
    for expectation in expectations:
        kwargs = expectation.configuration.kwargs
        kind = expectation.expectation_type
        rule = expectation.description or kind
        where = _row_condition(table, kwargs.get("row_condition"))
        name = kwargs.get("column") or kwargs.get("column_A")
        column = table.c[name]
        failing: ColumnElement[bool] | None = None
        unique: ColumnElement[Any] | None = None
        if kind in ("expect_column_values_to_be_unique", "expect_column_values_to_be_unique_in_batch"):
            unique = column
        elif kind == "expect_column_values_to_not_be_null":
            failing = column.is_(None)
        elif kind == "expect_column_values_to_be_in_set":
            failing = sa.and_(column.is_not(None), column.not_in(list(kwargs["value_set"])))
        elif kind == "expect_column_values_to_match_regex":
            failing = sa.and_(column.is_not(None), sa.not_(column.regexp_match(kwargs["regex"])))
        elif kind == "expect_column_values_to_be_between":
            outside = []
            if kwargs.get("min_value") is not None:
                low = kwargs["min_value"]
                outside.append(column <= low if kwargs.get("strict_min") else column < low)
            if kwargs.get("max_value") is not None:
                high = kwargs["max_value"]
                outside.append(column >= high if kwargs.get("strict_max") else column > high)
            failing = sa.and_(column.is_not(None), sa.or_(*outside))
        elif kind == "expect_column_pair_values_a_to_be_greater_than_b":
            a, b = column, table.c[kwargs["column_B"]]
            skip = {
                "either_value_is_missing": sa.or_(a.is_(None), b.is_(None)),
                "both_values_are_missing": sa.and_(a.is_(None), b.is_(None)),
                "neither": sa.false(),
            }[kwargs.get("ignore_row_if", "both_values_are_missing")]
            holds = a >= b if kwargs.get("or_equal") else a > b
            failing = sa.and_(sa.not_(skip), sa.not_(sa.func.coalesce(holds, sa.false())))
        else:
            raise NotImplementedError(f"{kind} has no SQL translation in the bench")
        checks.append(SqlCheck(rule, kind, name, failing, unique, where))
    return checks


def failing_rows_query(checks: Sequence[SqlCheck], table: Any, scope: ColumnElement[bool], key: str) -> sa.Select[Any]:
    """One scan: every record failing a row-level check, with one flag per check (uniqueness apart)."""
    row_level = [(n, c) for n, c in enumerate(checks) if c.failing is not None]
    failing = [sa.and_(c.where, c.failing) for _, c in row_level]
    flags = [
        sa.case((condition, 1), else_=0).label(f"c{n}") for (n, _), condition in zip(row_level, failing, strict=True)
    ]
    return sa.select(table.c[key], *flags).select_from(table).where(scope, sa.or_(*failing))


def one_scan_counts_query(checks: Sequence[SqlCheck], table: Any) -> sa.Select[Any]:
    """The row-level checks folded into one scan of count aggregates."""
    return sa.select(
        *[
            sa.func.sum(sa.case((sa.and_(c.where, c.failing), 1), else_=0)).label(f"c{n}")
            for n, c in enumerate(checks)
            if c.failing is not None
        ]
    ).select_from(table)


def duckdb_sql(statement: sa.Select[Any]) -> str:
    """SQLAlchemy → DuckDB text: the PostgreSQL dialect with literal values reads the same in DuckDB."""
    return str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def keys_per_rule(rows: Sequence[Any], checks: Sequence[SqlCheck]) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {check.rule: set() for check in checks}
    row_level = [c for c in checks if c.failing is not None]
    for row in rows:
        for check, flag in zip(row_level, row[1:], strict=True):
            if flag:
                keys[check.rule].add(row[0])
    return keys


# ---------------------------------------------------------------- the run


def _machine() -> dict[str, str]:
    memory_kib = 0
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "RAM": f"{memory_kib / 1024 / 1024:.1f} GiB",
        "CPU": model,
        "Python": platform.python_version(),
        "versions": (
            f"SQLAlchemy {sa.__version__}, GX {gx.__version__}, DuckDB {duckdb.__version__}, "
            f"pandas {pd.__version__}, pyarrow {pa.__version__}"
        ),
    }


def _envelope(period: Period, found: Any) -> renderer.Envelope:
    return renderer.Envelope(
        submission_id=str(uuid.uuid4()),
        report_type="TTHC_RESULTS",
        sender_code="000.00.00.H99",
        sender_name="UBND tỉnh (benchmark)",
        receiver_code="000.00.00.G01",
        receiver_name="Văn phòng Chính phủ",
        period=period,
        version=1,
        generated_at=datetime.now(LOCAL_TIMEZONE).replace(microsecond=0),
        producer_name="baocao",
        producer_version="bench",
        completeness=found,
    )


def _normalised(grouped: pd.DataFrame) -> pd.DataFrame:
    frame = grouped[["agency", "field", "field_name", *COUNT_COLUMNS]].copy()
    for name in COUNT_COLUMNS:
        frame[name] = frame[name].astype("int64")
    for name in ("agency", "field", "field_name"):
        frame[name] = frame[name].astype(str)
    return frame.sort_values(["agency", "field"], kind="stable").reset_index(drop=True)


def staged_view(parquet: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection in which the view `staged` (`PARQUET_VIEW`) reads the Parquet copy."""
    connection = duckdb.connect()
    connection.execute(f"CREATE VIEW staged AS SELECT * FROM read_parquet({_sql_literal(str(parquet))})")
    return connection


def count_failing(connection: duckdb.DuckDBPyConnection, checks: Sequence[SqlCheck]) -> Counter[str]:
    """Per rule, the failing rows DuckDB counts on `staged`: one COUNT query per check (the yardstick)."""
    counts: Counter[str] = Counter()
    for check in checks:
        result = connection.execute(duckdb_sql(check.count_query(PARQUET_VIEW, sa.true()))).fetchone()
        counts[check.rule] += int(result[0]) if result else 0
    return counts


def failing_keys(parquet: Path, checks: Sequence[SqlCheck]) -> dict[str, set[str]]:
    """Per rule, the codes of the failing records, found by DuckDB on the Parquet copy (one scan)."""
    connection = staged_view(parquet)
    try:
        keys = keys_per_rule(
            connection.execute(duckdb_sql(failing_rows_query(checks, PARQUET_VIEW, sa.true(), Col.CODE))).fetchall(),
            checks,
        )
        for check in checks:
            if check.unique is not None:
                repeated = (
                    sa.select(check.unique)
                    .where(check.unique.is_not(None))
                    .group_by(check.unique)
                    .having(sa.func.count() > 1)
                )
                statement = sa.select(PARQUET_VIEW.c[Col.CODE]).where(check.where, check.unique.in_(repeated))
                keys[check.rule] = {row[0] for row in connection.execute(duckdb_sql(statement)).fetchall()}
        return keys
    finally:
        connection.close()


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class Checks:
    lines: list[str] = field(default_factory=list)
    passed: bool = True

    def expect(self, condition: bool, text: str) -> None:
        self.lines.append(f"- [{'x' if condition else ' '}] {text}")
        self.passed &= condition
        print(f"  check: {'ok  ' if condition else 'FAIL'} {text}", flush=True)


def run(args: argparse.Namespace, workdir: Path, url: str, bench: Bench, checks: Checks) -> dict[str, Any]:
    period = parse_period(PERIOD_ID, Regime.D09)
    catalogue = build_catalogue(args.seed)
    registry = catalogue.registry
    engine = warehouse.connect(url)
    info: dict[str, Any] = {"agencies": len(registry.agencies), "pairs": len(catalogue.pair_probability)}
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            info["server"] = connection.execute(sa.text("SHOW server_version")).scalar_one()

    print(f"staging {args.rows:,} dossiers ({args.warehouse}) …", flush=True)
    with bench.step("staging", "generate + stage + Parquet (total)") as note:
        staged = stage(
            engine, catalogue, args.rows, args.chunk_rows, args.seed, workdir / "staging", workdir / "dossiers.parquet"
        )
        note["note"] = f"{sum(staged.bad.values()):,} bad records planted"
    bench.results += [
        StepResult("staging", "generate (numpy/Arrow)", staged.generate_seconds, None),
        StepResult("staging", "write the staged Parquet file", staged.parquet_seconds, None),
    ]
    planted = sum(staged.bad.values())

    print("pipeline steps …", flush=True)
    batch_id = staged.batch_id
    expectations = dossier_rules.dossier_suite(registry.codes)
    with bench.step("pipeline", VALIDATE_STEP) as note:
        batch = warehouse.batch_summary(engine, batch_id)
        outcome = SuiteRunner(workdir / "validation").validate_parquet(
            staged.staged_file,
            suite_name=dossier_rules.SUITE_NAME,
            expectations=expectations,
            key_column=Col.CODE,
            run_name=batch_id,
        )
        note["note"] = f"{outcome.evaluated} expectations, {len(outcome.failed_rules)} failed"
    # The bench's own list of failing records, from the Parquet copy (untimed): the reference for
    # quarantine, and a completion of GX's list where GX truncated it, so later steps see a correct batch.
    sql_checks = suite_as_sql(expectations, PARQUET_VIEW)
    truth = failing_keys(staged.parquet, sql_checks)
    listed: dict[str, set[str]] = {}
    for failure in outcome.failures:
        listed.setdefault(failure.rule, set()).add(failure.key)
    unlisted = [
        (key, check.rule, f"[{check.expectation_type}] (found by the benchmark; GX did not list it)")
        for check in sql_checks
        for key in sorted(truth[check.rule] - listed.get(check.rule, set()))
    ]
    checks.expect(
        not unlisted and not outcome.incomplete_rules,
        f"GX named every failing record ({sum(len(v) for v in listed.values()):,} named, "
        f"{sum(len(v) for v in truth.values()):,} failing"
        + (
            f"; pipeline.validate_batch would hold the batch back: {outcome.incomplete_rules}"
            if outcome.incomplete_rules
            else ""
        )
        + ")",
    )
    for check in sql_checks:
        expected = sum(n for kind, n in staged.bad.items() if BAD_KINDS[kind] == (check.expectation_type, check.column))
        if expected or truth[check.rule]:
            checks.expect(
                len(truth[check.rule]) == expected,
                f"{check.expectation_type}({check.column}): {len(truth[check.rule]):,} failing = {expected:,} planted",
            )
    with bench.step("pipeline", "validate: write quarantine") as note:
        failures = [(f.key, f.rule, f.detail) for f in outcome.failures] + unlisted
        quarantined = warehouse.record_quarantine(engine, batch_id, batch["source"], failures, stage="validate")
        note["note"] = f"{quarantined:,} dossiers" + (f", {len(unlisted):,} added by the bench" if unlisted else "")
    with bench.step("pipeline", "merge into dossiers (first load into an empty table)") as note:
        merged = warehouse.merge_batch(engine, batch_id, staged.staged_file)
        note["note"] = f"{merged:,} dossiers"
    checks.expect(quarantined == planted, f"quarantined {quarantined:,} = bad records planted {planted:,}")
    checks.expect(merged == args.rows - planted, f"merged {merged:,} = staged {args.rows:,} − bad {planted:,}")

    with bench.step("pipeline", "aggregate: GROUP BY in the warehouse") as note:
        with engine.connect() as connection:
            grouped = pd.DataFrame(connection.execute(tthc_rows_query(period)).mappings().all())
        note["note"] = f"{len(grouped):,} agency × field rows"
    with bench.step("pipeline", "aggregate: assemble report (pandas)") as note:
        report = assemble_tthc_report(grouped, registry, period)
        found = completeness(grouped, registry, period)
        note["note"] = f"{len(report):,} report rows"
    with bench.step("pipeline", "aggregate: store the report version (JSON lines, hash)") as note:
        tables_ = {"report": report}
        digest = stored_reports.store(engine, Report(ReportType.TTHC_RESULTS, period, tables_, found), {}, utc_now())
        note["note"] = f"version {digest[:12]}"
    with bench.step("pipeline", "validate report: read the version back, GX on pandas") as note:
        report = stored_reports.load(engine, ReportType.TTHC_RESULTS, period).report.tables["report"]
        report_outcome = SuiteRunner(workdir / "validation").validate_frame(
            report_rules.report_check_frame(report),
            suite_name=report_rules.SUITE_NAME,
            expectations=report_rules.report_suite(),
            key_column=report_rules.ROW_LABEL,
            run_name=f"TTHC_RESULTS-{period.id}-bench",
        )
        note["note"] = f"{report_outcome.evaluated} expectations"
    checks.expect(report_outcome.success, "the report suite passes (identities, totals, rates)")
    stored_reports.mark_validated(engine, digest, utc_now(), None)
    with bench.step("pipeline", "render: read the validated version, XML + XSD check") as note:
        report = stored_reports.load(engine, ReportType.TTHC_RESULTS, period, digest).report.tables["report"]
        payload = renderer.render_tthc_xml(_envelope(period, found), report)
        (workdir / "submission.xml").write_bytes(payload)
        note["note"] = f"{len(payload) / 1024 / 1024:.1f} MiB"
    incremental_merge(engine, staged, quarantined_codes={key for key, _, _ in failures}, bench=bench, checks=checks)
    total = report[report["kind"] == "TOTAL"].iloc[0]
    info["report_total"] = {name: int(total[name]) for name in COUNT_COLUMNS}
    info["on_time_rate"] = str(total["on_time_rate"])
    info["completeness"] = f"{found.reported}/{found.expected}"
    engine.dispose()

    print("DuckDB on the Parquet file …", flush=True)
    connection = staged_view(staged.parquet)
    # The warehouse aggregates what was merged: everything but the quarantined records.
    held_back = pa.table({"code": pa.array(sorted({key for key, _, _ in failures}), pa.string())})
    connection.register("held_back_frame", held_back)
    connection.execute("CREATE TABLE held_back AS SELECT code FROM held_back_frame")
    connection.execute("CREATE VIEW dossiers AS SELECT * FROM staged WHERE code NOT IN (SELECT code FROM held_back)")
    aggregation = str(
        tthc_rows_query(period).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    with bench.step("duckdb", "same aggregation (tthc_rows_query)") as note:
        duck_grouped = connection.execute(aggregation).df()
        note["note"] = f"{len(duck_grouped):,} rows"
    ours, theirs = _normalised(grouped), _normalised(duck_grouped)
    same = ours.equals(theirs)
    if not same:
        print(ours.compare(theirs) if ours.shape == theirs.shape else f"shapes {ours.shape} ≠ {theirs.shape}")
    checks.expect(same, "DuckDB aggregation = warehouse aggregation (same rows, same counts)")
    with bench.step("duckdb", f"same {len(sql_checks)} checks, one COUNT query each") as note:
        duck_counts = count_failing(connection, sql_checks)
        note["note"] = f"{sum(duck_counts.values()):,} failing rows"
    with bench.step("duckdb", "same checks folded into one scan (+ unique)"):
        connection.execute(duckdb_sql(one_scan_counts_query(sql_checks, PARQUET_VIEW))).fetchall()
        for check in sql_checks:
            if check.unique is not None:
                connection.execute(duckdb_sql(check.count_query(PARQUET_VIEW, sa.true()))).fetchall()
    connection.close()
    checks.expect(
        all(duck_counts[c.rule] == len(truth[c.rule]) for c in sql_checks),
        "DuckDB COUNT per rule = failing records per rule",
    )
    info["failing_per_rule"] = {rule: len(keys) for rule, keys in truth.items() if keys}
    info["planted"] = dict(staged.bad)
    return info


def incremental_merge(
    engine: Engine, staged: Staged, quarantined_codes: set[str], bench: Bench, checks: Checks
) -> None:
    """A later pull in the same run: a tenth of the year's dossiers again, each updated a day later,
    merged through the upsert path that every batch after the first takes (not in the target)."""
    rows = max(1, staged.rows // 10)
    parts: list[pa.RecordBatch] = []
    taken = 0
    for part in pq.ParquetFile(staged.parquet).iter_batches(batch_size=100_000):
        part = part.filter(pc.invert(pc.is_in(part.column(Col.CODE.value), pa.array(sorted(quarantined_codes)))))
        parts.append(part.slice(0, rows - taken))
        taken += parts[-1].num_rows
        if taken >= rows:
            break
    table = pa.Table.from_batches(parts)
    later = pc.add(table.column(Col.UPDATED_AT.value), pa.scalar(86_400_000_000, pa.duration("us")))
    table = table.set_column(table.schema.get_field_index(Col.UPDATED_AT.value), Col.UPDATED_AT.value, later)
    batch_id = f"{SOURCE}-update-{uuid.uuid4().hex[:8]}"
    warehouse.start_batch(engine, batch_id, SOURCE, "rest_onestop", None, datetime(2026, 12, 16, 2, 0))
    writer = staging.BatchWriter(staged.staged_file.parent, batch_id)
    writer.write(table)
    path = writer.close()
    warehouse.record_staged(engine, batch_id, pulled=table.num_rows, staged=table.num_rows)
    with bench.step("incremental", "merge an update batch (upsert path)") as note:
        started = time.perf_counter()
        merged = warehouse.merge_batch(engine, batch_id, path)
        seconds = time.perf_counter() - started
        note["note"] = f"{merged:,} dossiers updated, {merged / seconds:,.0f} rows/s"
    with engine.connect() as connection:
        rewritten = connection.execute(
            sa.select(sa.func.count()).where(tables.dossiers.c.batch_id == batch_id)
        ).scalar_one()
    checks.expect(
        merged == table.num_rows == rewritten,
        f"update batch: {rewritten:,} of {table.num_rows:,} newer versions stored",
    )


GROUP_TITLES = {
    "pipeline": "pipeline (the target)",
    "incremental": "a later pull (not in the target)",
    "duckdb": "DuckDB on Parquet, same run",
    "staging": "staging (not in the target)",
}


def _table(results: Sequence[StepResult], group: str) -> list[str]:
    lines = [f"| *{GROUP_TITLES[group]}* | | | | |"]
    for r in results:
        if r.group != group:
            continue
        peak = f"{r.peak_mib:,.0f}" if r.peak_mib is not None else "—"
        load = f"{r.load:.1f} / {r.cpu_wait:.1f}" if r.load is not None and r.cpu_wait is not None else ""
        lines.append(f"| {r.name} | {r.seconds:,.2f} | {peak} | {load} | {r.note} |")
    return lines


def render_markdown(args: argparse.Namespace, bench: Bench, checks: Checks, info: dict[str, Any]) -> str:
    machine = _machine()
    pipeline = [r for r in bench.results if r.group == "pipeline"]
    pipeline_seconds = sum(r.seconds for r in pipeline)
    pipeline_peak = max((r.peak_mib or 0.0) for r in pipeline)
    validate = bench.seconds("pipeline", VALIDATE_STEP)
    duck_checks = next(r for r in bench.results if r.group == "duckdb" and "one COUNT query each" in r.name)
    ratio = validate / duck_checks.seconds
    verdict = {
        f"whole year ≤ {TARGET_SECONDS:.0f} s": pipeline_seconds <= TARGET_SECONDS,
        f"peak ≤ {TARGET_PEAK_MIB:,.0f} MiB": pipeline_peak <= TARGET_PEAK_MIB,
        f"validation ≤ {TARGET_RATIO:.0f}× DuckDB checks": ratio <= TARGET_RATIO,
        "correctness checks": checks.passed,
    }
    staging_total = next(r for r in bench.results if r.group == "staging")
    lines = [
        f"# Pipeline benchmark: {args.rows:,} dossiers, warehouse {args.warehouse}",
        "",
        f"{datetime.now(LOCAL_TIMEZONE):%Y-%m-%d %H:%M %Z} · period {PERIOD_ID} (D09) · seed {args.seed} · "
        f"{info['agencies']} agencies, {info['pairs']:,} agency × field pairs · chunks of {args.chunk_rows:,} rows",
        "",
        "Machine: " + " · ".join(f"{k} {v}" for k, v in machine.items() if k != "versions"),
        "",
        machine["versions"] + (f" · PostgreSQL {info['server']}" if "server" in info else ""),
        "",
        "Peak = peak RSS of the benchmark process during the step ("
        + bench.meter.method
        + "); the PostgreSQL server's own memory is not included. Load = 1-minute load average at the "
        "end of the step; CPU wait = seconds this process's threads were runnable but waiting for a CPU "
        "(other work on the machine): large values mean the seconds are inflated.",
        "",
        "| step | seconds | peak MiB | load / CPU wait s | |",
        "|---|---:|---:|---:|---|",
        *_table(bench.results, "pipeline"),
        f"| **pipeline total (validate → render)** | **{pipeline_seconds:,.2f}** | **{pipeline_peak:,.0f}** | | |",
        *_table(bench.results, "duckdb"),
        f"| **validation (GX) / DuckDB checks** | **{ratio:.1f}×** | | | target ≤ {TARGET_RATIO:.0f}× |",
        *_table(bench.results, "staging"),
        *_table(bench.results, "incremental"),
        "",
        f"Staging (not part of the target): {staging_total.seconds:,.1f} s.",
        "",
        "Targets: " + " · ".join(f"{name}: **{'PASS' if ok else 'FAIL'}**" for name, ok in verdict.items()),
        "",
        "Correctness:",
        "",
        *checks.lines,
        "",
        f"Report total: {info['report_total']} · on-time rate {info['on_time_rate']} % · "
        f"completeness {info['completeness']}",
        "",
    ]
    return "\n".join(lines)


def _postgres_database(admin_url: str) -> tuple[str, str]:
    name = f"baocao_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_postgres_database(admin_url: str, name: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=5_000_000, help="dossiers in the province-year (5,000,000)")
    parser.add_argument("--warehouse", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--out", type=Path, help="Markdown result file (bench/results/<timestamp>-<backend>.md)")
    parser.add_argument("--seed", type=int, default=20261214)
    parser.add_argument("--chunk-rows", type=int, default=250_000, help="rows generated and staged at a time")
    parser.add_argument("--workdir", type=Path, help="SQLite file, Parquet, GX context (a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and the PostgreSQL database")
    parser.add_argument("--postgres-admin-url", default=os.environ.get("BAOCAO_BENCH_POSTGRES", DEFAULT_POSTGRES_ADMIN))
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="baocao-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    database: str | None = None
    if args.warehouse == "sqlite":
        url = f"sqlite:///{workdir / 'warehouse.db'}"
    else:
        database, url = _postgres_database(args.postgres_admin_url)
    machine = _machine()
    print(f"machine: nproc {machine['nproc']}, RAM {machine['RAM']}, {machine['CPU']}", flush=True)
    print(f"work folder: {workdir}" + (f"; PostgreSQL database {database}" if database else ""), flush=True)
    bench = Bench(MemoryMeter())
    checks = Checks()
    try:
        info = run(args, workdir, url, bench, checks)
    finally:
        bench.meter.close()
        if database and not args.keep:
            _drop_postgres_database(args.postgres_admin_url, database)
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    markdown = render_markdown(args, bench, checks, info)
    out = args.out or BENCH_DIR / "results" / f"{datetime.now():%Y%m%d-%H%M%S}-{args.warehouse}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown, encoding="utf-8")
    print()
    print(markdown)
    print(f"written to {out}")
    return 0 if checks.passed else 1


if __name__ == "__main__":
    sys.exit(main())
