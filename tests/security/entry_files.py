"""The workbook and CSV readers as functions of one file path, for `hostile.parse_in_child`: only
the readers' connector modules are imported (up front, so the child's baseline includes it)."""

from __future__ import annotations

from typing import Any

from baocao.connectors.commune_csv import read_commune_csv
from baocao.connectors.petition_csv import read_petition_csv
from baocao.connectors.workbooks import read_egov_workbook, read_ict_workbook


def ict_workbook(path: str) -> Any:
    return read_ict_workbook(path)


def egov_workbook(path: str) -> Any:
    return read_egov_workbook(path)


def _refused_whole(result: Any) -> Any:
    if result.refused_whole:  # the CSV readers refuse a file by returning its one reason
        raise ValueError(f"refused whole: {result.rejects[0].rule}: {result.rejects[0].detail}")
    return result


def commune_csv(path: str) -> Any:
    return _refused_whole(read_commune_csv(path))


def petition_csv(path: str) -> Any:
    return _refused_whole(read_petition_csv(path))
