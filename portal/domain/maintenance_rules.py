"""Which part of a maintenance window keeps a contract's rules, and so is excluded from uptime.
Pure Python, no Django.

A downtime window is excluded only where it keeps the rules (PRODUCT.md):
- its notice went out at least `notice` (48 h) before its start; a window corrected later (it ended
  early, ran over, gained a service) keeps the minutes an earlier revision's notice announced in
  time (judged against the start that notice announced) as long as no later notice took them back:
  only the minutes a correction adds are judged on its own notice;
- it lies inside the contract's off-peak hours, local time, which may cross midnight (22:00-06:00);
- it fits in the annual cap (12 h of scheduled downtime per calendar year in the contract's
  timezone), windows taken in order of start, and only rule-keeping time using up the cap, each
  minute once however many windows (on several services) keep it.
Every other moment of the window is ordinary downtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from portal.domain.intervals import intersect, merge, subtract

Interval = tuple[datetime, datetime]
ZERO = timedelta(0)


@dataclass(frozen=True)
class Rules:
    tz: str
    notice: timedelta
    offpeak_start: time
    offpeak_end: time
    annual_cap: timedelta


@dataclass(frozen=True)
class Notice:
    """A notice of an earlier revision of a window: the downtime it announced and when it went out.
    start == end: it announced none (the revision no longer took the contract's services down)."""

    start: datetime
    end: datetime
    notified_at: datetime


@dataclass(frozen=True)
class Window:
    key: object  # the caller's id for it
    start: datetime
    end: datetime
    notified_at: datetime | None  # when its (current) notice went out; None: never
    earlier: tuple[Notice, ...] = ()  # notices of its earlier revisions (to this contract), in order


@dataclass(frozen=True)
class Judgement:
    key: object
    kept: tuple[Interval, ...]  # excluded from uptime
    broken: tuple[Interval, ...]  # counted as ordinary downtime
    notice_ok: bool  # all of it was announced in time
    offpeak: timedelta  # how much of the window lies in off-peak hours
    capped: timedelta  # off-peak, noticed time refused because the year's cap was used up
    noticed: timedelta = ZERO  # how much of it was announced in time

    @property
    def partly_noticed(self) -> bool:
        return not self.notice_ok and self.noticed > ZERO

    @property
    def kept_duration(self) -> timedelta:
        return sum((e - s for s, e in self.kept), ZERO)

    @property
    def broken_duration(self) -> timedelta:
        return sum((e - s for s, e in self.broken), ZERO)

    @property
    def keeps_rules(self) -> bool:
        return not self.broken


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("maintenance times must be timezone-aware")
    return moment.astimezone(UTC)


def _local_to_utc(day: date, at: time, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """The instant a bound of the off-peak hours falls on, so that the hours hold the instants whose
    wall time is in them: a time the clocks pass twice is the first pass for a start, the second for
    an end; a time they skip is the moment they jump (before it the wall reads earlier, after it later)."""
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return second if end else first
    # Skipped: fold=1 reads it with the offset after the jump, an instant before it (`second`), and
    # fold=0 with the one before, an instant after it (`first`); the jump is between, on a second.
    before, after = int(second.timestamp()), int(first.timestamp())
    offset = second.astimezone(tz).utcoffset()
    while after - before > 1:
        mid = (before + after) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == offset:
            before = mid
        else:
            after = mid
    return datetime.fromtimestamp(after, UTC)


def offpeak_intervals(rules: Rules, start: datetime, end: datetime) -> list[Interval]:
    """Off-peak stretches (UTC) that touch [start, end)."""
    tz = ZoneInfo(rules.tz)
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    out: list[Interval] = []
    day = first
    while day <= last:
        a = _local_to_utc(day, rules.offpeak_start, tz)
        if rules.offpeak_start < rules.offpeak_end:
            b = _local_to_utc(day, rules.offpeak_end, tz, end=True)
        else:  # crosses midnight: from the start today to the end tomorrow
            b = _local_to_utc(day + timedelta(days=1), rules.offpeak_end, tz, end=True)
        if a < b:
            out.append((a, b))
        day += timedelta(days=1)
    return merge(out)


def _year_start(year: int, tz: ZoneInfo) -> datetime:
    return datetime(year, 1, 1, tzinfo=tz).astimezone(UTC)


def _split_by_year(intervals: Sequence[Interval], tz: ZoneInfo) -> list[tuple[int, Interval]]:
    out = []
    for s, e in intervals:
        while s < e:
            year = s.astimezone(tz).year
            boundary = _year_start(year + 1, tz)
            piece_end = min(e, boundary)
            out.append((year, (s, piece_end)))
            s = piece_end
    return out


def _in_time(notified_at: datetime | None, start: datetime, rules: Rules) -> bool:
    return notified_at is not None and _utc(notified_at) <= _utc(start) - rules.notice


def noticed_intervals(w: Window, rules: Rules) -> list[Interval]:
    """The part of a window announced in time (UTC): a moment that a notice announced `notice` before
    the start it announced, and every later notice (the window's own last) announced too. A notice
    that moved a moment out of the window took it back: announced again later, it is judged on the
    later notice. So a window that ended early keeps its announced minutes, and an extension or a
    service added inside the notice hours is judged on its own notice."""
    noticed: list[Interval] = []
    told = [*w.earlier, Notice(w.start, w.end, w.notified_at)]
    for n in told:
        announced = [(_utc(n.start), _utc(n.end))] if n.start < n.end else []
        in_time = announced if _in_time(n.notified_at, n.start, rules) else []
        noticed = merge([*intersect(noticed, announced), *in_time])
    return noticed


def judge(windows: Sequence[Window], rules: Rules) -> dict[object, Judgement]:
    """Judge every downtime window of one contract. Windows are taken in order of start; the
    cap counts only what earlier windows kept, year by year in the contract's timezone."""
    tz = ZoneInfo(rules.tz)
    used: dict[int, timedelta] = {}
    kept_so_far: list[Interval] = []  # every window's kept minutes, merged: the contract's excluded time
    out: dict[object, Judgement] = {}
    for w in sorted(windows, key=lambda w: (_utc(w.start), str(w.key))):
        start, end = _utc(w.start), _utc(w.end)
        if end <= start:
            out[w.key] = Judgement(w.key, (), (), False, ZERO, ZERO)
            continue
        noticed = noticed_intervals(w, rules)
        noticed_total = sum((e - s for s, e in noticed), ZERO)
        offpeak = intersect([(start, end)], offpeak_intervals(rules, start, end))
        offpeak_total = sum((e - s for s, e in offpeak), ZERO)
        keeping = intersect(noticed, offpeak)
        # Minutes an earlier window already keeps (simultaneous windows on two services) are excluded
        # once and use the cap once: the contract's merged scheduled downtime is what the cap counts.
        kept: list[Interval] = intersect(keeping, kept_so_far)
        capped = ZERO
        for year, (s, e) in _split_by_year(subtract(keeping, kept_so_far), tz):
            room = rules.annual_cap - used.get(year, ZERO)
            take = min(e - s, max(room, ZERO))
            if take > ZERO:
                kept.append((s, s + take))
                used[year] = used.get(year, ZERO) + take
            capped += (e - s) - take
        kept = merge(kept)
        kept_so_far = merge([*kept_so_far, *kept])
        out[w.key] = Judgement(
            key=w.key,
            kept=tuple(kept),
            broken=tuple(subtract([(start, end)], kept)),
            notice_ok=noticed_total == end - start,
            offpeak=offpeak_total,
            capped=capped,
            noticed=noticed_total,
        )
    return out
