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


POSITION = "_position"  # a row's place in the pull, in the scratch file of LatestByCode only


class LatestByCode:
    """Stages a pull piece by piece while it is read, one row per dossier code across all pieces.

    The latest `updated_at` wins, the row read later on a tie, a row without the time loses to one with
    it: the same choice as `transforms.canonical.deduplicate_latest` over the whole pull at once. Each
    piece goes to a scratch file as it comes, with its rows' places in the pull; `close` picks each
    code's row from the scratch file's codes, times and places alone (a fraction of the records) and
    copies the chosen rows into the batch file (`BatchWriter`, atomic). So a pull of any length never
    sits in memory whole, and a crash leaves no file that looks like a staged batch.
    """

    def __init__(self, staging_dir: Path, batch_id: str) -> None:
        self._batch = BatchWriter(staging_dir, batch_id)
        self._scratch = self._batch.path.with_name(f".{self._batch.path.name}.pieces.{uuid.uuid4().hex}.partial")
        self._schema = SCHEMA.append(pa.field(POSITION, pa.int64()))
        self._writer = pq.ParquetWriter(self._scratch, self._schema, compression=STAGING_COMPRESSION)
        # Held while the pull lasts, like the batch writer's `.partial`: another source's extract removes
        # the `.partial` files nobody holds (a dead writer's), never a live pull's scratch.
        self._lock = file_locks.lock_open_file(self._scratch)
        self.pieces = 0  # pieces written so far (each one a row group of the scratch file)
        self.rows_read = 0

    @property
    def path(self) -> Path:
        return self._batch.path

    def write(self, table: pa.Table) -> None:
        """One piece: canonical rows of the staging schema (`to_table`), each with a code."""
        if table.num_rows == 0:
            return
        if table.column(Col.CODE.value).null_count:
            raise ValueError("a staged piece has rows without a code")
        places = pa.array(range(self.rows_read, self.rows_read + table.num_rows), type=pa.int64())
        piece = table.select(list(STAGED_COLUMNS)).cast(SCHEMA).append_column(POSITION, places)
        self._writer.write_table(piece)
        self.pieces += 1
        self.rows_read += table.num_rows

    def close(self) -> int:
        """The batch file with each code's latest row; returns the rows staged."""
        try:
            self._writer.close()
            chosen = self._chosen_places()
            for batch in pq.ParquetFile(self._scratch).iter_batches(batch_size=100_000):
                keep = batch.filter(pc.is_in(batch.column(POSITION), value_set=chosen))
                if keep.num_rows:
                    self._batch.write(pa.Table.from_batches([keep]).drop_columns([POSITION]))
        except BaseException:
            self._batch.abort()
            raise
        finally:
            self._scratch.unlink(missing_ok=True)
            self._release()
        self._batch.close()
        return self._batch.rows

    def _chosen_places(self) -> pa.Array:
        if self.rows_read == 0:
            return pa.array([], type=pa.int64())
        keys = pq.read_table(self._scratch, columns=[Col.CODE.value, Col.UPDATED_AT.value, POSITION])
        # Sorted by code, then rows without a time, then by time and place: each code's last row wins.
        keys = keys.append_column("_timed", pc.is_valid(keys.column(Col.UPDATED_AT.value)))
        ordered = keys.sort_by(
            [
                (Col.CODE.value, "ascending"),
                ("_timed", "ascending"),
                (Col.UPDATED_AT.value, "ascending"),
                (POSITION, "ascending"),
            ]
        )
        codes = ordered.column(Col.CODE.value)
        last_of_code = pa.concat_arrays(
            [pc.not_equal(codes.slice(0, len(codes) - 1), codes.slice(1)).combine_chunks(), pa.array([True])]
        )
        return ordered.column(POSITION).filter(last_of_code).combine_chunks()

    def abort(self) -> None:
        self._writer.close()
        self._scratch.unlink(missing_ok=True)
        self._release()
        self._batch.abort()

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
            # .<batch id>.parquet.<32 hex>.partial, or a streamed pull's .<batch id>.parquet.pieces.<32 hex>.partial
            stem = name[1:].rsplit(".", 2)[0].removesuffix(".pieces")
            batch_id, kind = stem.removesuffix(".parquet"), "partial"
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
