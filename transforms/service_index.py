"""SERVICE_INDEX (Decision 766/QĐ-TTg): the index of service to citizens and businesses, per agency and province.

The index itself is data: a versioned ruleset file (`transforms/rulesets/service_index/*.yaml`)
names the six groups, each metric's maximum, target and zero-denominator rule, and which measure it
scores. This module is the code written once: the measures (what is counted, from which source),
the ruleset loader, the warehouse query and the pure assembly, as for ONLINE_SERVICES.

- `service_index_query` counts in the warehouse, one row per agency: for every connected measure the
  ruleset uses, `<measure>_numerator`, `<measure>_denominator` and `<measure>_unknown`. The
  denominator counts the base rows whose value is known; `unknown` counts those whose source left it
  empty (a legacy `hoso` table has no electronic-result column; an unrated dossier has no rating).
- `assemble_service_index` is pure: those rows, the period and the province code in, the report out.
  The province is one more entity whose counts are the sums of its agencies' (never an average of
  scores). A metric is reported without numerator and denominator, score 0, when its measure has no
  connected source, or when every base row of the entity has the value unknown: nothing is invented.

Definitions (DOMAIN.md, "SERVICE_INDEX", read with "TTHC_RESULTS" for "in the period"): catalogue
measures count the agency's procedures as the period's cut-off found them (`warehouse.catalogue_at`:
the catalogue as of the first import after the period's end, so a correction counts the same ones);
dossiers count when not CANCELLED and not deleted. "Received in the period" and "finished in the
period" are TTHC_RESULTS' windows, and PROGRESS's on-time rate is exactly II.06a's
(early + on time) / resolved_total, returned and withdrawn dossiers included.

Petitions (the feedback system's export, `petitions`) are connected only where the report has a
petition source that has stored an export (`service_index_query(..., petition_sources=...)`); the
columns of their measures are then in the rows, and `assemble_service_index` scores them. DOMAIN.md
says "petitions answered on time" and "petition-handling satisfaction" with full points when there
were no petitions, and no more; the choices made where it is silent:
- on time: the petitions *due* in the period (deadline from 00:00 of the start date to 24:00 of the
  end date) are the denominator, those answered no later than the deadline the numerator. Counting by
  deadline gives every petition exactly one period, and one whose outcome is known when the report
  runs after the period: due in the period and still unanswered is late. (Counting by reception would
  leave petitions due after the period open; counting by answer would never count an unanswered one.)
- deadlines given as a date run to 24:00 of that day; an answer dated without an hour is on time on
  the deadline's day (the export does not say the hour); with both hours given, a later hour is late.
- satisfied: among the petitions *answered* in the period with a rating (hai_long 1 or 0), those
  rated 1, as reception satisfaction counts dossiers finished in the period with a rating. Unrated
  answers are `unknown`: an entity whose answered petitions are all unrated is reported without
  counts, score 0 (there were petitions, so "no petitions, full points" does not apply).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa
import yaml
from lxml import etree
from sqlalchemy.sql.expression import ColumnElement

from baocao.core.canonical import Channel, Status
from baocao.core.errors import ConfigurationError, ContractError, FatalError
from baocao.core.layouts.online_services import OnlineType
from baocao.core.layouts.service_index import (
    AGENCY,
    CONNECTED,
    DENOMINATOR,
    DOSSIERS_IN_PERIOD,
    GROUP,
    GROUP_IDS,
    KIND,
    LINE,
    MAX,
    METRIC,
    NUMERATOR,
    REPORT_COLUMNS,
    RULESET,
    SCORE,
    TARGET,
    UNKNOWN,
    ZERO_RULE,
    Kind,
    Line,
    ZeroDenominator,
)
from baocao.core.periods import Period
from baocao.core.registry import Registry
from baocao.core.tables import dossiers
from baocao.core.tables import petitions as petition_table
from baocao.transforms.catalogue import catalogue_at
from baocao.transforms.ict_ranking import SCORE_STEP, score_text
from baocao.transforms.online_services import counted_dossier
from baocao.transforms.render import qualified
from baocao.transforms.tthc import dossier_classes, rows_onto_units

REPORT_TYPE: Final = "SERVICE_INDEX"
# The central's `Code` type, which metric ids are written as.
_CODE: Final = re.compile(r"[A-Za-z0-9._\-]{1,64}")
RULESET_FOLDER: Final = ("rulesets", "service_index")


class RulesetError(FatalError):
    """A ruleset file that breaks the ruleset contract, or no ruleset for a period: fix the file."""


# ---------------------------------------------------------------- measures


@dataclass(frozen=True)
class Measure:
    """What a metric counts, from which source: numerator and denominator say it in words."""

    name: str
    numerator: str
    denominator: str
    source: str | None  # None: no source connected by default (the metric is reported as not connected)
    # An optional source, connected only where a province configured it and it delivered (petitions):
    # the measure's columns are in the query's rows only then, and the metric is not connected without them.
    delivered_by: str | None = None


_CATALOGUE, _DOSSIERS = "procedures (the TTHC catalogue)", "dossiers (the one-stop systems)"
_PETITIONS = "petitions (the feedback system's export, petition_csv)"
_BOTH = f"{_CATALOGUE} and {_DOSSIERS}"

MEASURES: Final[Mapping[str, Measure]] = {
    measure.name: measure
    for measure in (
        Measure("procedures_published_on_time", "published on time", "the agency's procedures", _CATALOGUE),
        Measure(
            "procedures_publication_updated_on_time",
            "publication updated on time",
            "the agency's procedures",
            _CATALOGUE,
        ),
        Measure("procedures_content_complete", "full content published", "the agency's procedures", _CATALOGUE),
        Measure(
            "procedures_offered_online", "FULL or PARTIAL", "the agency's procedures (authority_count)", _CATALOGUE
        ),
        Measure(
            "online_services_with_online_dossiers",
            "with an ONLINE dossier received in the period",
            "the agency's FULL or PARTIAL procedures",
            _BOTH,
        ),
        Measure("fee_procedures_payable_online", "online_payment", "the agency's procedures with a fee", _CATALOGUE),
        Measure(
            "fee_procedures_with_online_payments",
            "with a dossier received in the period and paid online",
            "the agency's procedures with a fee",
            _BOTH,
        ),
        Measure(
            "dossiers_resolved_on_time",
            "early or on time (II.06a)",
            "dossiers finished in the period (II.06a resolved_total)",
            _DOSSIERS,
        ),
        Measure("dossiers_received_online", "channel ONLINE", "dossiers received in the period", _DOSSIERS),
        Measure("fee_dossiers_paid_online", "paid online", "dossiers with a fee received in the period", _DOSSIERS),
        Measure(
            "finished_dossiers_rated_satisfied",
            "rating >= satisfied_rating_min",
            "dossiers finished in the period with a rating",
            _DOSSIERS,
        ),
        Measure(
            "resolved_dossiers_result_electronic",
            "result issued electronically",
            "dossiers RESOLVED in the period",
            _DOSSIERS,
        ),
        Measure("dossiers_digitized", "papers digitised", "dossiers received in the period", _DOSSIERS),
        # Unconnected by default; connected where a petition source has delivered an export (module docstring).
        Measure(
            "petitions_answered_on_time",
            "answered no later than the deadline",
            "petitions due in the period",
            None,
            delivered_by=_PETITIONS,
        ),
        Measure(
            "petitions_answered_satisfied",
            "rated satisfied (hai_long 1)",
            "petitions answered in the period with a rating",
            None,
            delivered_by=_PETITIONS,
        ),
        # Not connected: none of the systems we pull carries these (the national portal's synchronisation
        # status, electronic certification, reuse of digitised data, citizens' personal storage,
        # population-data links). Connecting one is code here (a source, a table, a query), not a ruleset change.
        Measure("dossiers_synced_to_national_portal", "synchronised to the national portal", "dossiers", None),
        Measure("certified_copies_electronic", "certified electronically", "certified copies", None),
        Measure("digitized_data_reused", "reusing digitised data", "dossiers that could reuse it", None),
        Measure("results_synced_to_personal_storage", "synchronised to personal storage", "electronic results", None),
        Measure("dossiers_linked_to_population_data", "linked to the population database", "dossiers", None),
        Measure("procedures_linked_to_population_data", "linked to the population database", "procedures", None),
    )
}


def measure_columns(measure: str) -> tuple[str, str, str]:
    """The query's three columns for a connected measure."""
    return f"{measure}_{NUMERATOR}", f"{measure}_{DENOMINATOR}", f"{measure}_{UNKNOWN}"


