"""portal.domain.working_time: table tests and property tests.

No Django here: runs with ``pytest -p no:django``.  The brute-force
differential tests live in test_clock_reference.py.
"""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.working_time import WorkingTime

UTC = timezone.utc
NAIROBI = ZoneInfo("Africa/Nairobi")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)
M = timedelta(minutes=1)


def nbo(*args):
    return datetime(*args, tzinfo=NAIROBI)


def weekdays(*intervals, days=range(5)):
    return {wd: list(intervals) for wd in days}


# Kaluari: Mon-Fri 08:00-17:00 Nairobi, Kenyan public holidays.
KALUARI = WorkingTime.for_country("Africa/Nairobi", weekdays((time(8), time(17))), "KE")
KALUARI_24X7 = WorkingTime.always_open(tz="Africa/Nairobi")
# Klart: Mon-Fri 09:00-17:00 Berlin, public holidays of Berlin.
KLART = WorkingTime.business_hours("Europe/Berlin", open=time(9), close=time(17), country="DE", subdiv="BE")


# ---- table tests -----------------------------------------------------------------


def test_kenyan_holidays_used_by_the_tables():
    ke = holidays.country_holidays("KE", years=2026)
    assert {date(2026, 10, 20), date(2026, 12, 12), date(2026, 12, 25), date(2026, 12, 26)} <= set(ke)
    assert date(2026, 12, 14) not in ke  # Jamhuri Day falls on a Saturday: no Monday off


@pytest.mark.parametrize(
    "cal, start, duration, due",
    [
        # P3 filed Friday 16:00: 1 h on Friday, Saturday is Jamhuri Day (and a weekend) anyway.
        (KALUARI, nbo(2026, 12, 11, 16), 4 * H, nbo(2026, 12, 14, 11)),
        # P1, 24x7: due in 15 minutes, escalation levels 1 h apart.
        (KALUARI_24X7, nbo(2026, 12, 11, 16), 15 * M, nbo(2026, 12, 11, 16, 15)),
        (KALUARI_24X7, nbo(2026, 12, 11, 16), 75 * M, nbo(2026, 12, 11, 17, 15)),
        (KALUARI_24X7, nbo(2026, 12, 11, 16), 135 * M, nbo(2026, 12, 11, 18, 15)),
        # Mashujaa Day, Tuesday 2026-10-20: Monday 1 h, Tuesday closed, Wednesday 3 h.
        (KALUARI, nbo(2026, 10, 19, 16), 4 * H, nbo(2026, 10, 21, 11)),
        # Christmas (Friday) and Boxing Day (Saturday): Thursday 2 h, then Monday 28th.
        (KALUARI, nbo(2026, 12, 24, 15), 4 * H, nbo(2026, 12, 28, 10)),
        # Filed outside hours: the clock starts at the next opening.
        (KALUARI, nbo(2026, 12, 13, 22), 4 * H, nbo(2026, 12, 14, 12)),
        # Ending exactly at closing time returns the closing moment, not the next opening.
        (KALUARI, nbo(2026, 12, 14, 13), 4 * H, nbo(2026, 12, 14, 17)),
        (KALUARI, nbo(2026, 12, 14, 17), 0 * H, nbo(2026, 12, 14, 17)),
        # Klart: 4 working hours, Mon-Fri; German Unity Day is a Saturday in 2026,
        # Christmas Friday + Saturday 2026 -> Thursday 16:00 + 1 h, then Monday.
        (KLART, datetime(2026, 12, 24, 16, tzinfo=BERLIN), 4 * H, datetime(2026, 12, 28, 12, tzinfo=BERLIN)),
        # Easter: Good Friday 2026-04-03 and Easter Monday 2026-04-06 closed.
        (KLART, datetime(2026, 4, 2, 15, tzinfo=BERLIN), 4 * H, datetime(2026, 4, 7, 11, tzinfo=BERLIN)),
        # Across spring-forward (Sunday 2026-03-29): no effect on wall-clock business hours.
        (KLART, datetime(2026, 3, 27, 16, tzinfo=BERLIN), 4 * H, datetime(2026, 3, 30, 12, tzinfo=BERLIN)),
    ],
)
def test_deadline_table(cal, start, duration, due):
    got = cal.add(start, duration)
    assert got == due
    assert got.tzinfo is UTC
    assert cal.elapsed(start, got) == duration


