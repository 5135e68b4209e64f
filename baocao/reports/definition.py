"""The report contract: what a report is made of, from the warehouse's rows to the central's body.

Every report goes through the same steps with its own pieces: `read_inputs` queries the warehouse,
`assemble` turns the inputs into the report's body (pure) and says who reported, the suite checks
the body through `check_frame`, `xml_body`/`json_body` write it into a submission, and `summary` gives
the figures the CLI shows. `tables`/`from_tables` are how the body is stored as tables of lines and
read back: what is stored is what the suite checks and what render sends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import great_expectations.expectations as gxe
import pandas as pd
from lxml import etree
from sqlalchemy.engine import Connection

from baocao.core.periods import Period
from baocao.core.registry import Registry
from baocao.core.report import Completeness, ReportType

Body = TypeVar("Body")

# The table name of a report stored as one table of lines.
REPORT_TABLE = "report"


@dataclass(frozen=True)
class ReportContext:
    """What a report's inputs are read and assembled with: the warehouse, the period, the agencies."""

    connection: Connection
    period: Period
    registry: Registry
    province_code: str
    sources: tuple[str, ...]  # the report's configured sources
    # Its petition sources that have stored an export: the petition metrics are connected only with one.
    petition_sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportDefinition(Generic[Body]):
    report_type: ReportType
    read_inputs: Callable[[ReportContext], pd.DataFrame]
    assemble: Callable[[pd.DataFrame, ReportContext], tuple[Body, Completeness]]
    tables: Callable[[Body], Mapping[str, pd.DataFrame]]
    from_tables: Callable[[Mapping[str, pd.DataFrame]], Body]
    check_frame: Callable[[Body], pd.DataFrame]
    suite: Callable[[], list[gxe.Expectation]]
    suite_name: str
    row_label: str
    body_element: str  # the report's element under <Body> in XML
    body_key: str  # its member of "body" in JSON
    xml_body: Callable[[etree._Element, Body], None]
    json_body: Callable[[Body], dict[str, Any]]
    summary: Callable[[Body], dict[str, Any]]  # the figures `baocao run` prints


def one_table(body: pd.DataFrame) -> Mapping[str, pd.DataFrame]:
    return {REPORT_TABLE: body}


def the_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    return tables[REPORT_TABLE]


def query_frame(context: ReportContext, query: Any, empty_columns: list[str]) -> pd.DataFrame:
    """The query's rows as a frame; with no row, an empty frame with the columns the assembly expects."""
    rows = context.connection.execute(query).mappings().all()
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=empty_columns)
