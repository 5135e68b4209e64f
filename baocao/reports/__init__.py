"""The report registry: one definition per report (`baocao.reports.definition.ReportDefinition`).

The pipeline, the CLI, exports and the DAG factory ask the registry; none of them branches on the
report type. Adding a report is one module here, one line below, one DAG file, the schema and tests
(docs/adding-a-report.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baocao.core.errors import ConfigurationError
from baocao.core.report import ReportType
from baocao.reports import egov_maturity, ict_ranking, online_services, service_index, tthc_results
from baocao.reports.definition import ReportDefinition

REPORTS: Mapping[ReportType, ReportDefinition[Any]] = {
    definition.report_type: definition
    for definition in (
        tthc_results.DEFINITION,
        online_services.DEFINITION,
        service_index.DEFINITION,
        ict_ranking.DEFINITION,
        egov_maturity.DEFINITION,
    )
}


def definition(report_type: ReportType | str) -> ReportDefinition[Any]:
    try:
        return REPORTS[ReportType(report_type)]
    except (KeyError, ValueError):
        raise ConfigurationError(f"report {report_type!r} has no definition (known: {', '.join(REPORTS)})") from None
