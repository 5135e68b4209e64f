"""Fixtures of the delivery tests: the warmed forkserver that starts publisher processes."""

from __future__ import annotations

import itertools
import json
import multiprocessing.context
import multiprocessing.process
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.delivery import workers


@dataclass
class Child:
    process: multiprocessing.process.BaseProcess
    result_path: Path

    def wait(self, timeout: float = 60) -> int:
        self.process.join(timeout)
        assert self.process.exitcode is not None, f"publisher {self.process.pid} still running after {timeout} s"
        return self.process.exitcode

    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.result_path.read_text(encoding="utf-8"))
        return data


@dataclass
class Spawner:
    context: multiprocessing.context.ForkServerContext
    folder: Path
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def start(self, target: Callable[..., None], *args: Any) -> Child:
        result_path = self.folder / f"result-{next(self.counter)}.json"
        process = self.context.Process(target=target, args=(*args, str(result_path)))
        process.start()
        return Child(process, result_path)


@pytest.fixture(scope="session")
def spawner(tmp_path_factory: pytest.TempPathFactory) -> Spawner:
    context = workers.forkserver()
    started = time.monotonic()
    warm = context.Process(target=workers.noop)
    warm.start()
    warm.join(120)
    print(f"\nforkserver ready in {time.monotonic() - started:.1f} s (baocao.pipeline imported once, then forked)")
    return Spawner(context, tmp_path_factory.mktemp("results"))
