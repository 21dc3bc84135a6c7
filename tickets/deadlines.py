"""A ticket's SLA clocks: the one derivation of its deadlines, and the rules that read them.

`ticket_deadlines()` derives every clock column of a ticket (tickets.models.Ticket) from its terms
(tickets.terms.Terms.targets: the priority's allowances and calendars), its history
(filed, waiting on the customer, resolved and reopened, first public reply) and its escalation
requests. The services (on every change), the recompute task (after an edit of a calendar or of
terms) and nothing else call it; the stored columns are then the truth that the sweeps, the pages,
the API and every email read. Reading them never derives a deadline again.

- First response and resolution run on the priority's calendars and pause while the ticket
  waits on the customer or sits resolved (reopening resumes the clock where it stopped).
- Escalation: the ticket starts at level 1; level k+1 is reached when the dwell times of levels
  1..k have passed on the priority's clock (pausing with it); after the last level's dwell, one
  "unresolved at the top level" alert. Every level's moment is stored (`escalation_dues`), so a
  sweep that was down for hours brings a ticket to its level in one step.
- An escalation request's acknowledgement (`ack_due`) runs from the request on its own clock, stops
  while the ticket is resolved (a reopen resumes it where it stopped) and has no deadline at all
  while the ticket is excluded: the sweep reads the request's stored columns and nothing else.
- At risk: from the moment only a share of the nearest pending clock's allowance is left (the
  vendor-wide setting SLA_AT_RISK_SHARE, per priority), stored as `at_risk_at`; `sla_state()` and
  the query filters at the end say the same rule for a page's tickets and for a whole table.
- Warnings before a breach: each clock that breaches (first response, the resolution limit, an
  escalation request's acknowledgement) warns once when the same share of its allowance is left
  (`warn_moments`, `ack_warn`; for a target/limit range, a share of the limit). They are crossings
  of kind "at_risk", recorded and swept like the others, and only while the deadline is ahead; one
  stands while it is about the clock's deadline (`standing`): a priority change that moves the
  deadline gives the new one its warning.

Everything above the query filters is pure Python: Django only builds those filters (Q, F).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol

from django.db.models import F, Q

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
    # An escalation request's acknowledgement (Klart: 4 working hours on its own calendar); None:
    # the priority's first-response time on its clock.
    ack_time: timedelta | None = None
    ack_clock: Clock | None = None


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


def at_risk_moment(targets: Targets, history: History, *, share: float) -> datetime | None:
    """When only `share` of a pending clock's allowance is left: the first response's while nobody
    has replied, and the resolution target's. Passing the target warns (and a missed first
    response breaches), which outranks being at risk, so the limit's share never shows."""
    if not 0 <= share <= 1:
        raise ValueError(f"the at-risk share is a fraction of the allowance, got {share!r}")
    pauses, start = history.pauses, history.filed_at
    moments = [targets.resolution_clock.add(start, targets.resolution_target * (1 - share), pauses)]
    if history.first_response_at is None:
        moments.append(targets.clock.add(start, targets.first_response * (1 - share), pauses))
    return min(filter(None, moments), default=None)


def warn_moments(targets: Targets, history: History, *, share: float) -> tuple[datetime | None, datetime | None]:
    """When only `share` of the first response's and of the resolution limit's allowance is left:
    the moments each clock warns before it breaches (a range's target has its own warning)."""
    pauses, start = history.pauses, history.filed_at
    return (
        targets.clock.add(start, targets.first_response * (1 - share), pauses),
        targets.resolution_clock.add(start, targets.resolution_limit * (1 - share), pauses),
    )


def ack_due(
    targets: Targets, requested_at: datetime, *, left: float = 0.0, pauses: Sequence[Interval] = ()
) -> datetime | None:
    """When staff must acknowledge an escalation request made at `requested_at` (with `left`, when
    only that share of the acknowledgement's allowance is left). `pauses`: the ticket's resolved
    spans, which stop the clock (None while resolved: no deadline; a reopen resumes it)."""
    if targets.ack_time and targets.ack_clock is not None:
        return targets.ack_clock.add(requested_at, targets.ack_time * (1 - left), pauses)
    return targets.clock.add(requested_at, targets.first_response * (1 - left), pauses)


