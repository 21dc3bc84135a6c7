"""Uptime arithmetic (pure): tables, a minute-by-minute reference, and properties."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.dates import month_bounds
from portal.domain.uptime import monthly_uptime, period_uptime, round_out

NBO = ZoneInfo("Africa/Nairobi")
M = timedelta(minutes=1)


def nbo(*args):
    return datetime(*args, tzinfo=NBO)


def test_a_30_day_month_has_43200_minutes_and_no_downtime_is_100_percent():
    r = monthly_uptime(2026, 11, "Africa/Nairobi")
    assert (r.total_minutes, r.down_minutes, r.excluded_minutes, r.percent) == (43200, 0, 0, Decimal(100))
    assert r.start == nbo(2026, 11, 1).astimezone(UTC)


def test_dst_months_in_berlin_have_an_hour_more_or_less():
    assert monthly_uptime(2026, 3, "Europe/Berlin").total_minutes == 31 * 1440 - 60
    assert monthly_uptime(2026, 10, "Europe/Berlin").total_minutes == 31 * 1440 + 60


def test_intervals_are_rounded_outward_to_whole_minutes():
    assert round_out(nbo(2026, 10, 5, 10, 0, 30), nbo(2026, 10, 5, 10, 1, 0, 1)) == (
        nbo(2026, 10, 5, 10, 0).astimezone(UTC),
        nbo(2026, 10, 5, 10, 2).astimezone(UTC),
    )
    # A 10-second blip costs a whole minute.
    r = monthly_uptime(2026, 10, "Africa/Nairobi", down=[(nbo(2026, 10, 5, 10, 0, 20), nbo(2026, 10, 5, 10, 0, 30))])
    assert r.down_minutes == 1


def test_an_outage_across_the_month_end_is_split_between_the_months():
    outage = [(nbo(2026, 10, 31, 23, 0), nbo(2026, 11, 1, 1, 0))]
    assert monthly_uptime(2026, 10, "Africa/Nairobi", down=outage).down_minutes == 60
    assert monthly_uptime(2026, 11, "Africa/Nairobi", down=outage).down_minutes == 60
    # In UTC the same outage lies wholly in October (20:00-22:00 UTC on the 31st).
    assert monthly_uptime(2026, 10, "UTC", down=outage).down_minutes == 120


def test_overlapping_outages_are_counted_once():
    down = [(nbo(2026, 10, 5, 10), nbo(2026, 10, 5, 11)), (nbo(2026, 10, 5, 10, 30), nbo(2026, 10, 5, 12))]
    assert monthly_uptime(2026, 10, "Africa/Nairobi", down=down).down_minutes == 120


def test_an_excluded_minute_is_never_down_even_under_a_counted_outage():
    down = [(nbo(2026, 10, 5, 10), nbo(2026, 10, 5, 12))]
    excluded = [(nbo(2026, 10, 5, 11), nbo(2026, 10, 5, 13))]
    r = monthly_uptime(2026, 10, "Africa/Nairobi", down=down, excluded=excluded)
    assert (r.down_minutes, r.excluded_minutes) == (60, 120)


def test_kaluari_tier_boundaries_are_reached_exactly():
    # October has 44640 minutes: 1% is 446.4 minutes, so use a 30-day month (43200) instead.
    for down_minutes, percent in ((432, "99"), (864, "98"), (2160, "95"), (4320, "90")):
        start = nbo(2026, 11, 2)
        r = monthly_uptime(2026, 11, "Africa/Nairobi", down=[(start, start + down_minutes * M)])
        assert r.percent == Decimal(percent)


# --- A minute-by-minute reference -----------------------------------------------------------------
def touches(intervals, t, nxt):
    return any(s < nxt and e > t for s, e in intervals)


def reference(year, month, tz, down, excluded):
    start, end = month_bounds(year, month, tz)
    total = down_count = excluded_count = 0
    t = start
    while t < end:
        nxt = t + M
        total += 1
        if touches(excluded, t, nxt):
            excluded_count += 1
        elif touches(down, t, nxt):
            down_count += 1
        t = nxt
    return total, down_count, excluded_count


def random_intervals(rng, start, end, count):
    span = int((end - start).total_seconds())
    out = []
    for _ in range(count):
        a = start + timedelta(seconds=rng.randrange(-86400, span + 86400))
        out.append((a, a + timedelta(seconds=rng.randrange(1, 3 * 86400))))
    return out


def test_agrees_with_a_minute_by_minute_reference_on_random_months():
    rng = random.Random(20261122)
    for _ in range(12):
        tz = rng.choice(["Africa/Nairobi", "Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"])
        year, month = rng.choice([2026, 2027]), rng.choice([1, 2, 3, 10, 11, 12])
        start, end = month_bounds(year, month, tz)
        down = random_intervals(rng, start, end, rng.randrange(0, 6))
        excluded = random_intervals(rng, start, end, rng.randrange(0, 3))
        r = monthly_uptime(year, month, tz, down=down, excluded=excluded)
        assert (r.total_minutes, r.down_minutes, r.excluded_minutes) == reference(year, month, tz, down, excluded)


# --- Properties -----------------------------------------------------------------------------------
BASE = datetime(2026, 10, 1, tzinfo=UTC)
moments = st.integers(min_value=-2 * 86400, max_value=33 * 86400).map(lambda s: BASE + timedelta(seconds=s))
intervals = st.tuples(moments, st.integers(min_value=1, max_value=5 * 86400)).map(
    lambda p: (p[0], p[0] + timedelta(seconds=p[1]))
)


@settings(max_examples=200, deadline=None)
@given(down=st.lists(intervals, max_size=6), excluded=st.lists(intervals, max_size=3), extra=intervals)
def test_properties(down, excluded, extra):
    r = monthly_uptime(2026, 10, "UTC", down=down, excluded=excluded)
    assert Decimal(0) <= r.percent <= Decimal(100)
    assert r.down_minutes + r.excluded_minutes <= r.total_minutes
    # Adding an outage never raises uptime.
    assert monthly_uptime(2026, 10, "UTC", down=[*down, extra], excluded=excluded).percent <= r.percent
    # Excluding an interval never lowers it.
    assert monthly_uptime(2026, 10, "UTC", down=down, excluded=[*excluded, extra]).percent >= r.percent


def test_naive_moments_are_refused():
    import pytest

    with pytest.raises(ValueError, match="timezone-aware"):
        period_uptime(datetime(2026, 1, 1), datetime(2026, 1, 2), down=[])
