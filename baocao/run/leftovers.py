"""What runs that died leave behind, and what the next run of a source does with it.

A run killed between the start of a batch and its merge (SIGKILL, the OOM killer, a power cut) or
stopped by an error there leaves the batch STAGED, perhaps with its staged file, perhaps with a
`.partial` file it was writing. The batch lifecycle decides what is right: the source's watermark
moves only when a batch merges, so the next pull of the source reads a stuck batch's window again
and nothing is lost by dropping it; but a whole staged file is a pull already done, and merging it
first (validated like any batch) saves reading it again. So the next extract of the source, holding
the source's lock (no other extract of it is running), takes up each of its STAGED batches:

- **merge** it (`pipeline.validate_batch`: the dossier suite, quarantine, merge) when its staged file
  is whole and no later batch of the source has merged since (its window ends at or after the
  watermark), so the watermark only moves forward;
- **retire** it (state ABANDONED, its files removed) otherwise: no staged file (the run died while
  pulling), a file that does not read, a batch a later merge has covered, a kind stored whole whose
  extract never finished, or a batch the dossier suite holds back whole.

It then removes orphan files under the staging folder: staged files whose batch is not STAGED (or
has no row), SQLite merge scratch files of such batches, and `.partial` files that no live process
holds (a writer holds its `.partial` file's lock) and that are older than a minute. A batch whose
staged file a live process holds is being merged: it is left alone. `baocao status` shows all of
this (`survey`) before the next run acts on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from baocao.core import file_locks
from baocao.core.errors import DataQualityError, FatalError
from baocao.core.states import BatchState
from baocao.run import sources as source_kinds
from baocao.storage import staging, warehouse

log = logging.getLogger(__name__)

# A `.partial` file no live process holds is removed once it is this old: a writer takes its lock
# just after creating it, and this leaves that instant alone.
PARTIAL_MIN_AGE_SECONDS = 60


class Action(StrEnum):
    """What the next run does with a leftover."""

    MERGE = "merge"  # a stuck batch whose staged file is whole: validated and merged
    RETIRE = "retire"  # a stuck batch marked ABANDONED, its files removed
    REMOVE = "remove"  # an orphan file removed
    WAIT = "leave"  # held by a live process, or too young to tell: left as it is


@dataclass(frozen=True)
class StuckBatch:
    batch_id: str
    source: str
    started_at: datetime | None  # naive UTC
    staged_file: Path | None  # the staged file, when there is one
    action: Action
    reason: str


@dataclass(frozen=True)
class OrphanFile:
    path: Path
    batch_id: str
    kind: str
    age_seconds: float
    action: Action
    reason: str


@dataclass(frozen=True)
class Leftovers:
    batches: list[StuckBatch]
    files: list[OrphanFile]


def source_lock(locks_dir: Path, source: str) -> Path:
    """The lock file one extract of `source` holds at a time."""
    return locks_dir / f"source-{_file_name(source)}.lock"


def _file_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def _verdict(row: Any, staging_dir: Path, locks_dir: Path | None) -> tuple[Action, str, Path | None]:
    staged_file = staging.batch_file(staging_dir, row["batch_id"])
    present = staged_file if staged_file.exists() else None
    if locks_dir is not None and file_locks.is_locked(source_lock(locks_dir, row["source"])):
        return Action.WAIT, "its source is being extracted by a live process", present
    if present is not None and file_locks.is_locked(staged_file):
        return Action.WAIT, "a live process is merging it", present
    try:
        staged_kind = source_kinds.kind_named(row["kind"]).storage.validated_by_batch
    except FatalError:  # a kind this version no longer has
        staged_kind = False
    if not staged_kind:
        return Action.RETIRE, "its extract stopped before the file was stored", present
    if present is None:
        return Action.RETIRE, "no staged file: the run stopped before staging; its window is pulled again", None
    if not staging.readable(staged_file):
        return Action.RETIRE, "its staged file does not read; its window is pulled again", present
    if row["watermark"] is not None and row["window_to"] < row["watermark"]:
        return Action.RETIRE, "a later batch of its source merged since; its window is pulled again", present
    return Action.MERGE, "its staged file is whole: validated and merged before the next pull", present


def survey(engine: Engine, staging_dir: Path, locks_dir: Path | None, source: str | None = None) -> Leftovers:
    """Stuck batches (of `source`, or of every source) and orphan staging files, each with what the next
    run will do with it. Reads only: `baocao status` shows this. `locks_dir` None: the caller holds the
    source's lock (an extract), so no other extract of it runs."""
    stuck = [
        StuckBatch(row["batch_id"], row["source"], row["started_at"], present, action, reason)
        for row in warehouse.stuck_batches(engine, source)
        for action, reason, present in [_verdict(row, staging_dir, locks_dir)]
    ]
    found = staging.staging_files(staging_dir)
    states = warehouse.batch_states(engine, {file.batch_id for file in found})
    now = time.time()
    orphans = []
    for file in found:
        state = states.get(file.batch_id)
        if state == BatchState.STAGED and file.kind != "partial":
            continue  # the batch's own files: see its verdict above
        age = max(0.0, now - file.modified)
        if file.locked:
            orphans.append(OrphanFile(file.path, file.batch_id, file.kind, age, Action.WAIT, "a live process holds it"))
        elif file.kind == "partial" and age < PARTIAL_MIN_AGE_SECONDS:
            reason = f"removed once {PARTIAL_MIN_AGE_SECONDS} s old if no process holds it"
            orphans.append(OrphanFile(file.path, file.batch_id, file.kind, age, Action.WAIT, reason))
        else:
            reason = (
                "a batch write that never finished"
                if file.kind == "partial"
                else f"its batch is {state}"
                if state
                else "no batch of that id in the warehouse"
            )
            orphans.append(OrphanFile(file.path, file.batch_id, file.kind, age, Action.REMOVE, reason))
    return Leftovers(stuck, orphans)


def _remove_batch_files(staging_dir: Path, batch_id: str) -> None:
    staging.remove_batch(staging_dir, batch_id)
    for file in staging.staging_files(staging_dir):
        if file.batch_id == batch_id and file.kind == "merge scratch":
            file.path.unlink(missing_ok=True)


def take_up(engine: Engine, staging_dir: Path, source: str, merge: Callable[[str], Any]) -> Leftovers:
    """Merge or retire the source's stuck batches, and remove orphan staging files (module docstring).

    Called by extract holding the source's lock, before it reads the watermark. `merge` validates and
    merges one batch (`pipeline.validate_batch`). Returns what it found."""
    found = survey(engine, staging_dir, None, source)
    for batch in found.batches:
        if batch.action is Action.MERGE:
            try:
                merge(batch.batch_id)
            except (DataQualityError, FatalError) as error:
                # The dossier suite holds it back whole: its window is pulled again, and judged again.
                log.warning("source %s: stuck batch %s not merged (%s): retired", source, batch.batch_id, error)
            else:
                log.warning(
                    "source %s: batch %s, left staged by a run that stopped, merged now", source, batch.batch_id
                )
                continue
        elif batch.action is Action.WAIT:
            continue
        if warehouse.retire_batch(engine, batch.batch_id):
            _remove_batch_files(staging_dir, batch.batch_id)
            log.warning("source %s: batch %s retired (ABANDONED): %s", source, batch.batch_id, batch.reason)
    removed = 0
    for orphan in found.files:
        if orphan.action is Action.REMOVE and not file_locks.is_locked(orphan.path):
            orphan.path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.warning("staging: %d orphan file(s) removed", removed)
    return found
