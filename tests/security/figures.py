"""The figures the security tests print, collected for the end of the run (see conftest)."""

from __future__ import annotations

FIGURES: list[tuple[str, str]] = []


def record(test: str, text: str) -> None:
    print(text)
    FIGURES.append((test, text))
