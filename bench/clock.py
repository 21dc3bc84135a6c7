"""Benchmark portal.domain.working_time against businesstimedelta (and a naive day loop).

Run from the repo root:  .venv/bin/python bench/clock.py

Calendar: Nairobi business hours, Mon-Fri 08:00-17:00, Kenyan public holidays.
Cases: 100,000 random starts across 2026 (whole minutes), durations 15 min to
48 h.  The peers are timed on a subset (they are orders of magnitude slower)
and their answers are compared with ours on that subset.
"""

import random
import sys
import time as clock
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # repo root, for `contracts`

import businesstimedelta  # noqa: E402
import holidays  # noqa: E402
import pytz  # noqa: E402

from portal.domain.working_time import WorkingTime  # noqa: E402

N = 100_000
N_PEER = 10_000
N_NAIVE = 10_000
TZ = "Africa/Nairobi"
OPEN, CLOSE, DAYS = time(8), time(17), range(5)
UTC = timezone.utc


def make_cases(n, seed=2026):
    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=ZoneInfo(TZ))
    starts = [t0 + timedelta(minutes=rng.randrange(365 * 1440)) for _ in range(n)]
    durations = [timedelta(minutes=rng.randrange(15, 48 * 60 + 1)) for _ in range(n)]
    # elapsed() windows: the same starts, ends 15 min to 14 days later.
    ends = [s + timedelta(minutes=rng.randrange(15, 14 * 1440)) for s in starts]
    return starts, durations, ends


def rate(fn, *columns, repeat=1):
    """Run fn over the zipped columns; return (results, best ops per second)."""
    best = 0.0
    for _ in range(repeat):
        t = clock.perf_counter()
        out = [fn(*args) for args in zip(*columns, strict=True)]
        best = max(best, len(out) / (clock.perf_counter() - t))
    return out, best


class NaiveDayLoop:
    """The obvious implementation: walk local days one at a time (no DST subtlety)."""

    def __init__(self, tz, closed):
        self.tz, self.closed = ZoneInfo(tz), closed

    def _day_window(self, day):
        if day.weekday() not in DAYS or day in self.closed:
            return None
        return (datetime.combine(day, OPEN, self.tz), datetime.combine(day, CLOSE, self.tz))

    def add(self, start, duration):
        left, day = duration, start.astimezone(self.tz).date()
        while True:
            window = self._day_window(day)
            if window:
                lo = max(window[0], start)
                if lo < window[1]:
                    if left <= window[1] - lo:
                        return (lo + left).astimezone(UTC)
                    left -= window[1] - lo
            day += timedelta(days=1)

    def elapsed(self, start, end):
        total, day = timedelta(0), start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            window = self._day_window(day)
            if window:
                lo, hi = max(window[0], start), min(window[1], end)
                if lo < hi:
                    total += hi - lo
            day += timedelta(days=1)
        return total


