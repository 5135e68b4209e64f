"""Fixtures of the storage tests: a warmed forkserver that starts writer processes."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import time

import pytest

from tests.storage import writers


@pytest.fixture(scope="session")
def writer_processes() -> multiprocessing.context.ForkServerContext:
    """Separate OS processes, forked from a server that imported the warehouse once (a spawned
    interpreter would import pandas and pyarrow again for every writer: seconds each here). Under pytest
    a child also imports pytest (multiprocessing's "safe importing of main"), so it is preloaded too."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.storage.writers", "pytest"])
    started = time.monotonic()
    warm = context.Process(target=writers.ready)
    warm.start()
    warm.join(120)
    print(f"\nforkserver ready in {time.monotonic() - started:.1f} s")
    return context
