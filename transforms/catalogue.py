"""The procedure catalogue as a period is counted on (a query over the catalogue's history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from baocao.core.tables import catalogue_imports, procedure_history, procedures


def catalogue_at(period_end: datetime) -> sa.Select[Any]:
    """The catalogue a period is counted on (the columns of `procedures`): per source, as it stood at
    the first import at or after the period's end (`period_end`, exclusive, local naive time), that is
    as a run at the period's cut-off found it; the current catalogue where none came since.

    So a period aggregated again later (a correction) counts the procedures it was first counted on,
    not what was published afterwards. A catalogue stored before the history was kept counts as
    imported when the upgraded warehouse was first connected.
    """
    h = procedure_history.c
    imports = catalogue_imports.c
    cutoff = (
        sa.select(imports.source, sa.func.min(imports.imported_at).label("at"))
        .where(imports.imported_at >= period_end)
        .group_by(imports.source)
        .subquery("catalogue_cutoff")
    )
    in_force = sa.or_(
        sa.and_(cutoff.c.at.is_(None), h.valid_to.is_(None)),
        sa.and_(h.valid_from <= cutoff.c.at, sa.or_(h.valid_to.is_(None), h.valid_to > cutoff.c.at)),
    )
    return (
        sa.select(*[h[column.name] for column in procedures.columns])
        .select_from(procedure_history.outerjoin(cutoff, cutoff.c.source == h.source))
        .where(in_force)
    )
