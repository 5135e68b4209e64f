"""Staged batches: what one pull extracted, as one Parquet file per batch until it is merged.

Extract writes the batch here; validation reads it with DuckDB (Great Expectations' SQL engine on
the file: columnar, both cores); the merge streams the rows that passed into the warehouse and then
removes the file. Files are written under a temporary name and renamed, so a crash never leaves a
half-written batch that looks complete. Tasks pass the batch id; the file lives under the data
folder, which every worker of a deployment shares. A writer holds the OS lock of its temporary file and
a validation that of the staged file (`baocao.core.file_locks`), so files no live process holds can be
told apart as a dead run's leftovers (`staging_files`, `baocao.run.leftovers`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from baocao.core import file_locks
from baocao.core.canonical import CANONICAL_COLUMNS, DUE_DAYS, FLAG_COLUMNS, TIME_COLUMNS, Col

STAGED_COLUMNS: tuple[str, ...] = (*CANONICAL_COLUMNS, DUE_DAYS)


def _arrow_type(column: str) -> pa.DataType:
    if column in {c.value for c in TIME_COLUMNS}:
        return pa.timestamp("us")  # naive local wall time (UTC+7), as in the warehouse
    if column in {c.value for c in FLAG_COLUMNS}:
        return pa.bool_()
    if column == Col.RATING:
        return pa.int32()
    if column == DUE_DAYS:
        return pa.float64()
    return pa.string()


SCHEMA = pa.schema([pa.field(column, _arrow_type(column)) for column in STAGED_COLUMNS])
# A staged file is scratch, read several times within minutes (each validation query, the merge)
# and then removed: it is written uncompressed. Every query that lists failing records reads the
# dossier codes; without zstd to undo that takes half the time (5M rows: 356 MB on disk instead of
# 212 MB). Codes are unique, so no dictionary is tried for them.
STAGING_COMPRESSION = "none"


def valid_batch_id(batch_id: str) -> bool:
    """Batch ids name staging files: letters, digits, `-`, `_` and `.`, not starting with a dot."""
    return bool(batch_id) and all(ch.isalnum() or ch in "-_." for ch in batch_id) and not batch_id.startswith(".")


def batch_file(staging_dir: Path, batch_id: str) -> Path:
    if not valid_batch_id(batch_id):
        raise ValueError(f"invalid batch id {batch_id!r}")
    return staging_dir / f"{batch_id}.parquet"


def to_table(frame: pd.DataFrame) -> pa.Table:
    """The canonical frame (`transforms.canonical.canonical_frame`) as an Arrow table of the staging schema."""
    missing = [column for column in STAGED_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"staged frame lacks column(s) {missing}")
    arrays = []
    for field in SCHEMA:
        values = frame[field.name]
        if field.name in {c.value for c in TIME_COLUMNS}:
            values = pd.to_datetime(values)
        arrays.append(pa.array(values, type=field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


class BatchWriter:
    """Writes one batch in pieces (large pulls and benchmarks stage chunk by chunk), atomically."""

    def __init__(self, staging_dir: Path, batch_id: str) -> None:
        staging_dir.mkdir(parents=True, exist_ok=True)
        self.path = batch_file(staging_dir, batch_id)
        self._partial = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.partial")
        self._writer = pq.ParquetWriter(
            self._partial,
            SCHEMA,
            compression=STAGING_COMPRESSION,
            use_dictionary=[name for name in STAGED_COLUMNS if name != Col.CODE],
        )
        # Locked while this process writes it: a `.partial` file nobody holds is a dead writer's (orphans).
        self._lock = file_locks.lock_open_file(self._partial)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.select(list(STAGED_COLUMNS)).cast(SCHEMA))
        self.rows += table.num_rows

    def close(self) -> Path:
        self._writer.close()
        os.replace(self._partial, self.path)  # re-staging the same batch replaces it whole
        self._release()
        return self.path

    def abort(self) -> None:
        self._writer.close()
        self._partial.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def write_batch(staging_dir: Path, batch_id: str, frame: pd.DataFrame) -> Path:
    writer = BatchWriter(staging_dir, batch_id)
    try:
        writer.write(to_table(frame))
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def read_batch(path: Path, exclude_codes: Sequence[str] = (), batch_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
    """The staged rows in record batches, without the codes given (the quarantined ones)."""
    excluded = pa.array(sorted(set(exclude_codes)), type=pa.string())
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=list(STAGED_COLUMNS)):
        if len(excluded):
            keep = pc.invert(pc.is_in(batch.column(Col.CODE.value), value_set=excluded))
            batch = batch.filter(keep)
        if batch.num_rows:
            yield batch


def remove_batch(staging_dir: Path, batch_id: str) -> None:
    batch_file(staging_dir, batch_id).unlink(missing_ok=True)


PARTIAL_SUFFIX = ".partial"
MERGE_SCRATCH_SUFFIX = ".merge.sqlite"


@dataclass(frozen=True)
class StagingFile:
    """A file under the staging folder: a staged batch, a batch being written (`.partial`) or a SQLite
    merge's scratch copy; `batch_id` is the batch its name names."""

    path: Path
    batch_id: str
    kind: str  # "staged", "partial" or "merge scratch"
    modified: float  # mtime, seconds since the epoch
    size: int

    @property
    def locked(self) -> bool:
        """A live process holds it: a batch being written, or a staged batch being validated and merged."""
        return file_locks.is_locked(self.path)


def staging_files(staging_dir: Path) -> list[StagingFile]:
    """Every file the pipeline writes under the staging folder, with the batch each belongs to; other
    files are not the pipeline's and are left alone."""
    found = []
    for path in sorted(staging_dir.iterdir()) if staging_dir.is_dir() else ():
        name = path.name
        if name.startswith(".") and name.endswith(PARTIAL_SUFFIX):
            # .<batch id>.parquet.<32 hex>.partial
            batch_id, kind = name[1:].rsplit(".", 2)[0].removesuffix(".parquet"), "partial"
        elif name.endswith(MERGE_SCRATCH_SUFFIX):
            # <batch id>.parquet.<hex>.merge.sqlite
            batch_id, kind = name.split(".parquet.", 1)[0], "merge scratch"
        elif name.endswith(".parquet"):
            batch_id, kind = name.removesuffix(".parquet"), "staged"
        else:
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if path.is_file() and valid_batch_id(batch_id):
            found.append(StagingFile(path, batch_id, kind, stat.st_mtime, stat.st_size))
    return found


def readable(path: Path) -> bool:
    """Whether a staged file is whole: its Parquet footer reads and its columns are the staging schema's
    (a file from before a crash of the disk or of the rename is not)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid):
        return False
    return all(name in schema.names for name in STAGED_COLUMNS)