# ---------------------------------------------------------------- ruleset


@dataclass(frozen=True)
class MetricRule:
    id: str
    name: str
    measure: str
    max: Decimal
    target: Decimal = Decimal(1)
    zero_denominator: ZeroDenominator = ZeroDenominator.ZERO


@dataclass(frozen=True)
class GroupRule:
    id: str
    name: str
    max: Decimal
    metrics: tuple[MetricRule, ...]


@dataclass(frozen=True)
class Ruleset:
    """One version of the index: groups and metrics in report order."""

    id: str
    decision: str
    effective_from: date
    effective_to: date | None
    max: Decimal
    satisfied_rating_min: int
    groups: tuple[GroupRule, ...]

    def metrics(self) -> Iterator[tuple[GroupRule, MetricRule]]:
        for group in self.groups:
            for metric in group.metrics:
                yield group, metric

    def connected_measures(self) -> tuple[str, ...]:
        """The always-connected measures the ruleset scores, each once, in order of first use."""
        used = dict.fromkeys(metric.measure for _, metric in self.metrics() if MEASURES[metric.measure].source)
        return tuple(used)

    def delivered_measures(self) -> tuple[str, ...]:
        """The measures the ruleset scores whose source is connected only once delivered (petitions)."""
        return tuple(dict.fromkeys(m.measure for _, m in self.metrics() if MEASURES[m.measure].delivered_by))

    def applies_to(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


_RULESET_KEYS = {"report_type", "id", "decision", "effective_from", "effective_to", "max", "satisfied_rating_min"}
_GROUP_KEYS = {"id", "name", "max", "metrics"}
_METRIC_KEYS = {"id", "name", "measure", "max", "target", "zero_denominator"}


def _table(value: Any, keys: set[str], required: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RulesetError(f"{where}: expected a mapping, found {type(value).__name__}")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise RulesetError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(sorted(keys))})")
    missing = sorted(required - set(value))
    if missing:
        raise RulesetError(f"{where}: missing key(s) {', '.join(missing)}")
    return value


