"""Runs a suite with Great Expectations 1.x and builds the Data Docs (HTML) for every run.

Two ways in: a staged batch's Parquet file, checked by GX's SQL engine on DuckDB (large data never
becomes a pandas frame), or a small pandas frame (the aggregated report). Either way the outcome
lists each failed rule with the keys of the failing records and the values compared, so callers can
quarantine or block with a precise message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import pyarrow as pa
from great_expectations.data_context.types.base import ProgressBarsConfig

from baocao.core import file_locks
from baocao.core.errors import RetriableError
from baocao.expectations import gx_adapter

log = logging.getLogger(__name__)

# GX lists only this many failing record keys per rule; a batch with more failing records than
# this is held back whole (see Outcome.incomplete_rules) rather than half-quarantined.
MAX_LISTED_FAILURES = 1_000_000
# How long a validation waits for another process's to end before the run stops, retriable: a
# validation of millions of staged rows takes minutes.
GX_LOCK_WAIT_SECONDS = 1800
# GX prints a progress bar per validation to stderr: noise in task logs.
logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass(frozen=True)
class FailedRecord:
    key: str
    rule: str
    detail: str


@dataclass
class Outcome:
    suite: str
    success: bool
    evaluated: int
    failed_rules: list[str] = field(default_factory=list)
    failures: list[FailedRecord] = field(default_factory=list)
    docs_index: Path | None = None
    # Rules whose failing records could not all be listed: their keys are incomplete.
    incomplete_rules: list[str] = field(default_factory=list)

    @property
    def failed_keys(self) -> set[str]:
        return {failure.key for failure in self.failures}


_SAFE_NAME = re.compile(r"[^A-Za-z0-9_]")


def _name(text: str) -> str:
    return _SAFE_NAME.sub("_", text)


def _plain(value: Any) -> str:
    """A compared value as an operator reads it: numbers bare, text quoted, numpy scalars unwrapped."""
    if hasattr(value, "item"):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)


def _raised(exception_info: Any) -> str | None:
    """The message of an exception GX caught while running a check, at the top level or nested.

    GX 1.x nests it per metric (`{"MetricConfigurationID(...)": {"raised_exception": True, ...}}`)
    when a metric fails, so looking only at the top level would miss it.
    """
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message") or "unknown error")
    for nested in exception_info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return str(nested.get("exception_message") or "unknown error")
    return None


def _listed(index_list: list[Any], key_column: str) -> list[dict[str, Any]]:
    """GX's unexpected_index_list as one dict per failing record, in either of its two shapes.

    With `exclude_unexpected_values` GX returns `[{key_column: [k1, k2, ...]}]`; otherwise one
    `{key_column: k, column: value}` per record.
    """
    if len(index_list) == 1 and isinstance(index_list[0].get(key_column), list):
        return [{key_column: key} for key in index_list[0][key_column]]
    return [index if isinstance(index, dict) else {key_column: index} for index in index_list]


def _with_values(
    path: Path, key_column: str, failed: list[tuple[str, str, list[str], list[dict[str, Any]]]]
) -> list[tuple[str, str, list[str], list[dict[str, Any]]]]:
    """The compared values of the failing records, read from the batch's file in one scan."""
    wanted = sorted({c for _, _, compared, listed in failed for c in compared if listed and c not in listed[0]})
    keys = sorted({str(index[key_column]) for _, _, compared, listed in failed if compared for index in listed})
    if not wanted or not keys:
        return failed
    failing = pa.table({key_column: pa.array(keys, pa.string())})
    with duckdb.connect() as connection:
        connection.register("failing", failing)
        columns = ", ".join(f'b."{c}"' for c in wanted)
        found = connection.execute(
            f'SELECT b."{key_column}", {columns} FROM read_parquet(?) AS b JOIN failing USING ("{key_column}")',
            [str(path)],
        ).fetchall()
    values = {str(row[0]): dict(zip(wanted, row[1:], strict=True)) for row in found}
    return [
        (rule, kind, compared, [{**values.get(str(index[key_column]), {}), **index} for index in listed])
        for rule, kind, compared, listed in failed
    ]