def test_spring_forward_interval_holds_nothing():
    cal = WorkingTime("Europe/Berlin", {6: [(time(2), time(3))]})
    day = (datetime(2026, 3, 29, tzinfo=BERLIN), datetime(2026, 3, 30, tzinfo=BERLIN))
    assert cal.elapsed(*day) == timedelta(0)
    ny = WorkingTime("America/New_York", {6: [(time(2), time(3))]})
    assert ny.elapsed(datetime(2026, 3, 8, tzinfo=NEW_YORK), datetime(2026, 3, 9, tzinfo=NEW_YORK)) == timedelta(0)
    # ...while an ordinary Sunday holds one hour, and 01:30-03:30 on the day holds 1 h.
    assert cal.elapsed(datetime(2026, 3, 22, tzinfo=BERLIN), datetime(2026, 3, 23, tzinfo=BERLIN)) == H
    wide = WorkingTime("Europe/Berlin", {6: [(time(1, 30), time(3, 30))]})
    assert wide.elapsed(*day) == H


def test_fall_back_interval_holds_two_hours():
    ny = WorkingTime("America/New_York", {6: [(time(1), time(2))]})
    day = (datetime(2026, 11, 1, tzinfo=NEW_YORK), datetime(2026, 11, 2, tzinfo=NEW_YORK))
    assert ny.elapsed(*day) == 2 * H
    # 00:00-01:30: first pass 00:00-01:30 plus second pass 01:00-01:30.
    assert WorkingTime("America/New_York", {6: [(time(0), time(1, 30))]}).elapsed(*day) == 2 * H
    berlin = WorkingTime("Europe/Berlin", {6: [(time(2), time(3))]})
    assert berlin.elapsed(datetime(2026, 10, 25, tzinfo=BERLIN), datetime(2026, 10, 26, tzinfo=BERLIN)) == 2 * H
    # The deadline lands in the second pass: 90 minutes from 01:00 EDT is 01:30 EST.
    due = ny.add(datetime(2026, 11, 1, 1, tzinfo=NEW_YORK), 90 * M)
    assert due == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert due.astimezone(NEW_YORK).fold == 1


def test_24x7_across_dst_counts_real_time():
    cal = WorkingTime.always_open("America/New_York")
    start = datetime(2026, 11, 1, tzinfo=NEW_YORK)
    assert cal.elapsed(start, datetime(2026, 11, 2, tzinfo=NEW_YORK)) == 25 * H
    assert cal.add(start, 24 * H) == datetime(2026, 11, 1, 23, tzinfo=NEW_YORK)


def test_naive_datetime_raises():
    with pytest.raises(ValueError, match="timezone-aware"):
        KALUARI.add(datetime(2026, 12, 11, 16), H)
    with pytest.raises(ValueError, match="timezone-aware"):
        KALUARI.elapsed(nbo(2026, 12, 11, 16), datetime(2026, 12, 12))
    with pytest.raises(ValueError, match="timezone-aware"):
        KALUARI.is_open(datetime(2026, 12, 11, 16))
    with pytest.raises(ValueError, match="timezone-aware"):
        KALUARI.add(nbo(2026, 12, 11, 16), H, pauses=[(datetime(2026, 12, 11), None)])


def test_bad_arguments():
    with pytest.raises(ValueError, match="negative"):
        KALUARI.add(nbo(2026, 12, 11, 16), -M)
    with pytest.raises(ValueError, match="before start"):
        KALUARI.elapsed(nbo(2026, 12, 11, 16), nbo(2026, 12, 11, 15))
    with pytest.raises(ValueError, match="before it starts"):
        KALUARI.elapsed(nbo(2026, 12, 11), nbo(2026, 12, 12), pauses=[(nbo(2026, 12, 11, 9), nbo(2026, 12, 11, 8))])
    with pytest.raises(ValueError, match="overnight"):
        WorkingTime("UTC", {0: [(time(22), time(6))]})
    with pytest.raises(ValueError, match="weekday"):
        WorkingTime("UTC", {7: [(time(8), time(9))]})
    with pytest.raises(TypeError):
        KALUARI.add(nbo(2026, 12, 11, 16), 3600)


