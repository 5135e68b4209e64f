"""An exclusive lock on a file, held by a process: the operating system releases it when the process
ends, however it ends (SIGKILL included), so a crash never leaves a lock behind.

`fcntl.flock` on a file under the data folder, which every worker of a deployment shares. It is the one
primitive under the run lock (one `baocao run` per report and period), the source lock (one extract of
a source at a time), Great Expectations' file lock (`expectations.runner`) and the staging files' own
locks (a staged batch being merged, a batch being written). The file itself is left in place: removing
a lock file while another process waits on it would let a third lock a new file of the same name.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

_POLL_SECONDS = 0.1


class LockBusy(Exception):
    """The lock is held by another process (and stayed held for as long as the caller would wait)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by {holder or 'another process'}")
        self.path = path
        self.holder = holder


def holder_note() -> str:
    """What a holder writes into its lock file, for whoever finds the lock busy: its pid and since when."""
    return f"pid {os.getpid()}, since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def held(path: Path, *, wait_seconds: float = 0.0, note: bool = False) -> Iterator[None]:
    """Hold the exclusive lock on `path` (created if missing) for the block.

    Waits up to `wait_seconds` for another holder to let go, then raises `LockBusy` naming that holder
    (its note, when it wrote one). With `note`, this holder writes its own (`holder_note`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while not _try_lock(descriptor):
            if time.monotonic() >= deadline:
                raise LockBusy(path, _read_note(descriptor))
            time.sleep(_POLL_SECONDS)
        if note:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, holder_note().encode(), 0)
        try:
            yield
        finally:
            if note:
                os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # closing the only descriptor of the open file releases the lock


def _read_note(descriptor: int) -> str:
    return os.pread(descriptor, 200, 0).decode(errors="replace").strip()


def lock_open_file(path: Path, *, wait_seconds: float = 0.0) -> int | None:
    """Open `path` and hold its lock until the descriptor returned is closed; None when the file is gone
    (or goes while waiting). Waits up to `wait_seconds` for another holder, then raises `LockBusy`. Used on
    files that are data as well as locks (a staged batch, a batch being written), which their owner
    removes when done: a waiter may then hold the lock of a file that is gone, and must look again."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    deadline = time.monotonic() + wait_seconds
    while not _try_lock(descriptor):
        if time.monotonic() >= deadline:
            os.close(descriptor)
            raise LockBusy(path, "")
        time.sleep(_POLL_SECONDS)
    return descriptor


def is_locked(path: Path) -> bool:
    """Whether a live process holds the lock on `path` now (False for a file that is not there)."""
    try:
        descriptor = lock_open_file(path)
    except LockBusy:
        return True
    if descriptor is not None:
        os.close(descriptor)
    return False
