"""Security tests print their figures (attacks refused, connections seen, peak memory): each test
records them through the `figure` fixture (or `figures.record`), and they are listed at the end of
the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.security import figures


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    def record(text: str) -> None:
        figures.record(request.node.name, text)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not figures.FIGURES:
        return
    terminalreporter.section("security figures")
    for test, text in figures.FIGURES:
        terminalreporter.write_line(f"{test}: {text}")
