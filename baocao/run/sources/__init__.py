"""The source kinds (`baocao.run.sources`): for each kind, its settings (`baocao.core.sources`), the
connector that reads it, how what it reads is stored, and its extract. `pipeline.extract` and
`pipeline.validate_batch` ask here; nothing else branches on a source's kind.

| kind | reads | stored |
|---|---|---|
| rest_onestop | dossiers changed in the window (and the system's catalogue) | staged, then validated and merged |
| sql_legacy | rows changed in the window, and the codes deleted there | staged, then validated and merged |
| commune_csv | each commune's whole `hoso` table | staged, then validated and merged |
| catalogue_xml | the provincial procedure catalogue | stored whole by extract |
| ict_workbook, egov_workbook | a year's self-assessment scores | stored whole by extract |
| petition_csv | the feedback system's petitions | upserted by extract |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baocao.core.errors import FatalError
from baocao.core.sources import SourceSettings
from baocao.run.sources import catalogue, communes, petitions, rest_onestop, sql_legacy, workbooks
from baocao.run.sources.kind import Extraction, SourceKind, Storage
from baocao.run.sources.petitions import delivered_petition_sources

__all__ = ["KINDS", "Extraction", "SourceKind", "Storage", "delivered_petition_sources", "extract", "kind_named"]

KINDS: Mapping[str, SourceKind[Any]] = {
    kind.name: kind
    for kind in (
        rest_onestop.KIND,
        sql_legacy.KIND,
        catalogue.KIND,
        communes.KIND,
        petitions.KIND,
        workbooks.ICT_KIND,
        workbooks.EGOV_KIND,
    )
}


def kind_named(name: str) -> SourceKind[Any]:
    """The kind a source's table (or a batch) names."""
    try:
        return KINDS[name]
    except KeyError:
        raise FatalError(f"no source kind {name!r} (known: {', '.join(KINDS)})") from None


def extract(extraction: Extraction, source: SourceSettings) -> str:
    """Read the source into the warehouse as its kind does; returns the batch id."""
    return kind_named(source.kind).extract(extraction, source)