class SuiteRunner:
    """A file-backed GX context under `root` (suites, results and Data Docs live there).

    Building one installs the project's GX patches (`expectations.gx_adapter`), checked first.

    GX's file context is not safe for two processes at once: each rewrites `great_expectations.yml`,
    the suites, checkpoints, validation results and the Data Docs index of the same folder, and a run
    that reads another's half-written file dies (two `baocao run` at once did, with a GX traceback). So
    every use of the context, from loading it to the Data Docs it builds, holds the folder's lock
    (`<root>/.gx.lock`, an OS file lock that a killed process releases), and loads the context afresh
    under it, so what another process wrote meanwhile is read, never overwritten with a stale copy.
    Runs of other reports take turns on GX's files only; their pulls and merges go on in parallel.
    """

    def __init__(self, root: Path) -> None:
        gx_adapter.install()
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.context: Any = None

    @contextmanager
    def _files_held(self) -> Iterator[Any]:
        """GX's files locked for this process (waiting for another run's validation to end), and the
        context loaded under the lock."""
        try:
            with file_locks.held(self.root / ".gx.lock", wait_seconds=GX_LOCK_WAIT_SECONDS, note=True):
                self.context = self._load_context()
                yield self.context
        except file_locks.LockBusy as busy:
            raise RetriableError(
                f"Great Expectations' files under {self.root} stayed locked by {busy.holder or 'another run'} "
                f"for {GX_LOCK_WAIT_SECONDS} s; try again later"
            ) from None

    def _load_context(self) -> Any:
        context: Any = gx.get_context(mode="file", project_root_dir=str(self.root))
        variables = context.variables
        changed = False
        bars = variables.progress_bars
        if bars is None or (bars.get("globally", True) if isinstance(bars, dict) else bars.globally):
            variables.progress_bars = ProgressBarsConfig(globally=False)
            changed = True
        sites = dict(variables.data_docs_sites or {})
        compiled = self.root / "gx" / "uncommitted" / "compiled_templates"
        configured = {name: gx_adapter.data_docs_site(site, compiled) for name, site in sites.items()}
        if configured != sites:
            variables.data_docs_sites = configured
            changed = True
        if changed:
            variables.save()
        return context

    @property
    def docs_index(self) -> Path:
        return self.root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"

    def validate_parquet(
        self,
        path: Path,
        *,
        suite_name: str,
        expectations: Sequence[gxe.Expectation],
        key_column: str,
        run_name: str,
    ) -> Outcome:
        """Validate a staged Parquet file with GX's SQL engine on DuckDB (`expectations.gx_adapter.duckdb_dialect`).

        GX reads the file through a view in a scratch DuckDB database beside the Data Docs, removed
        afterwards. (Copying the rows into DuckDB's own storage first costs more than its faster scans save.)
        """
        with self._files_held() as context:
            return self._validate_parquet(context, path, suite_name, expectations, key_column, run_name)

    def _validate_parquet(
        self,
        context: Any,
        path: Path,
        suite_name: str,
        expectations: Sequence[gxe.Expectation],
        key_column: str,
        run_name: str,
    ) -> Outcome:
        scratch_dir = self.root / "scratch"
        scratch_dir.mkdir(exist_ok=True)
        database = scratch_dir / f"{_name(run_name)}.duckdb"
        database.unlink(missing_ok=True)
        with duckdb.connect(str(database)) as connection:
            # DuckDB takes no parameters in DDL; the path is quoted as an SQL string literal.
            quoted = str(path.resolve()).replace("'", "''")
            connection.execute(f"CREATE VIEW batch AS SELECT * FROM read_parquet('{quoted}')")
        datasource = context.data_sources.add_or_update_sql(
            name="staged", connection_string=gx_adapter.staged_database_url(database)
        )
        try:
            asset_name = f"{suite_name}_staged"
            if asset_name in {asset.name for asset in datasource.assets}:
                datasource.delete_asset(asset_name)
            asset = datasource.add_table_asset(name=asset_name, table_name="batch")
            batch_definition = asset.add_batch_definition_whole_table(name="whole")
            return self._run(batch_definition, suite_name, expectations, key_column, run_name, {}, values_from=path)
        finally:
            # Close GX's DuckDB connections: the file goes, and DuckDB objects left alive at exit are
            # reported as leaks by its bindings.
            datasource.get_execution_engine().engine.dispose()
            datasource.get_engine().dispose()
            database.unlink(missing_ok=True)
            database.with_name(database.name + ".wal").unlink(missing_ok=True)

    def validate_frame(
        self,
        frame: pd.DataFrame,
        *,
        suite_name: str,
        expectations: Sequence[gxe.Expectation],
        key_column: str,
        run_name: str,
    ) -> Outcome:
        with self._files_held() as context:
            datasource = context.data_sources.add_or_update_pandas(name="frames")
            asset_name = f"{suite_name}_frame"
            if asset_name in {asset.name for asset in datasource.assets}:
                datasource.delete_asset(asset_name)
            asset = datasource.add_dataframe_asset(name=asset_name)
            batch_definition = asset.add_batch_definition_whole_dataframe(name="whole")
            return self._run(batch_definition, suite_name, expectations, key_column, run_name, {"dataframe": frame})

    def _run(
        self,
        batch_definition: Any,
        suite_name: str,
        expectations: Sequence[gxe.Expectation],
        key_column: str,
        run_name: str,
        batch_parameters: dict[str, Any],
        values_from: Path | None = None,
    ) -> Outcome:
        """Run the suite; `values_from` (the batch's Parquet file) has GX list only the failing keys.

        GX's lists of failing records carry each record's values several times over (values, index
        list, partial lists, counts), and copying and serialising them took longer than the checks on
        a big batch. For a staged batch GX lists keys only, and the values compared are read back for
        those records in one scan of the file.
        """
        # Suites are rebuilt from code on every run: the code is the single source of the rules.
        # Saving the checkpoint saves its validation definition and suite (each once; saving them
        # one by one as well wrote the suite three times).
        suite = gx.ExpectationSuite(name=suite_name, expectations=[e.copy() for e in expectations])
        definition = gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch_definition, suite=suite)
        checkpoint = self.context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"{suite_name}_checkpoint",
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
                result_format={
                    "result_format": "COMPLETE",
                    "unexpected_index_column_names": [key_column],
                    "partial_unexpected_count": MAX_LISTED_FAILURES,
                    "exclude_unexpected_values": values_from is not None,
                },
            )
        )
        result = checkpoint.run(batch_parameters=batch_parameters, run_id=gx.RunIdentifier(run_name=_name(run_name)))
        validation = next(iter(result.run_results.values()))
        outcome = Outcome(
            suite=suite_name,
            success=bool(validation.success),
            evaluated=int(validation.statistics.get("evaluated_expectations", 0)),
            docs_index=self.docs_index,
        )
        failed: list[tuple[str, str, list[str], list[dict[str, Any]]]] = []
        for item in validation.results:
            if item.success:
                continue
            config = item.expectation_config
            rule = config.description or config.type
            outcome.failed_rules.append(rule)
            problem = _raised(item.exception_info)
            if problem is not None:
                # A check that could not run proves nothing about any record: hold the batch back.
                outcome.incomplete_rules.append(rule)
                outcome.failures.append(FailedRecord("(whole batch)", rule, f"check could not run: {problem}"))
                continue
            compared = [
                c
                for c in (config.kwargs.get("column"), config.kwargs.get("column_A"), config.kwargs.get("column_B"))
                if c and c != key_column
            ]
            listed = _listed(item.result.get("unexpected_index_list") or [], key_column)
            rows = (item.result.get("details") or {}).get("unexpected_rows")
            if rows:  # a SQL rule (UnexpectedRowsExpectation): each row names a key and what it found
                listed, compared = rows, [name for name in rows[0] if name != key_column]
            if not listed or int(item.result.get("unexpected_count") or 0) > len(listed):
                # A failed rule that names no (or not every) failing record cannot be quarantined record by record.
                outcome.incomplete_rules.append(rule)
            failed.append((rule, config.type, compared, listed))
        if values_from is not None:
            failed = _with_values(values_from, key_column, failed)
        for rule, kind, compared, listed in failed:
            for index in listed:
                key = str(index.get(key_column))
                values = ", ".join(f"{c}={_plain(index.get(c))}" for c in compared)
                outcome.failures.append(FailedRecord(key, rule, f"[{kind}] {values}".strip()))
        log.info(
            "suite %s: %d expectation(s), %s; %d failing record(s)",
            suite_name,
            outcome.evaluated,
            "passed" if outcome.success else "FAILED",
            len(outcome.failed_keys),
        )
        return outcome
