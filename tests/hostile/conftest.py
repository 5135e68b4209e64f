"""The hostile-world suite's tally: how many cases were tried and how many held, said at the end of a run
(the README's figures come from `pytest -m hostile`)."""

from __future__ import annotations

import pytest

_TALLY: dict[str, str] = {}


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "hostile" not in report.keywords:
        return
    if report.when == "call" or report.outcome != "passed":
        # A case holds when its setup, call and teardown all pass; any failure or skip marks it.
        held = _TALLY.get(report.nodeid, "held")
        _TALLY[report.nodeid] = held if report.outcome == "passed" else report.outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _TALLY:
        return
    held = sum(1 for outcome in _TALLY.values() if outcome == "held")
    terminalreporter.write_line(f"hostile world: {len(_TALLY)} case(s) tried, {held} held")