def main():
    print(f"Calendar: {TZ}, Mon-Fri {OPEN:%H:%M}-{CLOSE:%H:%M}, Kenyan public holidays")
    starts, durations, ends = make_cases(N)

    cal = WorkingTime.business_hours(TZ, open=OPEN, close=CLOSE, days=DAYS, country="KE")
    t = clock.perf_counter()
    cal.elapsed(datetime(2025, 12, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC))  # build the blocks
    print(f"cold start (build ~2 years of spans, expand KE holidays): {(clock.perf_counter() - t) * 1e3:.1f} ms")

    ours_add, ours_add_rate = rate(cal.add, starts, durations, repeat=3)
    ours_el, ours_el_rate = rate(cal.elapsed, starts, ends, repeat=3)
    print(f"\ncontracts.clock   add     {N:>7,} cases: {ours_add_rate:>12,.0f} ops/s   (best of 3)")
    print(f"portal.domain.working_time   elapsed {N:>7,} cases: {ours_el_rate:>12,.0f} ops/s   (best of 3)")

    # ---- businesstimedelta -----------------------------------------------------
    # It needs pytz zones, and each rule has its own tz (HolidayRule defaults to
    # UTC, which would close holidays on the wrong hours), so pass it to both.
    ptz = pytz.timezone(TZ)
    ke = holidays.country_holidays("KE")  # lazy; it tests `date in holidays` day by day
    rules = businesstimedelta.Rules(
        [
            businesstimedelta.WorkDayRule(start_time=OPEN, end_time=CLOSE, working_days=list(DAYS), tz=ptz),
            businesstimedelta.HolidayRule(ke, tz=ptz),
        ]
    )
    sub = slice(0, N_PEER)

    def peer_add(start, duration):
        return start + businesstimedelta.BusinessTimeDelta(rules, timedelta=duration)

    def peer_elapsed(start, end):
        return rules.difference(start, end).timedelta

    peer_add_res, peer_add_rate = rate(peer_add, starts[sub], durations[sub])
    peer_el_res, peer_el_rate = rate(peer_elapsed, starts[sub], ends[sub])
    print(
        f"businesstimedelta add     {N_PEER:>7,} cases: {peer_add_rate:>12,.0f} ops/s"
        f"   -> ours is {ours_add_rate / peer_add_rate:,.0f}x faster"
    )
    print(
        f"businesstimedelta elapsed {N_PEER:>7,} cases: {peer_el_rate:>12,.0f} ops/s"
        f"   -> ours is {ours_el_rate / peer_el_rate:,.0f}x faster"
    )
    print(f"  (businesstimedelta timed on the first {N_PEER:,} of the {N:,} cases: it is slow)")

    bad_add = [i for i, r in enumerate(peer_add_res) if r != ours_add[i]]
    bad_el = [i for i, r in enumerate(peer_el_res) if r != ours_el[i]]
    print(f"  agreement: add {N_PEER - len(bad_add):,}/{N_PEER:,}, elapsed {N_PEER - len(bad_el):,}/{N_PEER:,}")
    for i in bad_add[:5]:
        print(f"    add disagrees: start={starts[i]} d={durations[i]} ours={ours_add[i]} peer={peer_add_res[i]}")
    for i in bad_el[:5]:
        print(f"    elapsed disagrees: {starts[i]}..{ends[i]} ours={ours_el[i]} peer={peer_el_res[i]}")

    # ---- naive day-by-day loop ----------------------------------------------------
    naive = NaiveDayLoop(TZ, frozenset(holidays.country_holidays("KE", years=range(2025, 2029))))
    sub = slice(0, N_NAIVE)
    naive_add_res, naive_add_rate = rate(naive.add, starts[sub], durations[sub])
    naive_el_res, naive_el_rate = rate(naive.elapsed, starts[sub], ends[sub])
    agree = sum(a == b for a, b in zip(naive_add_res, ours_add[:N_NAIVE], strict=True)) + sum(
        a == b for a, b in zip(naive_el_res, ours_el[:N_NAIVE], strict=True)
    )
    print(
        f"\nnaive day loop    add     {N_NAIVE:>7,} cases: {naive_add_rate:>12,.0f} ops/s"
        f"   -> ours is {ours_add_rate / naive_add_rate:,.1f}x faster"
    )
    print(
        f"naive day loop    elapsed {N_NAIVE:>7,} cases: {naive_el_rate:>12,.0f} ops/s"
        f"   -> ours is {ours_el_rate / naive_el_rate:,.1f}x faster"
    )
    print(f"  agreement with ours: {agree:,}/{2 * N_NAIVE:,}")

    # ---- cost vs deadline span --------------------------------------------------
    print("\nadd() cost vs duration (same 20,000 starts; blocks warmed first):")
    few = starts[:20_000]
    cal.add(few[0], timedelta(days=183))
    cal.elapsed(datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
    for label, d in [("4 hours", timedelta(hours=4)), ("6 months (183 days)", timedelta(days=183))]:
        _, ours = rate(cal.add, few, [d] * len(few), repeat=3)
        _, peer = rate(peer_add, few[:100], [d] * 100)
        _, loop = rate(naive.add, few[:1000], [d] * 1000)
        print(
            f"  {label:<20} portal.domain.working_time {1e6 / ours:6.2f} us/op   naive loop {1e6 / loop:8.1f} us/op"
            f"   businesstimedelta {1e6 / peer:9.1f} us/op (100 cases)"
        )


if __name__ == "__main__":
    main()
