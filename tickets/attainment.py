"""SLA attainment: the share of tickets answered and resolved within their SLA, per priority and
month of filing. Pure: it reads the clock columns tickets.recompute.ticket_recompute stores
(deadlines derived from the ticket's history), so it agrees with the crossings the sweeps record.

A clock is *missed* exactly when tickets.deadlines.crossings_due would record a crossing: its deadline
has passed and the ticket had not been answered (resolved) by then; or when the sweep recorded its
breach (its target's warning), which stands where a later recompute moved the deadline (a closed
day added to the calendar), as tickets.deadlines.sla_state has it: the statement never calls met
what the ticket's page, its breach email and the crossings list call breached. It is *met* once it
can no longer be missed: answered (resolved) in time. Otherwise it is *pending*. A deadline of None
means the clock is paused with no end in sight (e.g. resolved before the deadline came): not missed.

Excluded tickets (marked out of the SLA by staff) are counted apart and in no rate.

Satisfaction is counted with them (tickets.satisfaction): of the counted tickets resolved now (resolved
or closed, not reopened), how many their filer rated good and bad. A reopened ticket's rating counts
again once it is resolved again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

ALL = ""  # the priority of a row that sums every priority
_CENT = Decimal("0.01")


class Outcome(StrEnum):
    MET = "met"
    MISSED = "missed"
    PENDING = "pending"


@dataclass(frozen=True)
class TicketTimes:
    filed_at: datetime
    priority: str
    excluded: bool
    first_response_at: datetime | None
    first_response_due: datetime | None
    resolved_at: datetime | None
    resolution_target_at: datetime | None
    resolution_due: datetime | None
    rating: str | None = None  # the filer's rating: "good", "bad" or None
    # The crossings the sweep recorded: the first response's breach, the resolution target's
    # warning (passed), the resolution limit's breach.
    response_breached: bool = False
    target_passed: bool = False
    resolution_breached: bool = False


def outcome(deadline: datetime | None, done_at: datetime | None, *, now: datetime) -> Outcome:
    """One clock: `deadline` the moment it had to be done by, `done_at` when it was done."""
    if deadline is not None and deadline <= now and (done_at is None or done_at > deadline):
        return Outcome.MISSED
    return Outcome.MET if done_at is not None and done_at <= now else Outcome.PENDING


def response_outcome(t: TicketTimes, *, now: datetime) -> Outcome:
    # A ticket resolved before anyone replied, in time, needed no reply: its clock cannot be missed.
    done = t.first_response_at
    if (
        done is None
        and t.resolved_at is not None
        and (t.first_response_due is None or t.resolved_at <= t.first_response_due)
    ):
        done = t.resolved_at
    return outcome(t.first_response_due, done, now=now)


def _rate(met: int, missed: int) -> Decimal | None:
    decided = met + missed
    if not decided:
        return None
    return (Decimal(met * 100) / Decimal(decided)).quantize(_CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Attainment:
    month: date | None
    priority: str
    filed: int = 0
    excluded: int = 0
    response_met: int = 0
    response_missed: int = 0
    response_pending: int = 0
    resolution_met: int = 0  # resolved within the target
    resolution_missed: int = 0
    resolution_pending: int = 0
    within_limit: int = 0  # resolved within the limit (no breach)
    breached: int = 0
    resolved: int = 0  # resolved now (satisfaction's base)
    rated_good: int = 0
    rated_bad: int = 0

    @property
    def counted(self) -> int:
        return self.filed - self.excluded

    @property
    def response_rate(self) -> Decimal | None:
        return _rate(self.response_met, self.response_missed)

    @property
    def resolution_rate(self) -> Decimal | None:
        return _rate(self.resolution_met, self.resolution_missed)

    @property
    def limit_rate(self) -> Decimal | None:
        return _rate(self.within_limit, self.breached)

    @property
    def rated(self) -> int:
        return self.rated_good + self.rated_bad

    @property
    def satisfaction_rate(self) -> Decimal | None:
        """The share rated good of the rated."""
        return _rate(self.rated_good, self.rated_bad)


_COUNTS = [f.name for f in fields(Attainment) if f.name not in ("month", "priority")]


def _tally(t: TicketTimes, now: datetime) -> dict[str, int]:
    if t.excluded:
        return {"filed": 1, "excluded": 1}
    response = Outcome.MISSED if t.response_breached else response_outcome(t, now=now)
    passed = t.target_passed or t.resolution_breached  # a limit passed is its target passed
    target = Outcome.MISSED if passed else outcome(t.resolution_target_at, t.resolved_at, now=now)
    limit = Outcome.MISSED if t.resolution_breached else outcome(t.resolution_due, t.resolved_at, now=now)
    resolved = t.resolved_at is not None and t.resolved_at <= now
    return {
        "filed": 1,
        f"response_{response}": 1,
        f"resolution_{target}": 1,
        "within_limit": int(limit is Outcome.MET),
        "breached": int(limit is Outcome.MISSED),
        "resolved": int(resolved),
        "rated_good": int(resolved and t.rating == "good"),
        "rated_bad": int(resolved and t.rating == "bad"),
    }


def attainment(tickets: Iterable[TicketTimes], *, tz: str, now: datetime) -> dict[tuple[date, str], Attainment]:
    """(month of filing in `tz`, priority) -> Attainment, as the clocks stand at `now`."""
    zone = ZoneInfo(tz)
    counts: dict[tuple[date, str], dict[str, int]] = {}
    for t in tickets:
        if t.filed_at > now:
            continue
        key = (t.filed_at.astimezone(zone).date().replace(day=1), t.priority)
        row = counts.setdefault(key, dict.fromkeys(_COUNTS, 0))
        for name, n in _tally(t, now).items():
            row[name] += n
    return {key: Attainment(key[0], key[1], **row) for key, row in sorted(counts.items())}


def totals(rows: Iterable[Attainment], *, month: date | None = None) -> Attainment:
    """The sum of `rows` (all priorities, or all months): priority ALL."""
    sums = dict.fromkeys(_COUNTS, 0)
    for r in rows:
        for name in _COUNTS:
            sums[name] += getattr(r, name)
    return Attainment(month, ALL, **sums)
