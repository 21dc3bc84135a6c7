"""A ticket's SLA clocks, from its history: pure Python, no Django.

Everything here is recomputed from stored facts (when the ticket was filed, when it waited on
the customer, when it was resolved and reopened, when staff first replied publicly), so a
deadline can always be recomputed and gives the same answer.

- First response and resolution run on the priority's calendars and pause while the ticket
  waits on the customer or sits resolved (reopening resumes the clock where it stopped).
- Escalation: the ticket starts at level 1; level k+1 is reached when the dwell times of levels
  1..k have passed on the priority's clock (pausing with it); after the last level's dwell, one
  "unresolved at the top level" alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

Interval = tuple[datetime, datetime | None]  # end None: still open


class Clock(Protocol):
    def add(self, start: datetime, duration: timedelta, pauses: Sequence[Interval] = ()) -> datetime | None: ...

    def elapsed(self, start: datetime, end: datetime, pauses: Sequence[Interval] = ()) -> timedelta: ...


@dataclass(frozen=True)
class Targets:
    """A priority's terms, with its calendars already turned into clocks."""

    first_response: timedelta
    resolution_target: timedelta
    resolution_limit: timedelta
    clock: Clock  # first response and escalation dwell
    resolution_clock: Clock
    dwells: tuple[timedelta, ...] = ()  # dwell at level 1, 2, ... for this priority


@dataclass(frozen=True)
class History:
    filed_at: datetime
    waiting: tuple[Interval, ...] = ()  # waiting on the customer
    resolved: tuple[Interval, ...] = ()  # resolved (end: reopened)
    first_response_at: datetime | None = None

    @property
    def pauses(self) -> tuple[Interval, ...]:
        return self.waiting + self.resolved

    def paused_at(self, moment: datetime) -> bool:
        return any(start <= moment and (end is None or moment < end) for start, end in self.pauses)


@dataclass(frozen=True)
class Deadlines:
    first_response_due: datetime | None  # None: paused with no end in sight
    resolution_target_at: datetime | None
    resolution_due: datetime | None
    # escalation_dues[k] is when the dwell of level k+1 has passed: the move to level k+2, and for
    # the last level, the top-level alert.
    escalation_dues: tuple[datetime | None, ...] = field(default_factory=tuple)


def deadlines(targets: Targets, history: History) -> Deadlines:
    pauses = history.pauses
    start = history.filed_at
    dues = []
    total = timedelta(0)
    for dwell in targets.dwells:
        total += dwell
        dues.append(targets.clock.add(start, total, pauses))
    return Deadlines(
        first_response_due=targets.clock.add(start, targets.first_response, pauses),
        resolution_target_at=targets.resolution_clock.add(start, targets.resolution_target, pauses),
        resolution_due=targets.resolution_clock.add(start, targets.resolution_limit, pauses),
        escalation_dues=tuple(dues),
    )


@dataclass(frozen=True)
class EscalationStep:
    level: int  # the level the ticket should be at now
    passed: tuple[int, ...]  # levels newly reached since `current`, in order
    top_alert_due: bool  # the last level's dwell has passed
    next_due: datetime | None  # when the next move (or the top alert) is due; None: nothing left


def escalation_at(dues: Sequence[datetime | None], *, current: int, alerted: bool, now: datetime) -> EscalationStep:
    """Where a ticket at level `current` should be at `now`. A sweep that was down for hours
    brings the ticket to its correct level in one step, naming every level it passed."""
    levels = len(dues)
    if levels == 0:
        return EscalationStep(level=current, passed=(), top_alert_due=False, next_due=None)
    reached = 1 + sum(1 for due in dues[: levels - 1] if due is not None and due <= now)
    level = max(current, reached)
    top_due = dues[-1] is not None and dues[-1] <= now and level >= levels
    # The next moment anything happens: the next level's due, or the top alert's.
    next_due = None
    if level < levels:
        next_due = dues[level - 1]
    elif not alerted and not top_due:
        next_due = dues[-1]
    return EscalationStep(
        level=level,
        passed=tuple(range(current + 1, level + 1)),
        top_alert_due=top_due and not alerted,
        next_due=next_due,
    )


class Crossing(StrEnum):
    FIRST_RESPONSE_BREACH = "first_response_breach"
    RESOLUTION_WARNING = "resolution_warning"
    RESOLUTION_BREACH = "resolution_breach"


def crossings_due(
    d: Deadlines, history: History, *, resolved_at: datetime | None, now: datetime
) -> dict[Crossing, datetime]:
    """The crossings that have happened by `now`, with the moment each happened. A clock that was
    met (a response, a resolution) before its deadline never crosses it."""
    out: dict[Crossing, datetime] = {}
    responded = history.first_response_at
    if d.first_response_due and d.first_response_due <= now and (responded is None or responded > d.first_response_due):
        out[Crossing.FIRST_RESPONSE_BREACH] = d.first_response_due
    for moment, crossing in (
        (d.resolution_target_at, Crossing.RESOLUTION_WARNING),
        (d.resolution_due, Crossing.RESOLUTION_BREACH),
    ):
        if moment and moment <= now and (resolved_at is None or resolved_at > moment):
            out[crossing] = moment
    return out


def next_check(d: Deadlines, history: History, *, resolved_at: datetime | None, now: datetime) -> datetime | None:
    """The next moment a crossing could happen (for the indexed sweep column)."""
    candidates = []
    if history.first_response_at is None and d.first_response_due and d.first_response_due > now:
        candidates.append(d.first_response_due)
    if resolved_at is None:
        candidates += [m for m in (d.resolution_target_at, d.resolution_due) if m and m > now]
    return min(candidates, default=None)


class State(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    WARNED = "warned"
    BREACHED = "breached"
    PAUSED = "paused"
    MET = "met"
    EXCLUDED = "excluded"


AT_RISK_SHARE = 0.25  # at risk when less than a quarter of a clock's allowance is left


def state_at(
    targets: Targets, d: Deadlines, history: History, *, resolved_at: datetime | None, excluded: bool, now: datetime
) -> State:
    if excluded:
        return State.EXCLUDED
    crossed = crossings_due(d, history, resolved_at=resolved_at, now=now)
    if Crossing.FIRST_RESPONSE_BREACH in crossed or Crossing.RESOLUTION_BREACH in crossed:
        return State.BREACHED
    if resolved_at is not None:
        return State.MET
    if history.paused_at(now):
        return State.PAUSED
    if Crossing.RESOLUTION_WARNING in crossed:
        return State.WARNED
    left = time_left(targets, d, history, now=now)
    if left is not None:
        remaining, allowance = left
        if remaining < allowance * AT_RISK_SHARE:
            return State.AT_RISK
    return State.ON_TRACK


def time_left(targets: Targets, d: Deadlines, history: History, *, now: datetime) -> tuple[timedelta, timedelta] | None:
    """Working time left to the nearest pending deadline, and that clock's whole allowance."""
    pending = []
    if history.first_response_at is None and d.first_response_due and d.first_response_due > now:
        pending.append((d.first_response_due, targets.clock, targets.first_response))
    if d.resolution_target_at and d.resolution_target_at > now:
        pending.append((d.resolution_target_at, targets.resolution_clock, targets.resolution_target))
    elif d.resolution_due and d.resolution_due > now:
        pending.append((d.resolution_due, targets.resolution_clock, targets.resolution_limit))
    if not pending:
        return None
    due, clock, allowance = min(pending, key=lambda p: p[0])
    return clock.elapsed(now, due, history.pauses), allowance