def _points(value: Any, where: str) -> Decimal:
    """A positive number (points, or a target rate) as an exact Decimal with at most 3 decimals (the schemas' Score)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RulesetError(f"{where}: {value!r} is not a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise RulesetError(f"{where}: {value!r} is not a number") from None
    if not number.is_finite() or number.quantize(SCORE_STEP) != number:
        raise RulesetError(f"{where}: {value!r} is not a number with at most 3 decimals")
    if number <= 0:
        raise RulesetError(f"{where}: {value!r} must be positive")
    return number


def _date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RulesetError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def _metric(raw: Any, where: str) -> MetricRule:
    table = _table(raw, _METRIC_KEYS, {"id", "measure", "max"}, where)
    metric_id = str(table["id"])
    where = f"{where} ({metric_id})"
    if not _CODE.fullmatch(metric_id):
        raise RulesetError(f"{where}: the metric id must match [A-Za-z0-9._-]{{1,64}} (the central's Code)")
    measure = str(table["measure"])
    if measure not in MEASURES:
        raise RulesetError(f"{where}: unknown measure {measure!r} (known: {', '.join(sorted(MEASURES))})")
    target = _points(table.get("target", 1), f"{where} target")
    if target > 1:
        raise RulesetError(f"{where}: target {target} is a rate and must be at most 1")
    try:
        zero = ZeroDenominator(str(table.get("zero_denominator", ZeroDenominator.ZERO.value)))
    except ValueError:
        allowed = ", ".join(z.value for z in ZeroDenominator)
        raise RulesetError(f"{where}: zero_denominator must be one of {allowed}") from None
    return MetricRule(
        id=metric_id,
        name=str(table.get("name", metric_id)),
        measure=measure,
        max=_points(table["max"], f"{where} max"),
        target=target,
        zero_denominator=zero,
    )


def parse_ruleset(document: Any, where: str) -> Ruleset:
    """A ruleset from its parsed YAML; every contract break is an error naming the file and the place."""
    table = _table(document, _RULESET_KEYS | {"groups"}, _RULESET_KEYS - {"effective_to"} | {"groups"}, where)
    if table["report_type"] != REPORT_TYPE:
        raise RulesetError(f"{where}: report_type is {table['report_type']!r}, not {REPORT_TYPE}")
    raw_groups = table["groups"]
    if not isinstance(raw_groups, list):
        raise RulesetError(f"{where}: groups must be a list")
    groups: list[GroupRule] = []
    for index, raw in enumerate(raw_groups):
        group_table = _table(raw, _GROUP_KEYS, _GROUP_KEYS - {"name"}, f"{where} groups[{index}]")
        group_where = f"{where} group {group_table['id']}"
        if not isinstance(group_table["metrics"], list) or not group_table["metrics"]:
            raise RulesetError(f"{group_where}: metrics must be a non-empty list")
        metrics = tuple(
            _metric(metric, f"{group_where} metrics[{position}]")
            for position, metric in enumerate(group_table["metrics"])
        )
        group = GroupRule(
            id=str(group_table["id"]),
            name=str(group_table.get("name", group_table["id"])),
            max=_points(group_table["max"], f"{group_where} max"),
            metrics=metrics,
        )
        metric_sum = sum((metric.max for metric in metrics), Decimal(0))
        if metric_sum != group.max:
            raise RulesetError(f"{group_where}: max {group.max} != sum of its metrics' maxima {metric_sum}")
        groups.append(group)
    ids = [group.id for group in groups]
    if sorted(ids) != sorted(GROUP_IDS):
        raise RulesetError(f"{where}: the groups must be {', '.join(GROUP_IDS)}, each once; found {', '.join(ids)}")
    metric_ids = [metric.id for group in groups for metric in group.metrics]
    repeated = sorted({metric_id for metric_id in metric_ids if metric_ids.count(metric_id) > 1})
    if repeated:
        raise RulesetError(f"{where}: metric id(s) used twice: {', '.join(repeated)}")
    ruleset_max = _points(table["max"], f"{where} max")
    group_sum = sum((group.max for group in groups), Decimal(0))
    if group_sum != ruleset_max:
        raise RulesetError(f"{where}: max {ruleset_max} != sum of the groups' maxima {group_sum}")
    rating = table["satisfied_rating_min"]
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise RulesetError(f"{where}: satisfied_rating_min must be a rating 1 to 5, not {rating!r}")
    effective_to = _date(table["effective_to"], f"{where} effective_to") if table.get("effective_to") else None
    return Ruleset(
        id=str(table["id"]),
        decision=str(table["decision"]),
        effective_from=_date(table["effective_from"], f"{where} effective_from"),
        effective_to=effective_to,
        max=ruleset_max,
        satisfied_rating_min=rating,
        groups=tuple(groups),
    )


def load_ruleset(text: str, where: str) -> Ruleset:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RulesetError(f"{where}: not valid YAML: {error}") from None
    return parse_ruleset(document, where)


@cache
def shipped_rulesets() -> tuple[Ruleset, ...]:
    """Every ruleset shipped with the package (package data), ordered by effective date."""
    folder = resources.files("baocao.transforms").joinpath(*RULESET_FOLDER)
    found = [
        load_ruleset(entry.read_text(encoding="utf-8"), f"{'/'.join(RULESET_FOLDER)}/{entry.name}")
        for entry in folder.iterdir()
        if entry.name.endswith((".yaml", ".yml"))
    ]
    return tuple(sorted(found, key=lambda ruleset: ruleset.effective_from))


def ruleset_for(period: Period, rulesets: tuple[Ruleset, ...] | None = None) -> Ruleset:
    """The ruleset in effect on the period's end date (the regulation in force when it is evaluated)."""
    candidates = shipped_rulesets() if rulesets is None else rulesets
    applicable = [ruleset for ruleset in candidates if ruleset.applies_to(period.end)]
    if not applicable:
        known = ", ".join(f"{r.id} (from {r.effective_from.isoformat()})" for r in candidates) or "none"
        raise RulesetError(
            f"{REPORT_TYPE} {period.id}: no ruleset in effect on {period.end.isoformat()}; known: {known}"
        )
    if len(applicable) > 1:
        raise RulesetError(
            f"{REPORT_TYPE} {period.id}: rulesets {', '.join(r.id for r in applicable)} overlap on "
            f"{period.end.isoformat()}; give the older one an effective_to"
        )
    return applicable[0]


