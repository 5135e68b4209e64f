"""Kinds `ict_workbook` and `egov_workbook`: the yearly self-assessment workbooks, one per year with the
year in its file name (department-systems.md §4). A year's scores come whole and replace whole what
the report stored for that year, so the workbook is checked whole first: one rejected row, or scores
the report could not be assembled from, refuse it, and the stored scores stay as they were.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from baocao.connectors import workbooks
from baocao.connectors.catalogue_xml import ReadResult
from baocao.connectors.tabular import SpreadsheetError
from baocao.core.bounds import Family, check_text, column_limit, printable
from baocao.core.errors import BaocaoError, ConfigurationError, RuleFailure
from baocao.core.periods import Period, PeriodType, Regime, parse_period
from baocao.core.report import ReportType
from baocao.core.sources import EgovWorkbookSource, FileSource, IctWorkbookSource
from baocao.core.states import BatchState
from baocao.run.sources.files import extract_file, files, refuse, refused_read
from baocao.run.sources.kind import Extraction, SourceKind, Storage
from baocao.storage import scores as stored_scores
from baocao.storage import warehouse
from baocao.transforms import egov_maturity, ict_ranking

log = logging.getLogger(__name__)

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
_YEAR_IN_NAME = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")


def _workbook_for(source: FileSource, period_id: str | None, report: ReportType, regime: Regime) -> tuple[Path, Period]:
    """The workbook of the period, and the period. A workbook says its year in its file name
    (`ict-2019.xlsx`); with no period given, a single file's name gives it."""
    paths = files(source, source.path, WORKBOOK_SUFFIXES, "workbook")
    years = {path: set(_YEAR_IN_NAME.findall(path.stem)) for path in paths}
    if period_id is None:
        if len(paths) == 1 and len(years[paths[0]]) == 1:
            period_id = next(iter(years[paths[0]]))
        else:
            raise ConfigurationError(
                f"source {source.name}: no period given, and the year cannot be told from the file name(s) "
                f"{', '.join(path.name for path in paths)}: give the period"
            )
    period = parse_period(period_id, regime)
    if period.type is not PeriodType.YEAR:
        raise ConfigurationError(f"source {source.name}: {report} workbooks hold a year; {period_id} is not one")
    year = period.id
    if len(paths) == 1:
        path = paths[0]
        if years[path] and year not in years[path]:
            raise ConfigurationError(
                f"source {source.name}: the workbook {path.name} is for {', '.join(sorted(years[path]))}, not {year}"
            )
        return path, period
    chosen = [path for path in paths if year in years[path]]
    if len(chosen) != 1:
        found = ", ".join(path.name for path in chosen) if chosen else "none"
        raise ConfigurationError(
            f"source {source.name}: one workbook for {year} expected in {source.path} (file name with the year), "
            f"found {found}"
        )
    return chosen[0], period