def test_week_without_open_time_raises_instead_of_looping():
    cal = WorkingTime("UTC", {})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="no open time"):
        cal.add(start, M)
    with pytest.raises(ValueError, match="no open time"):
        cal.next_open(start)
    assert cal.add(start, timedelta(0)) == start
    assert cal.elapsed(start, start + 1000 * H) == timedelta(0)
    assert not cal.is_open(start)


def test_years_of_holidays_raise_instead_of_looping():
    closed = frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(365 * 6))
    cal = WorkingTime("UTC", weekdays((time(8), time(17))), closed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="no open time"):
        cal.add(start, M)
    with pytest.raises(ValueError, match="no open time"):
        cal.next_open(start)
    # A single closed year is fine.
    one_year = frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(365))
    short = WorkingTime("UTC", weekdays((time(8), time(17))), one_year)
    assert short.add(start, M) == datetime(2027, 1, 1, 8, 1, tzinfo=UTC)  # Friday


def test_six_month_duration():
    start = nbo(2026, 1, 5, 8)
    due = KALUARI.add(start, 1000 * H)  # ~111 working days
    assert KALUARI.elapsed(start, due) == 1000 * H
    assert due.astimezone(NAIROBI).date() > date(2026, 6, 1)
    assert KALUARI_24X7.add(start, timedelta(days=182)) == start + timedelta(days=182)
    # Spanning a year boundary and several cache blocks.
    assert KALUARI.elapsed(nbo(2025, 1, 1), nbo(2029, 1, 1)) == KALUARI.elapsed(
        nbo(2025, 1, 1), nbo(2027, 1, 1)
    ) + KALUARI.elapsed(nbo(2027, 1, 1), nbo(2029, 1, 1))


def test_pauses_overlapping_each_other_and_closed_hours():
    start = nbo(2026, 12, 14, 8)  # Monday
    pauses = [
        (nbo(2026, 12, 14, 10), nbo(2026, 12, 14, 12)),
        (nbo(2026, 12, 14, 11), nbo(2026, 12, 14, 13)),  # overlaps the first: 10-13 paused
        (nbo(2026, 12, 14, 16), nbo(2026, 12, 15, 9)),  # runs through the night
    ]
    # Mon 8-10 (2 h), 13-16 (3 h), Tue 9-17 (8 h).
    assert KALUARI.elapsed(start, nbo(2026, 12, 16, 8), pauses) == 13 * H
    assert KALUARI.add(start, 4 * H, pauses) == nbo(2026, 12, 14, 15)
    assert KALUARI.add(start, 5 * H, pauses) == nbo(2026, 12, 14, 16)  # ends as the pause starts
    assert KALUARI.add(start, 6 * H, pauses) == nbo(2026, 12, 15, 10)
    # Pause order does not matter; a pause wholly before start changes nothing.
    shuffled = pauses[::-1] + [(nbo(2026, 12, 1), nbo(2026, 12, 2))]
    assert KALUARI.add(start, 6 * H, shuffled) == nbo(2026, 12, 15, 10)
    # A pause starting before `start` and still running when it arrives.
    assert KALUARI.add(start, H, [(nbo(2026, 12, 13), nbo(2026, 12, 14, 9))]) == nbo(2026, 12, 14, 10)


def test_open_ended_pause():
    start = nbo(2026, 12, 14, 8)
    waiting = [(nbo(2026, 12, 14, 10), None)]
    assert KALUARI.add(start, 2 * H, waiting) == nbo(2026, 12, 14, 10)  # reached just in time
    assert KALUARI.add(start, 2 * H + M, waiting) is None  # can't be reached while paused
    assert KALUARI.add(nbo(2026, 12, 14, 11), timedelta(0), waiting) == nbo(2026, 12, 14, 11)
    assert KALUARI.elapsed(start, nbo(2026, 12, 20), waiting) == 2 * H