# ---------------------------------------------------------------- warehouse query


@dataclass(frozen=True)
class _Share:
    """A measure as SQL conditions on one table: numerator = base ∧ known ∧ value, denominator = base ∧ known."""

    base: ColumnElement[bool]
    value: ColumnElement[bool]
    known: ColumnElement[bool]


def _unit_of(code: ColumnElement[Any], units: Mapping[str, str]) -> ColumnElement[Any]:
    """The unit an agency code's work belongs to (`transforms.tthc.moved_units`); the code itself if it did not move."""
    if not units:
        return code
    return sa.case({old: new for old, new in sorted(units.items())}, value=code, else_=code)


def _not_listed_by_successor(units: Mapping[str, str], period: Period, entries: Any) -> ColumnElement[bool]:
    """Catalogue entries to count: all but those of a merged agency whose successor lists the same
    procedure itself (the successor's line would count that procedure twice once the rows move)."""
    if not units:
        return sa.true()
    p = entries.c
    successor = catalogue_at(period.ends_before).subquery("successor_entry")
    listed_by_successor = sa.exists().where(
        successor.c.code == p.code, successor.c.agency_code == _unit_of(p.agency_code, units)
    )
    return sa.not_(sa.and_(p.agency_code.in_(sorted(units)), listed_by_successor))


def _procedure_use(period: Period, units: Mapping[str, str]) -> Any:
    """Per (unit, procedure code): whether a dossier received in the period came online, was paid online.

    Grouped once and joined to the catalogue by key, rather than an EXISTS per procedure: a correlated
    subquery inside an aggregate is run once per catalogue row (20,000 procedures × every dossier).
    A dossier still recorded under an agency that merged uses the procedure of the unit carrying its
    work (`units`), so the successor's catalogue entry is found; the mapping is applied to the grouped
    rows, not to every dossier.
    """
    d = dossiers.c
    paid_online = sa.and_(d.fee_required.is_(True), d.paid_online.is_(True))
    by_agency = (
        sa.select(
            d.agency_code.label("agency_code"),
            d.procedure_code.label("procedure_code"),
            sa.func.max(sa.case((d.channel == Channel.ONLINE, 1), else_=0)).label("online"),
            sa.func.max(sa.case((paid_online, 1), else_=0)).label("paid_online"),
        )
        .where(counted_dossier(period), d.procedure_code.is_not(None))
        .group_by(d.agency_code, d.procedure_code)
    )
    if not units:
        return by_agency.cte("procedure_use")
    grouped = by_agency.cte("procedure_use_by_agency")
    unit = _unit_of(grouped.c.agency_code, units)
    return (
        sa.select(
            unit.label("agency_code"),
            grouped.c.procedure_code,
            sa.func.max(grouped.c.online).label("online"),
            sa.func.max(grouped.c.paid_online).label("paid_online"),
        )
        .group_by(unit, grouped.c.procedure_code)
        .cte("procedure_use")
    )


