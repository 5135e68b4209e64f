"""The agency registry: which agencies exist, at which level, and when (configuration, a CSV file).

Columns: `code,name,level` and optionally `valid_from,valid_to` (ISO dates, inclusive; empty = open),
`parent` (agency code), `block` (DEPARTMENT, DISTRICT or COMMUNE; derived from the level when empty),
`successor` (the agency that took over when this one ended) and `unit_code` (the administrative
unit of Decision 19/2025/QĐ-TTg, checked against the `vietnam-provinces` list). Codes are electronic
agency codes (Decision 20/2020/QĐ-TTg), kept as text; never derived from unit codes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from pathlib import Path

from baocao.core.errors import ConfigurationError
from baocao.core.periods import Period

AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")


class Level(StrEnum):
    PROVINCE = "PROVINCE"
    DISTRICT = "DISTRICT"  # abolished on 2025-07-01; older periods still have it
    COMMUNE = "COMMUNE"


class Block(StrEnum):
    DEPARTMENT = "DEPARTMENT"
    DISTRICT = "DISTRICT"
    COMMUNE = "COMMUNE"


LEVEL_ORDER = (Level.PROVINCE, Level.DISTRICT, Level.COMMUNE)
BLOCK_OF_LEVEL = {Level.PROVINCE: Block.DEPARTMENT, Level.DISTRICT: Block.DISTRICT, Level.COMMUNE: Block.COMMUNE}
# Resolution 202/2025/QH15 and the two-level local government: no district level from this day on.
DISTRICT_LEVEL_ABOLISHED = date(2025, 7, 1)


def has_district_level(period: Period) -> bool:
    """DISTRICT sections and blocks exist only for periods that start before the reform."""
    return period.start < DISTRICT_LEVEL_ABOLISHED


@dataclass(frozen=True, slots=True)
class Agency:
    code: str
    name: str
    level: Level
    valid_from: date | None = None
    valid_to: date | None = None
    parent: str | None = None
    block: Block | None = None
    successor: str | None = None
    unit_code: str | None = None

    def active_during(self, period: Period) -> bool:
        starts_ok = self.valid_from is None or self.valid_from <= period.end
        ends_ok = self.valid_to is None or self.valid_to >= period.start
        return starts_ok and ends_ok

    def active_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or self.valid_to >= day)

    @property
    def ranking_block(self) -> Block:
        return self.block or BLOCK_OF_LEVEL[self.level]


@dataclass(frozen=True)
class Registry:
    agencies: tuple[Agency, ...]

    def active(self, period: Period) -> list[Agency]:
        agencies = [agency for agency in self.agencies if agency.active_during(period)]
        if not has_district_level(period):
            agencies = [agency for agency in agencies if agency.level is not Level.DISTRICT]
        return agencies

    def by_code(self) -> dict[str, Agency]:
        return {agency.code: agency for agency in self.agencies}

    def current_unit(self, code: str, day: date) -> str:
        """The agency that carries `code`'s work on `day`, following successors (merges, renames)."""
        agencies = self.by_code()
        seen: list[str] = []
        while code in agencies and not agencies[code].active_on(day) and agencies[code].successor:
            if code in seen:
                raise ConfigurationError(f"agency registry: successor cycle {' → '.join([*seen, code])}")
            seen.append(code)
            code = str(agencies[code].successor)
        return code

    def crosswalk(self, day: date) -> dict[str, str]:
        """Every agency code → the code of the unit that carries its work on `day`."""
        return {agency.code: self.current_unit(agency.code, day) for agency in self.agencies}

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
        valid_to = _date(row.get("valid_to") or "", where)
        if level is Level.DISTRICT and (valid_to is None or valid_to >= DISTRICT_LEVEL_ABOLISHED):
            raise ConfigurationError(
                f"{where}: district-level agency {code} must end (valid_to) by 2025-06-30: the level was abolished"
            )
        block_text = (row.get("block") or "").strip().upper()
        try:
            block = Block(block_text) if block_text else None
        except ValueError:
            raise ConfigurationError(f"{where}: block {block_text!r} is not DEPARTMENT, DISTRICT or COMMUNE") from None
        unit_code = (row.get("unit_code") or "").strip() or None
        if unit_code is not None:
            _check_unit(unit_code, where)
        agencies.append(
            Agency(
                code,
                name,
                level,
                _date(row.get("valid_from") or "", where),
                valid_to,
                parent=(row.get("parent") or "").strip() or None,
                block=block,
                successor=(row.get("successor") or "").strip() or None,
                unit_code=unit_code,
            )
        )
    if not agencies:
        raise ConfigurationError(f"{origin}: the agency registry is empty")
    for agency in agencies:
        for role, other in (("parent", agency.parent), ("successor", agency.successor)):
            if other is not None and other not in seen:
                raise ConfigurationError(f"{origin}: {role} {other} of agency {agency.code} is not in the registry")
    return Registry(tuple(agencies))


def _check_unit(unit_code: str, where: str) -> None:
    """A unit code must be a province or commune-level unit of the 2025 list (Decision 19/2025/QĐ-TTg)."""
    if not unit_code.isdigit() or int(unit_code) not in _known_unit_codes():
        raise ConfigurationError(f"{where}: unit_code {unit_code} is not an administrative unit of the 2025 list")


@cache
def _known_unit_codes() -> frozenset[int]:
    from vietnam_provinces import Province, Ward

    provinces = {int(province.code) for province in Province.iter_all()}
    wards = {int(ward.code) for ward in Ward.iter_all()}
    return frozenset(provinces | wards)


def load_registry(path: Path) -> Registry:
    if not path.is_file():
        raise ConfigurationError(f"agency registry {path} not found")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return parse_registry(csv.DictReader(handle), str(path))
