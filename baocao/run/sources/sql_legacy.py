"""Kind `sql_legacy`: a department's old one-stop database, read-only. The old application deletes rows
without a trace, so every pull also compares the table's codes with the stored ones: a stored dossier
the table no longer has is marked deleted, and a row the warehouse lacks is pulled whatever its
change time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from baocao.connectors import sql_legacy
from baocao.core.sources import MappedSource, SqlLegacySource
from baocao.run.sources.kind import Extraction, SourceKind, Storage
from baocao.run.sources.pulls import Pulled, extract_pulled
from baocao.storage import warehouse


def hoso_mapping(source: MappedSource) -> tuple[Mapping[str, str], Mapping[str, Mapping[str, str]]]:
    """The source's field mapping; without one, the mapping of the `hoso` table's published schema."""
    return source.fields or sql_legacy.HOSO_FIELD_MAP, source.values or sql_legacy.HOSO_VALUE_MAPS


def _tuning(source: SqlLegacySource) -> dict[str, Any]:
    """The connector's options the source sets; the others keep the connector's defaults."""
    options = {
        "chunk_size": source.chunk_size,
        "connect_timeout_seconds": source.connect_timeout_seconds,
        "statement_timeout_seconds": source.statement_timeout_seconds,
    }
    return {name: value for name, value in options.items() if value is not None}


def _pull(extraction: Extraction, source: SqlLegacySource, window_from: datetime | None, window_to: datetime) -> Pulled:
    fields, _ = hoso_mapping(source)
    with sql_legacy.LegacySqlSource(
        source.database_url.value,
        source.table,
        fields,
        name=source.name,
        change_column=source.change_column,
        **_tuning(source),
    ) as database:
        records = list(database.changed_rows(window_from, window_to))
        # Deleted rows vanish from a legacy table: compare every code, not only what changed.
        stored = warehouse.live_codes(extraction.engine, source.name)
        found = sql_legacy.reconcile(database.all_codes(), stored)
        pulled = {str(record.get(fields["code"])) for record in records}
        unseen = found.missing_in_warehouse - pulled
        if unseen:
            records.extend(database.rows_for_codes(sorted(unseen)))
    return Pulled(records, set(found.missing_in_source))


def _extract(extraction: Extraction, source: SqlLegacySource) -> str:
    def pull(window_from: datetime | None, window_to: datetime) -> Pulled:
        return _pull(extraction, source, window_from, window_to)

    fields, values = hoso_mapping(source)
    return extract_pulled(extraction, source, pull, fields, values)


KIND = SourceKind(SqlLegacySource, sql_legacy, Storage.STAGED, _extract)