def _catalogue_shares(use: Any, entries: Any) -> dict[str, _Share]:
    """Shares over the period's catalogue `entries` joined (outer) to `_procedure_use` on (agency, code)."""
    p = entries.c
    every, offered_online = sa.true(), p.online_type.in_([OnlineType.FULL, OnlineType.PARTIAL])
    with_fee = p.fee_required.is_(True)
    used_online = sa.func.coalesce(use.c.online, 0) == 1
    paid_online = sa.func.coalesce(use.c.paid_online, 0) == 1
    return {
        "procedures_published_on_time": _Share(every, p.published_on_time.is_(True), p.published_on_time.is_not(None)),
        "procedures_publication_updated_on_time": _Share(
            every, p.publication_updated_on_time.is_(True), p.publication_updated_on_time.is_not(None)
        ),
        "procedures_content_complete": _Share(every, p.content_complete.is_(True), p.content_complete.is_not(None)),
        "procedures_offered_online": _Share(every, offered_online, p.online_type.is_not(None)),
        "online_services_with_online_dossiers": _Share(offered_online, used_online, every),
        "fee_procedures_payable_online": _Share(with_fee, p.online_payment.is_(True), p.online_payment.is_not(None)),
        "fee_procedures_with_online_payments": _Share(with_fee, paid_online, every),
    }


def _dossier_shares(period: Period, ruleset: Ruleset) -> dict[str, _Share]:
    d = dossiers.c
    classes = dossier_classes(period)
    finished = classes["resolved_total"]  # finished (resolved, returned, withdrawn) in the period
    received = counted_dossier(period)
    return {
        "dossiers_resolved_on_time": _Share(
            finished, sa.or_(classes["resolved_early"], classes["resolved_on_time"]), sa.true()
        ),
        "dossiers_received_online": _Share(received, d.channel == Channel.ONLINE, d.channel.is_not(None)),
        "fee_dossiers_paid_online": _Share(
            sa.and_(received, d.fee_required.is_(True)), d.paid_online.is_(True), d.paid_online.is_not(None)
        ),
        "finished_dossiers_rated_satisfied": _Share(
            finished, d.rating >= ruleset.satisfied_rating_min, d.rating.is_not(None)
        ),
        "resolved_dossiers_result_electronic": _Share(
            sa.and_(finished, d.status == Status.RESOLVED),
            d.result_electronic.is_(True),
            d.result_electronic.is_not(None),
        ),
        "dossiers_digitized": _Share(received, d.digitized.is_(True), d.digitized.is_not(None)),
    }


def _petition_shares(period: Period) -> dict[str, _Share]:
    """The petition measures (definitions in the module docstring): by deadline, and by answer."""
    pt = petition_table.c
    starts, ends = period.starts_at, period.ends_before
    due_in_period = sa.and_(pt.due_at >= starts, pt.due_at < ends)
    answered_in_period = sa.and_(pt.answered_at.is_not(None), pt.answered_at >= starts, pt.answered_at < ends)
    return {
        "petitions_answered_on_time": _Share(
            due_in_period, sa.and_(pt.answered_at.is_not(None), pt.answered_at <= pt.due_at), sa.true()
        ),
        "petitions_answered_satisfied": _Share(answered_in_period, pt.satisfied.is_(True), pt.satisfied.is_not(None)),
    }


def input_columns(ruleset: Ruleset, petitions: bool = False) -> tuple[str, ...]:
    """The columns `service_index_query` returns (and `assemble_service_index` needs) for this ruleset;
    with `petitions`, also those of the petition measures (a petition source is connected)."""
    measures = [*ruleset.connected_measures(), *(ruleset.delivered_measures() if petitions else ())]
    counts = [name for measure in measures for name in measure_columns(measure)]
    return (AGENCY, DOSSIERS_IN_PERIOD, *counts)


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _share_counts(name: str, share: _Share) -> list[sa.Label[Any]]:
    numerator, denominator, unknown = measure_columns(name)
    return [
        _count_where(sa.and_(share.base, share.known, share.value)).label(numerator),
        _count_where(sa.and_(share.base, share.known)).label(denominator),
        _count_where(sa.and_(share.base, sa.not_(share.known))).label(unknown),
    ]


