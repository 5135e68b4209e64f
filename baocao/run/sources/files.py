"""What the file kinds share: a batch per extract, marked REJECTED when the file is refused (the reasons
quarantined) or FAILED when it could not be fetched; the files of a source (one file, or a drop
folder's); and a refusal that quarantines its reasons and says what stays stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from baocao.core.bounds import printable
from baocao.core.errors import BaocaoError, ConfigurationError, DataQualityError, RetriableError, RuleFailure
from baocao.core.sources import SourceSettings
from baocao.core.states import BatchState
from baocao.run.sources.kind import Extraction
from baocao.storage import warehouse


def extract_file(extraction: Extraction, source: SourceSettings, store: Callable[[str], None]) -> str:
    """Open a batch, let `store` read the source into it; returns the batch id (validate takes it from there)."""
    engine = extraction.engine
    batch_id = extraction.batch_id(source)
    warehouse.start_batch(engine, batch_id, source.name, source.kind, None, extraction.now)
    try:
        store(batch_id)
    except BaocaoError as error:
        # REJECTED: the file was refused (reasons in quarantine); FAILED: it could not be fetched (try later).
        state = BatchState.FAILED if isinstance(error, RetriableError) else BatchState.REJECTED
        quarantined = len({row["record_key"] for row in warehouse.quarantined_records(engine, batch_id)})
        warehouse.finish_file_batch(engine, batch_id, state, pulled=0, stored=0, quarantined=quarantined)
        raise
    return batch_id


def refuse(
    extraction: Extraction, source: SourceSettings, batch_id: str, failures: Sequence[RuleFailure], kept: str
) -> NoReturn:
    """Quarantine the reasons and stop: `kept` says what stays stored in the file's place."""
    warehouse.record_quarantine(
        extraction.engine, batch_id, source.name, [(f.record, f.rule, f.detail) for f in failures], stage="extract"
    )
    # A reason may quote what made a record poison (a code with an escape or an override): the error
    # the operator reads gets it escaped and cut, as the quarantine does.
    shown = [RuleFailure(f.rule, printable(f.record, 160), printable(f.detail, 300), f.key) for f in failures]
    raise DataQualityError(f"source {source.name}: file refused, {kept}", shown)


def refused_read(extraction: Extraction, source: SourceSettings, batch_id: str, error: BaocaoError, rule: str) -> None:
    """A file the reader refused whole (hostile, too big, no header): its reason is quarantined too."""
    warehouse.record_quarantine(
        extraction.engine, batch_id, source.name, [(source.name, rule, str(error))], stage="extract"
    )


def files(source: SourceSettings, path: Path, suffixes: Sequence[str], what: str) -> list[Path]:
    """The source's file, or the matching files of its drop folder by name."""
    if path.is_dir():
        # Hidden files (uploads in progress) and Excel's lock files (`~$name.xlsx`) are not exports.
        found = sorted(
            entry
            for entry in path.iterdir()
            if entry.suffix.lower() in suffixes and not entry.name.startswith((".", "~$"))
        )
        if not found:
            raise ConfigurationError(f"source {source.name}: no {what} ({', '.join(suffixes)}) in the folder {path}")
        return found
    if not path.is_file():
        raise ConfigurationError(f"source {source.name}: {path} is neither a file nor a folder")
    return [path]