def clock_of(targets: Targets, clock: str) -> Clock:
    """The calendar a clock ("first_response", "resolution", "ack:<key>") runs on: what its working
    time left is counted on."""
    if clock == "resolution":
        return targets.resolution_clock
    if clock.startswith("ack:") and targets.ack_time and targets.ack_clock is not None:
        return targets.ack_clock
    return targets.clock


# --- The stored columns ------------------------------------------------------------------------
class Stored(Protocol):
    """What the rules below read of a ticket: its stored columns (a tickets.models.Ticket)."""

    first_response_due: datetime | None
    first_response_at: datetime | None
    resolution_target_at: datetime | None
    resolution_due: datetime | None
    resolved_at: datetime | None  # set while resolved or closed, cleared on reopen
    at_risk_at: datetime | None
    first_response_warn_at: datetime | None
    resolution_warn_at: datetime | None
    paused: bool
    breached: bool
    warned: bool
    excluded_cause: str


@dataclass(frozen=True)
class Columns:
    """Every clock column ticket_deadlines derives, by its name on tickets.models.Ticket."""

    first_response_due: datetime | None
    resolution_target_at: datetime | None
    resolution_due: datetime | None
    at_risk_at: datetime | None
    first_response_warn_at: datetime | None
    resolution_warn_at: datetime | None
    paused: bool
    escalation_dues: tuple[datetime | None, ...]
    next_escalation_due: datetime | None
    next_sla_check_at: datetime | None
    next_deadline: datetime | None
    ack_dues: dict  # pending escalation request's key -> when it must be acknowledged
    ack_warns: dict  # the same key -> when only the at-risk share of its allowance is left

    FIELDS = (
        "first_response_due", "resolution_target_at", "resolution_due", "at_risk_at", "first_response_warn_at",
        "resolution_warn_at", "paused", "escalation_dues", "next_escalation_due", "next_sla_check_at", "next_deadline",
    )  # fmt: skip


@dataclass(frozen=True)
class Moments:
    """Stored-column-shaped view of fresh deadlines (for the rules that read stored columns)."""

    first_response_due: datetime | None
    first_response_at: datetime | None
    resolution_target_at: datetime | None
    resolution_due: datetime | None
    resolved_at: datetime | None
    first_response_warn_at: datetime | None = None
    resolution_warn_at: datetime | None = None


