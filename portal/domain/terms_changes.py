"""What a new SLA version changes against the one before it, in the words customers read: the
guarantee and credits, the clocks per priority, the escalation ladder and the maintenance rules.
The publish confirmation, its email and the contract page's history all show this one list.

Pure Python (no Django): contracts.selectors builds the Terms of a version from its rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal

from portal.domain.formats import NOTHING, duration, percent, percent_number
from portal.domain.tiers import Tier

CREDITS, CLOCKS, ESCALATION, MAINTENANCE = (
    "Uptime guarantee and credits", "Support clocks", "Escalation", "Maintenance",
)  # fmt: skip
SECTIONS = (CREDITS, CLOCKS, ESCALATION, MAINTENANCE)


@dataclass(frozen=True)
class Clock:
    """A priority's clocks: the calendar each runs on (by name) and their allowances."""

    calendar: str
    resolution_calendar: str
    first_response: timedelta
    resolution_target: timedelta
    resolution_limit: timedelta


@dataclass(frozen=True)
class Level:
    """A rung of the escalation ladder as the customer uses it."""

    instruction: str
    channel: str
    contact: str = ""


@dataclass(frozen=True)
class Terms:
    guarantee: Decimal
    timezone: str
    business_hours: str
    credit_kind: str
    claim_window_days: int
    exclusion_causes: tuple[str, ...]
    clocks: Mapping[str, Clock]  # by priority ("P1" ... or "Standard")
    levels: Mapping[int, Level]
    dwells: Mapping[tuple[int, str], timedelta]  # (level, priority) -> how long before it moves up
    tiers: tuple[Tier, ...]
    maintenance_notice: timedelta
    offpeak: tuple[time, time]
    maintenance_annual_cap: timedelta
    escalation_ack: timedelta | None = None
    escalation_ack_calendar: str = ""


@dataclass(frozen=True)
class Change:
    section: str
    term: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.term}: {self.before} → {self.after}"


def changes(before: Terms, after: Terms) -> list[Change]:
    """Every term that differs, section by section (SECTIONS' order), each as it was and as it will
    be; "—" where a term is added or removed. Empty when nothing changes."""
    out: list[Change] = []

    def differ(section: str, term: str, old: str, new: str) -> None:
        if old != new:
            out.append(Change(section, term, old, new))

    # Uptime guarantee and credits.
    differ(CREDITS, "Monthly uptime guarantee", percent(before.guarantee), percent(after.guarantee))
    old_tiers, new_tiers = _tiers(before.tiers), _tiers(after.tiers)
    for bounds in sorted(old_tiers.keys() | new_tiers.keys(), key=_tier_order, reverse=True):
        differ(
            CREDITS,
            f"Credit for monthly uptime {bounds[0]}",
            old_tiers.get(bounds, NOTHING),
            new_tiers.get(bounds, NOTHING),
        )
    differ(CREDITS, "Credit paid as", before.credit_kind, after.credit_kind)
    differ(CREDITS, "Claim window", _days(before.claim_window_days), _days(after.claim_window_days))
    removed = [c for c in before.exclusion_causes if c not in after.exclusion_causes]
    added = [c for c in after.exclusion_causes if c not in before.exclusion_causes]
    for cause in removed:
        differ(CREDITS, f"Downtime excluded: {cause}", "excluded", "counted against uptime")
    for cause in added:
        differ(CREDITS, f"Downtime excluded: {cause}", "counted against uptime", "excluded")
    differ(CREDITS, "Timezone of months and clocks", before.timezone, after.timezone)

    # Support clocks, per priority.
    differ(CLOCKS, "Business hours", before.business_hours, after.business_hours)
    for priority in sorted(before.clocks.keys() | after.clocks.keys()):
        old, new = before.clocks.get(priority), after.clocks.get(priority)
        differ(CLOCKS, f"{priority} first response", _first_response(old), _first_response(new))
        differ(CLOCKS, f"{priority} resolution", _resolution(old), _resolution(new))

    # Escalation.
    differ(ESCALATION, "Escalation requests acknowledged within", _ack(before), _ack(after))
    for level in sorted(before.levels.keys() | after.levels.keys()):
        differ(ESCALATION, f"Level {level}", _level(before.levels.get(level)), _level(after.levels.get(level)))
    for level, priority in sorted(before.dwells.keys() | after.dwells.keys()):
        old_dwell, new_dwell = before.dwells.get((level, priority)), after.dwells.get((level, priority))
        differ(ESCALATION, f"{priority}: moves up from level {level} after", duration(old_dwell), duration(new_dwell))

    # Maintenance rules.
    differ(
        MAINTENANCE,
        "Notice before maintenance",
        duration(before.maintenance_notice),
        duration(after.maintenance_notice),
    )
    differ(MAINTENANCE, "Off-peak hours for maintenance", _window(before.offpeak), _window(after.offpeak))
    differ(
        MAINTENANCE,
        "Maintenance per calendar year, at most",
        duration(before.maintenance_annual_cap),
        duration(after.maintenance_annual_cap),
    )
    return out


def by_section(found: list[Change]) -> list[tuple[str, list[Change]]]:
    """The changes grouped under their sections, in SECTIONS' order, empty sections left out."""
    return [(s, [c for c in found if c.section == s]) for s in SECTIONS if any(c.section == s for c in found)]


def _tiers(tiers) -> dict[tuple[str, Decimal], str]:
    """Each tier's range in words (with a key that sorts it), and its credit."""
    return {
        (_range(t), t.upper if t.upper is not None else Decimal(101)): f"{percent(t.percent)} of the invoice"
        for t in tiers
    }


def _tier_order(key):
    return key[1], key[0]


def _range(t: Tier) -> str:
    """As the contract page writes a tier: between 98.0% (included) and 99.0% (included)."""

    def bound(value, inclusive):
        return f"{percent_number(value)}% ({'included' if inclusive else 'excluded'})"

    if t.lower is not None and t.upper is not None:
        return f"between {bound(t.lower, t.lower_inclusive)} and {bound(t.upper, t.upper_inclusive)}"
    if t.upper is not None:
        return f"less than {percent(t.upper)}{' or equal' if t.upper_inclusive else ''}"
    return f"at least {percent(t.lower)}{'' if t.lower_inclusive else ' (excluded)'}"


def _days(n: int) -> str:
    return f"{n} day{'' if n == 1 else 's'} after the month's end"


def _first_response(clock: Clock | None) -> str:
    return NOTHING if clock is None else f"{duration(clock.first_response)} ({clock.calendar})"


def _resolution(clock: Clock | None) -> str:
    if clock is None:
        return NOTHING
    if clock.resolution_target == clock.resolution_limit:
        allowance = f"within {duration(clock.resolution_limit)}"
    else:
        allowance = f"target {duration(clock.resolution_target)}, limit {duration(clock.resolution_limit)}"
    return f"{allowance} ({clock.resolution_calendar})"


def _ack(terms: Terms) -> str:
    if terms.escalation_ack is None:
        return "the priority's first-response time"
    return f"{duration(terms.escalation_ack)} ({terms.escalation_ack_calendar})"


def _level(level: Level | None) -> str:
    if level is None:
        return NOTHING
    return f"{level.instruction} ({level.channel}{', ' + level.contact if level.contact else ''})"


def _window(window: tuple[time, time]) -> str:
    return f"{window[0]:%H:%M}-{window[1]:%H:%M} local time"
