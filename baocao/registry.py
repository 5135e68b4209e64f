"""The agency registry: which agencies exist, at which level, and when (configuration, a CSV file).

Columns: `code,name,level` and optionally `valid_from,valid_to` (ISO dates, inclusive; empty = open).
Codes are electronic agency codes (Decision 20/2020/QĐ-TTg), kept as text.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path

from baocao.errors import ConfigurationError
from baocao.periods import Period

AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")


class Level(StrEnum):
    PROVINCE = "PROVINCE"
    DISTRICT = "DISTRICT"  # abolished on 2025-07-01; older periods still have it
    COMMUNE = "COMMUNE"


LEVEL_ORDER = (Level.PROVINCE, Level.DISTRICT, Level.COMMUNE)


@dataclass(frozen=True, slots=True)
class Agency:
    code: str
    name: str
    level: Level
    valid_from: date | None = None
    valid_to: date | None = None

    def active_during(self, period: Period) -> bool:
        starts_ok = self.valid_from is None or self.valid_from <= period.end
        ends_ok = self.valid_to is None or self.valid_to >= period.start
        return starts_ok and ends_ok


@dataclass(frozen=True)
class Registry:
    agencies: tuple[Agency, ...]

    def active(self, period: Period) -> list[Agency]:
        return [agency for agency in self.agencies if agency.active_during(period)]

    def level_of(self) -> dict[str, Level]:
        return {agency.code: agency.level for agency in self.agencies}

    @property
    def codes(self) -> list[str]:
        return [agency.code for agency in self.agencies]


def _date(text: str, where: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(f"{where}: {text!r} is not an ISO date (YYYY-MM-DD)") from None


def parse_registry(rows: Iterable[dict[str, str]], origin: str) -> Registry:
    agencies: list[Agency] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):
        where = f"{origin} line {number}"
        code = (row.get("code") or "").strip()
        if not AGENCY_CODE.fullmatch(code):
            raise ConfigurationError(f"{where}: agency code {code!r} does not match ddd.dd.dd.Xdd")
        if code in seen:
            raise ConfigurationError(f"{where}: agency code {code} appears twice")
        seen.add(code)
        try:
            level = Level((row.get("level") or "").strip().upper())
        except ValueError:
            raise ConfigurationError(
                f"{where}: level {row.get('level')!r} is not PROVINCE, DISTRICT or COMMUNE"
            ) from None
        name = (row.get("name") or "").strip()
        if not name:
            raise ConfigurationError(f"{where}: agency {code} has no name")
        agencies.append(
            Agency(
                code, name, level, _date(row.get("valid_from") or "", where), _date(row.get("valid_to") or "", where)
            )
        )
    if not agencies:
        raise ConfigurationError(f"{origin}: the agency registry is empty")
    return Registry(tuple(agencies))


def load_registry(path: Path) -> Registry:
    if not path.is_file():
        raise ConfigurationError(f"agency registry {path} not found")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return parse_registry(csv.DictReader(handle), str(path))