def service_index_query(
    period: Period, ruleset: Ruleset, petition_sources: Sequence[str] = (), units: Mapping[str, str] | None = None
) -> sa.Select[Any]:
    """One row per agency (`input_columns(ruleset, petitions=bool(petition_sources))`), computed in the
    warehouse, ordered by agency.

    Agencies: every agency with catalogue entries and every agency with dossiers received or finished
    in the period, as for ONLINE_SERVICES; with petition sources, also every agency with petitions of
    those sources due or answered in the period. No petition source: the petition metrics are not
    connected (no columns), never counted as "no petitions".

    `units` (`transforms.tthc.moved_units`) matches dossiers of merged agencies with their successor's
    catalogue entries; the rows stay by recorded agency, and `onto_units` moves them afterwards.
    """
    # The catalogue as the period's cut-off found it (`warehouse.catalogue_at`), also when aggregated again later.
    entries = catalogue_at(period.ends_before).subquery("procedures_then")
    d, p = dossiers.c, entries.c
    used = ruleset.connected_measures()
    petition_shares = (
        {name: share for name, share in _petition_shares(period).items() if name in ruleset.delivered_measures()}
        if petition_sources
        else {}
    )
    units = units or {}
    use = _procedure_use(period, units)
    catalogue_shares = {name: share for name, share in _catalogue_shares(use, entries).items() if name in used}
    dossier_shares = {name: share for name, share in _dossier_shares(period, ruleset).items() if name in used}
    missing = sorted(set(used) - set(catalogue_shares) - set(dossier_shares))
    if missing:  # a measure marked connected without SQL: a bug here, not in the ruleset
        raise RulesetError(f"{REPORT_TYPE}: connected measure(s) {', '.join(missing)} have no query")
    catalogue = (
        sa.select(
            p.agency_code.label(AGENCY),
            *[count for name, share in catalogue_shares.items() for count in _share_counts(name, share)],
        )
        .select_from(
            entries.outerjoin(
                use, sa.and_(use.c.agency_code == _unit_of(p.agency_code, units), use.c.procedure_code == p.code)
            )
        )
        .where(_not_listed_by_successor(units, period, entries))
        .group_by(p.agency_code)
        .cte("catalogue")
    )
    in_period = sa.or_(counted_dossier(period), dossier_classes(period)["resolved_total"])
    period_dossiers = (
        sa.select(
            d.agency_code.label(AGENCY),
            sa.func.count().label(DOSSIERS_IN_PERIOD),
            *[count for name, share in dossier_shares.items() for count in _share_counts(name, share)],
        )
        .where(d.deleted.is_(False), d.status != Status.CANCELLED, d.agency_code.is_not(None), in_period)
        .group_by(d.agency_code)
        .cte("period_dossiers")
    )
    entity_selects = [sa.select(catalogue.c[AGENCY]), sa.select(period_dossiers.c[AGENCY])]
    period_petitions = None
    if petition_shares:
        pt = petition_table.c
        period_petitions = (
            sa.select(
                pt.agency_code.label(AGENCY),
                *[count for name, share in petition_shares.items() for count in _share_counts(name, share)],
            )
            .where(pt.source.in_(list(petition_sources)), sa.or_(*[share.base for share in petition_shares.values()]))
            .group_by(pt.agency_code)
            .cte("period_petitions")
        )
        entity_selects.append(sa.select(period_petitions.c[AGENCY]))
    agencies = sa.union(*entity_selects).subquery("agencies")

    def count(source: Any, name: str) -> sa.Label[Any]:
        return sa.cast(sa.func.coalesce(source.c[name], 0), sa.Integer).label(name)

    columns = [count(period_dossiers, DOSSIERS_IN_PERIOD)]
    for name in used:
        source = catalogue if name in catalogue_shares else period_dossiers
        columns += [count(source, column) for column in measure_columns(name)]
    for name in petition_shares:
        columns += [count(period_petitions, column) for column in measure_columns(name)]
    query = (
        sa.select(agencies.c[AGENCY], *columns)
        .select_from(agencies)
        .outerjoin(catalogue, catalogue.c[AGENCY] == agencies.c[AGENCY])
        .outerjoin(period_dossiers, period_dossiers.c[AGENCY] == agencies.c[AGENCY])
    )
    if period_petitions is not None:
        query = query.outerjoin(period_petitions, period_petitions.c[AGENCY] == agencies.c[AGENCY])
    return query.order_by(agencies.c[AGENCY])


def onto_units(inputs: pd.DataFrame, registry: Registry, period: Period, day: date) -> pd.DataFrame:
    """Rows of `service_index_query` re-keyed onto the units that carry the agencies' work on `day`.

    An agency the registry knows but that is not active in the period (merged, or ended with the
    district level) is reported by `registry.current_unit(code, day)`, as TTHC_RESULTS does
    (`transforms.tthc.rows_onto_units`, one implementation); rows that land on the same agency are
    summed column by column. Every column other than `agency` is an additive count (dossiers in the
    period, and each measure's numerator, denominator and unknown: counts of catalogue entries,
    dossiers or petitions, each counted under exactly one agency), so the successor's shares are
    computed from the sums, never from averaged rates. Agencies unknown to the registry stay as they
    are (the report suite and completeness name them). Pure: `inputs` is not changed.
    """
    counts = {name: "sum" for name in inputs.columns if name != AGENCY}
    return rows_onto_units(inputs, registry, period, day, (AGENCY,), counts)