def ticket_deadlines(
    targets: Targets,
    history: History,
    *,
    now: datetime,
    at_risk_share: float,
    escalation_level: int,
    top_alert_sent: bool,
    resolved_at: datetime | None,
    excluded: bool,
    pending_requests: Iterable[tuple[object, datetime]] = (),
    recorded: Iterable[Recorded] = (),
    priority: str = "",
) -> Columns:
    """Every clock column of a ticket. `resolved_at`: the latest resolution while it is resolved or
    closed, else None; `pending_requests`: (key, requested_at) of its unacknowledged escalation
    requests (their acknowledgement's clock, `ack:<key>`, is swept with the others); `recorded`:
    the crossings already recorded, which stand whatever this derivation says (an at-risk warning
    while it is about the deadline the clock has: standing(), with the ticket's `priority`)."""
    d = deadlines(targets, history)
    warn_first, warn_resolution = warn_moments(targets, history, share=at_risk_share)
    active = resolved_at is None and not excluded
    # A pending escalation request's acknowledgement runs only while the ticket counts and is active:
    # none while it is excluded; resolving stops it like the resolution clock, and a reopen resumes
    # it where it stopped (a moment due before the resolution stands: a late sweep still records it).
    pending_requests, stopped = list(pending_requests), history.resolved
    ack_dues = {key: None if excluded else ack_due(targets, at, pauses=stopped) for key, at in pending_requests}
    ack_warns = {
        key: None if excluded else ack_due(targets, at, left=at_risk_share, pauses=stopped)
        for key, at in pending_requests
    }
    deadline_of = {"first_response": d.first_response_due, "resolution": d.resolution_due}
    deadline_of.update((f"ack:{key}", due) for key, due in ack_dues.items())
    recorded = standing(recorded, priority=priority, deadline_of=deadline_of.get)
    moments = Moments(
        d.first_response_due, history.first_response_at, d.resolution_target_at, d.resolution_due, resolved_at,
        warn_first, warn_resolution,
    )  # fmt: skip
    # The sweep of crossings looks at the ticket again at the next moment one could happen, or at
    # once for one that has happened and is not recorded (a deadline an edit moved into the past).
    checks = [] if excluded else [m for c, m in pending_moments(moments, now=now) if CROSSING_ROWS[c] not in recorded]
    if not excluded:
        checks += [m for c, m in crossings_due(moments, now=now).items() if CROSSING_ROWS[c] not in recorded]
    checks += [m for key, m in ack_dues.items() if m is not None and (f"ack:{key}", "breach") not in recorded]
    checks += [
        m for key, m in ack_warns.items()
        if ack_at_risk(m, ack_dues[key], now=now) is not None and (f"ack:{key}", "at_risk") not in recorded
    ]  # fmt: skip
    unmet = [d.resolution_target_at, d.resolution_due]
    if history.first_response_at is None:
        unmet.append(d.first_response_due)
    return Columns(
        first_response_due=d.first_response_due,
        resolution_target_at=d.resolution_target_at,
        resolution_due=d.resolution_due,
        at_risk_at=at_risk_moment(targets, history, share=at_risk_share) if active else None,
        first_response_warn_at=warn_first,
        resolution_warn_at=warn_resolution,
        paused=history.paused_at(now),
        escalation_dues=d.escalation_dues,
        # Only the escalation sweep moves the level; this says when its next move is due (a past
        # moment is fine: the sweep takes it at once). Excluded: none; resolved or closed: only a move
        # due before the resolution, which a late sweep still makes.
        next_escalation_due=_next_escalation(d.escalation_dues, escalation_level, top_alert_sent, resolved_at)
        if not excluded
        else None,
        next_sla_check_at=min(checks, default=None),
        # The nearest unmet deadline, past or future: the staff queue sorts by it (most overdue first).
        next_deadline=min(filter(None, unmet), default=None) if active else None,
        ack_dues=ack_dues,
        ack_warns=ack_warns,
    )


class Recorded(NamedTuple):
    """A recorded crossing (an SLACrossing row): its clock and kind, the ticket's priority when it
    was recorded and the deadline it named ("" and None for rows from before they were kept)."""

    clock: str
    kind: str
    priority: str = ""
    deadline: datetime | None = None


def standing(
    recorded: Iterable[Recorded], *, priority: str, deadline_of: Callable[[str], datetime | None]
) -> set[tuple[str, str]]:
    """The (clock, kind) of the recorded crossings that stand now. A breach and a target's warning
    stand for the ticket's life. An at-risk warning stands while it is about the deadline its clock
    has now (`deadline_of(clock)`): while the ticket has the priority it was given under (a pause, a
    reopening or an edited calendar moves the deadline, and the allowance was warned of already), or
    while its clock's deadline is the one it named. A priority change that moved the deadline gives
    the new deadline its own warning."""
    return {
        (r.clock, r.kind) for r in recorded
        if r.kind != "at_risk" or r.priority == priority
        or (r.deadline is not None and r.deadline == deadline_of(r.clock))
    }  # fmt: skip


def ack_at_risk(warn: datetime | None, due: datetime | None, *, now: datetime) -> datetime | None:
    """The moment an acknowledgement's warning is (or will be) due, while its deadline is ahead;
    None once the deadline has come (the breach says it then) or without one."""
    if warn is None or due is None or due <= now:
        return None
    return warn


def _next_escalation(dues, level: int, top_alert_sent: bool, resolved_at: datetime | None) -> datetime | None:
    """next_escalation, of an unresolved ticket; of a resolved one, only a move due before its
    resolution (the sweep was late: it still moves it, escalation_at), else none."""
    due = next_escalation(dues, level, top_alert_sent)
    return due if resolved_at is None or (due is not None and due <= resolved_at) else None


def next_escalation(dues: Sequence[datetime | None], level: int, top_alert_sent: bool) -> datetime | None:
    """When a ticket at `level` next moves (or, at the top, is alerted about)."""
    if not dues:
        return None
    if level < len(dues):
        return dues[level - 1]
    return None if top_alert_sent else dues[-1]


