"""Tests store a catalogue as extract does: through `warehouse.replace_procedures`, history included."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from baocao.core import tables
from baocao.storage import warehouse


def reset_catalogue(engine: Engine, entries: Sequence[Mapping[str, Any]], as_of: datetime | None = None) -> None:
    """Forget every stored catalogue and its history, then store `entries`, one import per source."""
    with engine.begin() as connection:
        for table in (tables.procedures, tables.procedure_history, tables.catalogue_imports):
            connection.execute(sa.delete(table))
    by_source: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        by_source.setdefault(str(entry["source"]), []).append(entry)
    for source, listed in by_source.items():
        warehouse.replace_procedures(engine, source, str(listed[0]["batch_id"]), listed, as_of=as_of)