# ---------------------------------------------------------------- scoring and assembly


def round_score(value: Fraction) -> Decimal:
    """A non-negative exact score with 3 decimals, half-up (integer arithmetic: no binary rounding)."""
    thousandths = (2 * value.numerator * 1000 + value.denominator) // (2 * value.denominator)
    return Decimal(thousandths).scaleb(-3).quantize(SCORE_STEP)


def metric_score(rule: MetricRule, numerator: int, denominator: int) -> Decimal:
    """min(max, max × (numerator / denominator) / target), 3 decimals half-up; the zero-denominator rule."""
    if denominator == 0:
        return rule.max.quantize(SCORE_STEP) if rule.zero_denominator is ZeroDenominator.FULL else Decimal("0.000")
    maximum = Fraction(rule.max)
    earned = maximum * Fraction(numerator, denominator) / Fraction(rule.target)
    return round_score(max(Fraction(0), min(maximum, earned)))


@dataclass(frozen=True)
class _Counts:
    numerator: int
    denominator: int
    unknown: int


def _entity_lines(kind: str, code: str | None, counts: Mapping[str, _Counts], ruleset: Ruleset) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    group_scores: list[Decimal] = []
    for group in ruleset.groups:
        metric_lines: list[dict[str, Any]] = []
        for rule in group.metrics:
            found = counts.get(rule.measure)
            # Not connected: no source at all, or every base row of this entity has the value unknown.
            connected = found is not None and not (found.denominator == 0 and found.unknown > 0)
            numerator = found.numerator if connected and found else None
            denominator = found.denominator if connected and found else None
            score = (
                metric_score(rule, numerator, denominator)
                if numerator is not None and denominator is not None
                else Decimal("0.000")
            )
            metric_lines.append(
                {
                    KIND: kind,
                    AGENCY: code,
                    LINE: Line.METRIC,
                    GROUP: group.id,
                    METRIC: rule.id,
                    NUMERATOR: numerator,
                    DENOMINATOR: denominator,
                    SCORE: score,
                    MAX: rule.max.quantize(SCORE_STEP),
                    TARGET: rule.target,
                    ZERO_RULE: rule.zero_denominator.value,
                    CONNECTED: connected,
                    RULESET: ruleset.id,
                }
            )
        group_score = sum((line[SCORE] for line in metric_lines), Decimal(0)).quantize(SCORE_STEP)
        group_scores.append(group_score)
        lines.append(_summary_line(kind, code, Line.GROUP, group.id, group_score, group.max, ruleset))
        lines += metric_lines
    total = sum(group_scores, Decimal(0)).quantize(SCORE_STEP)
    lines.append(_summary_line(kind, code, Line.TOTAL, None, total, ruleset.max, ruleset))
    return lines


def _summary_line(
    kind: str, code: str | None, line: str, group: str | None, score: Decimal, maximum: Decimal, ruleset: Ruleset
) -> dict[str, Any]:
    return {
        KIND: kind,
        AGENCY: code,
        LINE: line,
        GROUP: group,
        METRIC: None,
        NUMERATOR: None,
        DENOMINATOR: None,
        SCORE: score,
        MAX: maximum.quantize(SCORE_STEP),
        TARGET: None,
        ZERO_RULE: None,
        CONNECTED: None,
        RULESET: ruleset.id,
    }