def dues_to_json(dues: Sequence[datetime | None]) -> list[str | None]:
    """The escalation dues as the JSON column holds them: ISO moments, exact to the microsecond."""
    return [None if d is None else d.isoformat() for d in dues]


def dues_from_json(stored: Sequence[str | None]) -> tuple[datetime | None, ...]:
    return tuple(None if d is None else datetime.fromisoformat(d) for d in stored or ())


@dataclass(frozen=True)
class EscalationStep:
    level: int  # the level the ticket should be at now
    passed: tuple[int, ...]  # levels newly reached since `current`, in order
    top_alert_due: bool  # the last level's dwell has passed
    next_due: datetime | None  # when the next move (or the top alert) is due; None: nothing left


def escalation_at(
    dues: Sequence[datetime | None], *, current: int, alerted: bool, now: datetime, resolved_at: datetime | None = None
) -> EscalationStep:
    """Where a ticket at level `current` should be at `now`. A sweep that was down for hours
    brings the ticket to its correct level in one step, naming every level it passed. A ticket
    resolved (at `resolved_at`) moves only for the dues before that, and never again."""
    if resolved_at is not None:
        now = min(now, resolved_at)
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
    if resolved_at is not None:
        next_due = None
    return EscalationStep(
        level=level,
        passed=tuple(range(current + 1, level + 1)),
        top_alert_due=top_due and not alerted,
        next_due=next_due,
    )


class Crossing(StrEnum):
    FIRST_RESPONSE_AT_RISK = "first_response_at_risk"
    FIRST_RESPONSE_BREACH = "first_response_breach"
    RESOLUTION_WARNING = "resolution_warning"
    RESOLUTION_AT_RISK = "resolution_at_risk"
    RESOLUTION_BREACH = "resolution_breach"


# The (clock, kind) of the SLACrossing row each crossing records.
CROSSING_ROWS = {
    Crossing.FIRST_RESPONSE_AT_RISK: ("first_response", "at_risk"),
    Crossing.FIRST_RESPONSE_BREACH: ("first_response", "breach"),
    Crossing.RESOLUTION_WARNING: ("resolution", "warning"),
    Crossing.RESOLUTION_AT_RISK: ("resolution", "at_risk"),
    Crossing.RESOLUTION_BREACH: ("resolution", "breach"),
}


def clock_words(clock: str, *, to_customer: bool = False) -> str:
    """An SLACrossing's clock as a person reads it, in the middle of a sentence: "first response",
    "resolution", "acknowledgement of the customer's escalation request" (to the customer: "of your
    escalation request")."""
    if clock.startswith("ack:"):
        whose = "your" if to_customer else "the customer's"
        return f"acknowledgement of {whose} escalation request"
    return {"first_response": "first response", "resolution": "resolution"}.get(clock, clock)


# The warnings before a breach: each is due only while its clock's deadline is still ahead.
AT_RISK = {Crossing.FIRST_RESPONSE_AT_RISK: "first_response_due", Crossing.RESOLUTION_AT_RISK: "resolution_due"}


def _clocks(t) -> tuple:
    return (
        (Crossing.FIRST_RESPONSE_AT_RISK, t.first_response_warn_at, t.first_response_at),
        (Crossing.FIRST_RESPONSE_BREACH, t.first_response_due, t.first_response_at),
        (Crossing.RESOLUTION_WARNING, t.resolution_target_at, t.resolved_at),
        (Crossing.RESOLUTION_AT_RISK, t.resolution_warn_at, t.resolved_at),
        (Crossing.RESOLUTION_BREACH, t.resolution_due, t.resolved_at),
    )


def _open(t, c: Crossing, now: datetime) -> bool:
    """A warning before a breach stands only while its clock's deadline is ahead (paused with no
    end in sight: no deadline, no warning)."""
    if c not in AT_RISK:
        return True
    deadline = getattr(t, AT_RISK[c])
    return deadline is not None and deadline > now


