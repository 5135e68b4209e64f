"""The OS file locks under the run, source, batch and GX locks (`baocao.core.file_locks`), held by a real
second process, and the staging folder's files as the leftovers survey reads them (`storage.staging`)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from baocao.core import file_locks
from baocao.core.canonical import Col
from baocao.storage import staging


def _hold(path: str, ready: multiprocessing.synchronize.Event) -> None:
    with file_locks.held(Path(path), note=True):
        ready.set()
        time.sleep(60)


def test_a_held_lock_names_its_holder_and_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / "run-TTHC_RESULTS-2026-11.lock"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(str(lock), ready))
    holder.start()
    try:
        assert ready.wait(60)
        assert file_locks.is_locked(lock)
        started = time.monotonic()
        with pytest.raises(file_locks.LockBusy) as busy, file_locks.held(lock, wait_seconds=0.3):
            pass
        assert time.monotonic() - started >= 0.3
        assert busy.value.holder.startswith(f"pid {holder.pid}, since ")
        os.kill(holder.pid or 0, signal.SIGKILL)  # no cleanup runs: the kernel releases the lock
        holder.join(30)
        with file_locks.held(lock, wait_seconds=5):
            assert lock.exists()
        assert not file_locks.is_locked(lock)
    finally:
        holder.kill()
        holder.join(30)


def test_staging_files_name_their_batches_and_a_writer_holds_its_partial_file(tmp_path: Path) -> None:
    frame = pd.DataFrame({column: [None] for column in staging.STAGED_COLUMNS})
    frame[Col.CODE] = ["000.00.01.H99-260101-0001"]
    done = staging.write_batch(tmp_path, "onestop-20261101T000000-0000abcd", frame)
    assert staging.readable(done) and not file_locks.is_locked(done)
    writer = staging.BatchWriter(tmp_path, "onestop-20261102T000000-1111abcd")
    (tmp_path / "onestop-20261101T000000-0000abcd.parquet.0123456789ab.merge.sqlite").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not the pipeline's", encoding="utf-8")
    found = {(file.batch_id, file.kind): file for file in staging.staging_files(tmp_path)}
    assert set(found) == {
        ("onestop-20261101T000000-0000abcd", "staged"),
        ("onestop-20261101T000000-0000abcd", "merge scratch"),
        ("onestop-20261102T000000-1111abcd", "partial"),
    }
    assert found[("onestop-20261102T000000-1111abcd", "partial")].locked  # its writer is alive
    writer.abort()
    assert [file.kind for file in staging.staging_files(tmp_path)] == ["staged", "merge scratch"]
    done.write_bytes(b"PAR1 cut short")
    assert not staging.readable(done)


def test_a_streamed_pulls_scratch_file_is_named_by_its_batch_and_held_while_the_pull_lasts(tmp_path: Path) -> None:
    # Another source's extract removes `.partial` files nobody holds: a live pull's scratch must be held.
    batch_id = "onestop-20261103T000000-2222abcd"
    frame = pd.DataFrame({column: [None] for column in staging.STAGED_COLUMNS})
    frame[Col.CODE] = ["000.00.01.H99-260101-0002"]
    writer = staging.LatestByCode(tmp_path, batch_id)
    writer.write(staging.to_table(frame))
    found = [(file.batch_id, file.kind, file.locked) for file in staging.staging_files(tmp_path)]
    assert found == [(batch_id, "partial", True), (batch_id, "partial", True)]  # the scratch and the batch file
    assert writer.close() == 1
    assert [(file.batch_id, file.kind, file.locked) for file in staging.staging_files(tmp_path)] == [
        (batch_id, "staged", False)
    ]