def _score_rows(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        row = {"code": record["agency_code"], "block": record["block"], "name": record["agency_name"]}
        row.update({column: record.get(column) for column in columns if column not in ("code", "block", "name")})
        rows.append(row)
    return rows


# Text columns of a score row: codes (no control character at all) and the unit's name (free text).
_SCORE_CODES = ("code", "block", "level")


def _bounds_failures(scores: Sequence[dict[str, Any]], report: ReportType, workbook: str) -> list[RuleFailure]:
    """The bounds the score rows break (`baocao.core.bounds`): texts within their `agency_scores`
    column and free of control characters. One rejected row refuses the workbook, as any rejected row."""
    family = Family.ICT if report is ReportType.ICT_RANKING else Family.EGOV
    failures = []
    for number, row in enumerate(scores, start=1):
        for column in (*_SCORE_CODES, "name"):
            value = row.get(column)
            if isinstance(value, str):
                limit = column_limit("agency_scores", column)
                found = check_text(family, column, value, limit, code=column in _SCORE_CODES)
                key = f"{workbook} unit #{number} ({printable(row.get('code'), 40)})"
                failures += [RuleFailure(failure.rule, key, str(failure)) for failure in found]
    return failures


@dataclass(frozen=True)
class Workbook:
    """What a workbook kind feeds: its report, the reader of its workbook, the score columns the report
    takes, and the report's assembly (tried on the scores before they replace the stored ones)."""

    report: ReportType
    read: Callable[[Path], ReadResult]
    columns: tuple[str, ...]
    assemble: Callable[[pd.DataFrame, Period], Any]


def _store_scores(extraction: Extraction, source: FileSource, batch_id: str, workbook: Workbook) -> None:
    """The year's scores replace the stored ones only when every row of the workbook is sound and the
    report can be assembled from them."""
    config, report = extraction.config, workbook.report
    settings = config.report(report)
    rivals = [name for name in settings.sources if name != source.name and config.source(name).kind == source.kind]
    if rivals:
        # Scores are stored whole per report and period: a second workbook source would replace the first's.
        raise ConfigurationError(
            f"report {report}: sources {source.name} and {', '.join(rivals)} are both {source.kind}; "
            "a report's scores come from one workbook"
        )
    path, period = _workbook_for(source, extraction.period_id, report, settings.regime)
    kept = f"the {report} {period.id} scores stored before are kept"
    try:
        result = workbook.read(path)
    except SpreadsheetError as error:
        refused_read(extraction, source, batch_id, error, "workbook.refused")
        raise
    if result.rejects:
        refuse(extraction, source, batch_id, result.rejects, kept)
    scores = _score_rows(result.records, workbook.columns)
    out_of_bounds = _bounds_failures(scores, workbook.report, path.name)
    if out_of_bounds:
        refuse(extraction, source, batch_id, out_of_bounds, kept)
    if not scores:
        refuse(extraction, source, batch_id, [RuleFailure(f"{source.kind}.empty", path.name, "no unit rows")], kept)
    try:
        # What the report step will do with the stored scores (blocks of the period, 3 decimals): done
        # now, so that scores it would refuse never replace good ones.
        workbook.assemble(pd.DataFrame(scores, columns=list(workbook.columns)), period)
    except (BaocaoError, ValueError) as error:
        refuse(
            extraction, source, batch_id, [RuleFailure(f"{report.value.lower()}.input", path.name, str(error))], kept
        )
    stored = stored_scores.store_scores(extraction.engine, report, period, source.name, batch_id, scores)
    warehouse.finish_file_batch(
        extraction.engine, batch_id, BatchState.STORED, pulled=len(scores), stored=stored, quarantined=0
    )
    log.info(
        "source %s: %s %s: %d unit(s) stored from %s (%d row(s) that are not data skipped)",
        source.name,
        report,
        period.id,
        stored,
        path.name,
        len(result.skipped),
    )


def _extractor(workbook: Workbook) -> Callable[[Extraction, FileSource], str]:
    """The extract of a report's workbooks."""

    def extract(extraction: Extraction, source: FileSource) -> str:
        return extract_file(extraction, source, lambda batch_id: _store_scores(extraction, source, batch_id, workbook))

    return extract


ICT_WORKBOOK = Workbook(
    ReportType.ICT_RANKING, workbooks.read_ict_workbook, ict_ranking.INPUT_COLUMNS, ict_ranking.assemble_ict_ranking
)
EGOV_WORKBOOK = Workbook(
    ReportType.EGOV_MATURITY,
    workbooks.read_egov_workbook,
    egov_maturity.INPUT_COLUMNS,
    egov_maturity.assemble_egov_maturity,
)
ICT_KIND = SourceKind(IctWorkbookSource, workbooks, Storage.STORED_WHOLE, _extractor(ICT_WORKBOOK))
EGOV_KIND = SourceKind(EgovWorkbookSource, workbooks, Storage.STORED_WHOLE, _extractor(EGOV_WORKBOOK))