def crossings_due(t: Stored, *, now: datetime) -> dict[Crossing, datetime]:
    """The crossings that have happened by `now`, with the moment each happened. A clock that was
    met (a response, a resolution) before its deadline never crosses it; a warning before a breach
    is due only while its clock runs and its deadline is ahead."""
    return {
        c: due for c, due, done in _clocks(t)
        if due is not None and due <= now and _open(t, c, now)
        and (done is None or (done > due and c not in AT_RISK))
    }  # fmt: skip


def pending_moments(t: Stored, *, now: datetime) -> list[tuple[Crossing, datetime]]:
    """The crossings still ahead of `now`, each with its moment (for the indexed sweep column)."""
    return [
        (c, due) for c, due, done in _clocks(t) if done is None and due is not None and due > now and _open(t, c, now)
    ]


def next_check(t: Stored, *, now: datetime) -> datetime | None:
    """The next moment a crossing could happen."""
    return min((m for _, m in pending_moments(t, now=now)), default=None)


def nearest_pending(t: Stored, *, now: datetime) -> tuple[datetime, str] | None:
    """The nearest deadline still ahead and its clock ("first_response" or "resolution"): the one
    whose working time left a page shows. The resolution limit counts once the target has passed."""
    if t.resolved_at is not None:
        return None
    pending = []
    if t.first_response_at is None and t.first_response_due and t.first_response_due > now:
        pending.append((t.first_response_due, "first_response"))
    if t.resolution_target_at and t.resolution_target_at > now:
        pending.append((t.resolution_target_at, "resolution"))
    elif t.resolution_due and t.resolution_due > now:
        pending.append((t.resolution_due, "resolution"))
    return min(pending, default=None)


class State(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    WARNED = "warned"
    BREACHED = "breached"
    PAUSED = "paused"
    MET = "met"
    EXCLUDED = "excluded"


def sla_state(t: Stored, *, now: datetime) -> State:
    """A ticket's SLA state at `now`, from its stored columns. A breach or warning the sweep
    recorded (`breached`, `warned`; an acknowledgement's breach too) stands even where a later
    recompute moved the deadline."""
    if t.excluded_cause:
        return State.EXCLUDED
    crossed = crossings_due(t, now=now)
    if t.breached or Crossing.FIRST_RESPONSE_BREACH in crossed or Crossing.RESOLUTION_BREACH in crossed:
        return State.BREACHED
    if t.resolved_at is not None:
        return State.MET
    if t.paused:
        return State.PAUSED
    if t.warned or Crossing.RESOLUTION_WARNING in crossed:
        return State.WARNED
    if t.at_risk_at is not None and t.at_risk_at <= now:
        return State.AT_RISK
    return State.ON_TRACK


# --- The same rules as query filters -------------------------------------------
# sla_state() for a page's tickets; these for a table (the staff dashboard, the customer's filter).
# tests/test_deadlines.py checks that both agree on tickets in every state.
def breached_q(now: datetime) -> Q:
    """Tickets that sla_state() calls breached."""
    return Q(excluded_cause="") & (
        Q(breached=True)
        | Q(first_response_due__lte=now, first_response_at__isnull=True)
        | Q(first_response_due__lte=now, first_response_at__gt=F("first_response_due"))
        | Q(resolution_due__lte=now, resolved_at__isnull=True)
        | Q(resolution_due__lte=now, resolved_at__gt=F("resolution_due"))
    )


def _not_breached(now: datetime) -> Q:
    return (
        Q(excluded_cause="", breached=False)
        & (Q(first_response_due__isnull=True) | Q(first_response_due__gt=now) | Q(first_response_at__lte=F("first_response_due")))
        & (Q(resolution_due__isnull=True) | Q(resolution_due__gt=now))
    )  # fmt: skip


def warned_q(now: datetime) -> Q:
    """Tickets that sla_state() calls warned (target passed)."""
    return (
        _not_breached(now)
        & Q(resolved_at__isnull=True, paused=False)
        & (Q(warned=True) | Q(resolution_target_at__lte=now))
    )


def at_risk_q(now: datetime) -> Q:
    """Tickets that sla_state() calls at risk."""
    return (
        _not_breached(now)
        & Q(resolved_at__isnull=True, paused=False, warned=False, at_risk_at__lte=now)
        & (Q(resolution_target_at__isnull=True) | Q(resolution_target_at__gt=now))
    )