@pytest.mark.parametrize(
    "moment, is_open, next_open",
    [
        (nbo(2026, 12, 14, 8), True, nbo(2026, 12, 14, 8)),  # opening is inclusive
        (nbo(2026, 12, 14, 7, 59, 59), False, nbo(2026, 12, 14, 8)),
        (nbo(2026, 12, 14, 16, 59, 59), True, nbo(2026, 12, 14, 16, 59, 59)),
        (nbo(2026, 12, 14, 17), False, nbo(2026, 12, 15, 8)),  # closing is exclusive
        (nbo(2026, 12, 11, 17), False, nbo(2026, 12, 14, 8)),  # weekend
        (nbo(2026, 12, 24, 17), False, nbo(2026, 12, 28, 8)),  # Christmas + Boxing Day + Sunday
        (nbo(2026, 10, 20, 12), False, nbo(2026, 10, 21, 8)),  # Mashujaa Day
    ],
)
def test_is_open_and_next_open_at_boundaries(moment, is_open, next_open):
    assert KALUARI.is_open(moment) is is_open
    assert KALUARI.next_open(moment) == next_open
    assert KALUARI.next_open(moment).tzinfo is UTC


def test_interval_ending_at_midnight_joins_the_next_day():
    cal = WorkingTime("Europe/Berlin", {0: [(time(20), time(0))], 1: [(time(0), time(4))]})
    start = datetime(2026, 12, 14, 20, tzinfo=BERLIN)
    assert cal.add(start, 8 * H) == datetime(2026, 12, 15, 4, tzinfo=BERLIN)
    assert cal.is_open(datetime(2026, 12, 14, 23, 59, 59, 999999, tzinfo=BERLIN))
    assert cal.is_open(datetime(2026, 12, 15, 0, tzinfo=BERLIN))


def test_sub_second_exactness_and_input_timezone_independence():
    start = datetime(2026, 12, 14, 9, 0, 0, 123456, tzinfo=NAIROBI)
    due = KALUARI.add(start, timedelta(seconds=1, microseconds=1))
    assert due == datetime(2026, 12, 14, 9, 0, 1, 123457, tzinfo=NAIROBI)
    assert KALUARI.add(start.astimezone(NEW_YORK), 4 * H) == KALUARI.add(start, 4 * H)


def test_calendar_is_immutable_and_lazy_holidays_work():
    with pytest.raises(AttributeError):
        KALUARI._tz = UTC
    cal = WorkingTime.for_country(
        "Africa/Nairobi", weekdays((time(8), time(17))), "KE", extra_closed=[date(2026, 12, 14)]
    )
    assert cal.add(nbo(2026, 12, 11, 16), 4 * H) == nbo(2026, 12, 15, 11)
    assert date(2031, 12, 25) in cal.holidays  # years expand on lookup
    assert not cal.is_open(nbo(2031, 12, 25, 10))


# ---- property tests ---------------------------------------------------------------

CALENDARS = [
    KALUARI,
    KLART,
    KALUARI_24X7,
    WorkingTime.for_country(
        "America/New_York",
        {wd: [(time(1, 30), time(3, 30)), (time(8), time(12)), (time(13), time(0))] for wd in range(7)},
        "US",
    ),
    WorkingTime("Europe/Berlin", {6: [(time(0), time(3))], 2: [(time(8), time(17, 30))]}),
]
ZONES = [UTC, NAIROBI, BERLIN, NEW_YORK]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
YEARS = 2 * 365 * 86400

calendars = st.sampled_from(CALENDARS)
# Whole seconds across 2026-2027, in varied input zones, biased to DST weeks.
dst_weeks = st.sampled_from(
    [
        datetime(2026, 3, 5, tzinfo=UTC),
        datetime(2026, 3, 26, tzinfo=UTC),
        datetime(2026, 10, 22, tzinfo=UTC),
        datetime(2026, 10, 29, tzinfo=UTC),
    ]
)
moments = st.one_of(
    st.integers(0, YEARS).map(lambda s: T0 + timedelta(seconds=s)),
    st.builds(lambda base, s: base + timedelta(seconds=s), dst_weeks, st.integers(0, 7 * 86400)),
).flatmap(lambda m: st.sampled_from(ZONES).map(m.astimezone))
durations = st.one_of(st.integers(0, 48 * 3600), st.integers(0, 200 * 86400)).map(lambda s: timedelta(seconds=s))
pause_lists = st.lists(
    st.tuples(st.integers(-3 * 86400, 20 * 86400), st.integers(0, 3 * 86400), st.booleans()),
    max_size=4,
)