def assemble_service_index(
    inputs: pd.DataFrame, period: Period, province_code: str | None = None, ruleset: Ruleset | None = None
) -> pd.DataFrame:
    """Rows of `service_index_query` → the report (`REPORT_COLUMNS`), one line per metric, group and total.

    Agencies by code, then the province (`province_code`; the sums of every agency's counts). Within
    an entity: per group its GROUP line then its METRIC lines, in ruleset order, then the TOTAL line.
    Negative counts or numerators above denominators pass through: the report suite names them.
    """
    ruleset = ruleset or ruleset_for(period)
    # The petition measures are connected when the rows carry their columns (all of them, or none).
    petition_columns = input_columns(ruleset, petitions=True)[len(input_columns(ruleset)) :]
    petitions_connected = any(name in inputs.columns for name in petition_columns)
    missing = [name for name in input_columns(ruleset, petitions_connected) if name not in inputs.columns]
    if missing:
        raise ContractError(f"{REPORT_TYPE} {period.id}: the grouped rows lack column(s) {', '.join(missing)}")
    duplicated = sorted(set(inputs.loc[inputs[AGENCY].duplicated(), AGENCY]))
    if duplicated:
        raise ContractError(f"{REPORT_TYPE} {period.id}: agencies listed twice: {', '.join(duplicated[:10])}")
    if province_code is not None and province_code in set(inputs[AGENCY]):
        raise ConfigurationError(
            f"{REPORT_TYPE} {period.id}: agency {province_code} has the province's own code, so its line and the "
            "province's could not be told apart; give the office its own agency code"
        )
    measures = ruleset.connected_measures() + (ruleset.delivered_measures() if petitions_connected else ())
    frame = inputs.sort_values(AGENCY, kind="stable").reset_index(drop=True)
    lines: list[dict[str, Any]] = []
    province = dict.fromkeys(measures, _Counts(0, 0, 0))
    for row in frame.to_dict("records"):
        counts = {measure: _Counts(*(int(row[column]) for column in measure_columns(measure))) for measure in measures}
        for measure, found in counts.items():
            held = province[measure]
            province[measure] = _Counts(
                held.numerator + found.numerator, held.denominator + found.denominator, held.unknown + found.unknown
            )
        lines += _entity_lines(Kind.AGENCY, str(row[AGENCY]), counts, ruleset)
    lines += _entity_lines(Kind.PROVINCE, province_code, province, ruleset)
    report = pd.DataFrame(lines, columns=list(REPORT_COLUMNS))
    # Object dtype keeps absent counts None (not NaN floats) and codes as written.
    for name in (AGENCY, GROUP, METRIC, NUMERATOR, DENOMINATOR, TARGET, ZERO_RULE, CONNECTED):
        report[name] = pd.Series([line[name] for line in lines], dtype=object)
    return report


# ---------------------------------------------------------------- rendering


@dataclass
class _Entity:
    code: str
    total: Decimal
    groups: list[tuple[dict[str, Any], list[dict[str, Any]]]]


def _entities(report: pd.DataFrame) -> list[_Entity]:
    """The report's lines as agencies (in report order) with their groups and metrics."""
    entities: list[_Entity] = []
    current: _Entity | None = None
    for line in report.to_dict("records"):
        code = line[AGENCY]
        if code is None or (isinstance(code, float) and pd.isna(code)):
            raise ContractError(f"{REPORT_TYPE}: the {str(line[KIND]).lower()} line has no agency code")
        if current is None or current.code != code:
            current = _Entity(str(code), Decimal(0), [])
            entities.append(current)
        if line[LINE] == Line.GROUP:
            current.groups.append((line, []))
        elif line[LINE] == Line.METRIC:
            if not current.groups or current.groups[-1][0][GROUP] != line[GROUP]:
                raise ContractError(f"{REPORT_TYPE}: agency {code}, metric {line[METRIC]} is outside its group")
            current.groups[-1][1].append(line)
        else:
            current.total = line[SCORE]
    return entities


def _counted(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value))


def _xml_metric(line: Mapping[str, Any]) -> dict[str, str]:
    attributes = {"id": str(line[METRIC])}
    if _counted(line[NUMERATOR]) and _counted(line[DENOMINATOR]):
        attributes.update(numerator=str(int(line[NUMERATOR])), denominator=str(int(line[DENOMINATOR])))
    attributes.update(score=score_text(line[SCORE]), max=score_text(line[MAX]))
    return attributes


def service_index_xml_body(parent: etree._Element, report: pd.DataFrame) -> None:
    """Fill `<ServiceIndex>`: one `<Agency code total>` per entity, six `<Group>`, their `<Metric>`s.

    A metric whose source is not connected carries no numerator and denominator (both optional in the XSD).
    """
    for entity in _entities(report):
        agency = etree.SubElement(parent, qualified("Agency"), code=entity.code, total=score_text(entity.total))
        for group, metrics in entity.groups:
            element = etree.SubElement(
                agency,
                qualified("Group"),
                id=str(group[GROUP]),
                score=score_text(group[SCORE]),
                max=score_text(group[MAX]),
            )
            for metric in metrics:
                etree.SubElement(element, qualified("Metric"), _xml_metric(metric))


def _json_metric(line: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"id": str(line[METRIC])}
    if _counted(line[NUMERATOR]) and _counted(line[DENOMINATOR]):
        values.update(numerator=int(line[NUMERATOR]), denominator=int(line[DENOMINATOR]))
    values.update(score=float(score_text(line[SCORE])), max=float(score_text(line[MAX])))
    return values


def service_index_json_body(report: pd.DataFrame) -> dict[str, Any]:
    """The `service_index` body. Scores are written as the shortest float that reads back to the 3-decimal
    value (as for ICT_RANKING); a metric whose source is not connected has no numerator and denominator."""
    return {
        "agencies": [
            {
                "code": entity.code,
                "total": float(score_text(entity.total)),
                "groups": [
                    {
                        "id": str(group[GROUP]),
                        "score": float(score_text(group[SCORE])),
                        "max": float(score_text(group[MAX])),
                        "metrics": [_json_metric(metric) for metric in metrics],
                    }
                    for group, metrics in entity.groups
                ],
            }
            for entity in _entities(report)
        ]
    }