def make_pauses(start, spec):
    base = start.astimezone(UTC)
    return [
        (base + timedelta(seconds=a), None if open_ended and i == 0 else base + timedelta(seconds=a + n))
        for i, (a, n, open_ended) in enumerate(spec)
    ]


PROPS = settings(max_examples=300, deadline=None, database=None)


@PROPS
@given(calendars, moments, moments, moments)
def test_elapsed_is_additive(cal, a, b, c):
    a, b, c = sorted([a, b, c])
    assert cal.elapsed(a, c) == cal.elapsed(a, b) + cal.elapsed(b, c)


@PROPS
@given(calendars, moments, durations, pause_lists)
def test_add_inverts_elapsed(cal, start, duration, spec):
    pauses = make_pauses(start, spec)
    due = cal.add(start, duration, pauses)
    if due is None:  # only possible when an open-ended pause blocks the way
        assert any(p1 is None for _, p1 in pauses)
        return
    assert due >= start
    assert cal.elapsed(start, due, pauses) == duration
    if duration:
        # Earliest such moment, and the second before it is working time.
        second = timedelta(seconds=1)
        before = due - second
        assert cal.elapsed(start, before, pauses) == duration - second
        assert cal.is_open(before)
        assert not any(p0 <= before and (p1 is None or before < p1) for p0, p1 in pauses)


@PROPS
@given(calendars, moments, moments, durations, durations)
def test_add_is_monotonic(cal, s1, s2, d1, d2):
    s1, s2 = sorted([s1, s2])
    d1, d2 = sorted([d1, d2])
    assert cal.add(s1, d1) <= cal.add(s2, d1)
    assert cal.add(s1, d1) <= cal.add(s1, d2)


@PROPS
@given(calendars, moments)
def test_next_open(cal, moment):
    nxt = cal.next_open(moment)
    assert nxt >= moment
    assert cal.is_open(nxt)
    assert cal.elapsed(moment, nxt) == timedelta(0)
    # Compare in UTC: PEP 495 makes an ambiguous local time unequal to every other zone.
    assert (nxt == moment.astimezone(UTC)) is cal.is_open(moment)


def test_ambiguous_input_moments_respect_fold():
    cal = WorkingTime.always_open("UTC")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)  # EDT, 05:30Z
    second = first.replace(fold=1)  # EST, 06:30Z
    assert cal.next_open(first) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert cal.next_open(second) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert cal.elapsed(first, second) == H


@PROPS
@given(calendars, moments, moments, pause_lists)
def test_pauses_only_remove_time(cal, a, b, spec):
    a, b = sorted([a, b])
    pauses = make_pauses(a, spec)
    paused = cal.elapsed(a, b, pauses)
    assert timedelta(0) <= paused <= cal.elapsed(a, b)


def test_a_wall_time_names_one_moment_or_none():
    from portal.domain.dates import wall_moment

    assert wall_moment(datetime(2026, 10, 25, 1, 30), "Europe/Stockholm") == datetime(2026, 10, 24, 23, 30, tzinfo=UTC)
    assert wall_moment(datetime(2026, 10, 25, 3, 0), "Europe/Stockholm") == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)
    assert wall_moment(datetime(2026, 3, 29, 2, 30), "Africa/Nairobi") == datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="does not exist in Europe/Stockholm"):
        wall_moment(datetime(2026, 3, 29, 2, 30), "Europe/Stockholm")
    with pytest.raises(ValueError, match="happens twice in Europe/Stockholm"):
        wall_moment(datetime(2026, 10, 25, 2, 30), "Europe/Stockholm")
    with pytest.raises(ValueError, match="years 2000 to 2099"):  # not an OverflowError (a 500 in the forms)
        wall_moment(datetime(1, 1, 1), "Africa/Nairobi")
