"""Which part of a maintenance window keeps the contract's rules (pure function, tables)."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from portal.domain.maintenance_rules import Notice, Rules, Window, judge

NBO = ZoneInfo("Africa/Nairobi")
RULES = Rules(tz="Africa/Nairobi", notice=timedelta(hours=48), offpeak_start=time(22), offpeak_end=time(6),
              annual_cap=timedelta(hours=12))  # fmt: skip
H = timedelta(hours=1)
M = timedelta(minutes=1)


def nbo(*args):
    return datetime(*args, tzinfo=NBO)


def window(start, hours, notified_before=timedelta(hours=48), key="w"):
    return Window(key=key, start=start, end=start + timedelta(hours=hours), notified_at=start - notified_before)


def test_a_window_that_keeps_every_rule_is_all_excluded():
    w = window(nbo(2026, 10, 10, 23), 2)
    j = judge([w], RULES)["w"]
    assert j.keeps_rules and j.notice_ok
    assert j.kept == ((w.start, w.end),) and j.broken == ()


def test_notice_one_minute_short_counts_the_whole_window_as_downtime():
    w = window(nbo(2026, 10, 10, 23), 2, notified_before=timedelta(hours=48) - M)
    j = judge([w], RULES)["w"]
    assert not j.notice_ok
    assert j.kept == () and j.broken_duration == 2 * H


def test_never_notified_is_downtime():
    w = Window("w", nbo(2026, 10, 10, 23), nbo(2026, 10, 11, 1), notified_at=None)
    assert judge([w], RULES)["w"].broken_duration == 2 * H


def test_a_window_straddling_the_end_of_offpeak_hours_is_split():
    w = window(nbo(2026, 10, 11, 5), 2)  # 05:00-07:00; off-peak ends at 06:00
    j = judge([w], RULES)["w"]
    assert j.kept == ((nbo(2026, 10, 11, 5), nbo(2026, 10, 11, 6)),)
    assert j.broken == ((nbo(2026, 10, 11, 6), nbo(2026, 10, 11, 7)),)
    assert j.offpeak == H


def test_a_daytime_window_is_all_downtime():
    j = judge([window(nbo(2026, 10, 11, 12), 1)], RULES)["w"]
    assert j.kept == () and j.offpeak == timedelta(0)


def test_the_cap_is_reached_in_the_middle_of_a_window():
    earlier = [window(nbo(2026, 3, d, 22), 5, key=f"e{d}") for d in (2, 3)]  # 10 h kept
    last = window(nbo(2026, 3, 10, 22), 4, key="last")  # only 2 h of room left
    j = judge([*earlier, last], RULES)
    assert all(j[f"e{d}"].keeps_rules for d in (2, 3))
    assert j["last"].kept == ((nbo(2026, 3, 10, 22), nbo(2026, 3, 11, 0)),)
    assert j["last"].broken == ((nbo(2026, 3, 11, 0), nbo(2026, 3, 11, 2)),)
    assert j["last"].capped == 2 * H


def test_only_rule_keeping_time_uses_the_cap():
    # A short-notice 6 h window uses none of the cap; the next 10 h of windows are all kept.
    short = window(nbo(2026, 5, 1, 22), 6, notified_before=H, key="short")
    later = [window(nbo(2026, 5, d, 22), 5, key=f"l{d}") for d in (5, 6)]
    j = judge([short, *later], RULES)
    assert j["short"].kept == ()
    assert all(j[f"l{d}"].keeps_rules for d in (5, 6))


def test_windows_are_taken_in_order_of_start_whatever_order_given():
    a = window(nbo(2026, 6, 1, 22), 8, key="a")
    b = window(nbo(2026, 6, 2, 22), 8, key="b")
    j = judge([b, a], RULES)
    assert j["a"].kept_duration == 8 * H and j["b"].kept_duration == 4 * H


def test_a_window_over_new_year_counts_against_each_years_cap():
    full_2026 = [window(nbo(2026, 12, d, 22), 6, key=f"d{d}") for d in (1, 2)]  # 2026's 12 h used
    ny = window(nbo(2026, 12, 31, 22), 4, key="ny")  # 22:00-02:00 across New Year (Nairobi time)
    j = judge([*full_2026, ny], RULES)
    assert j["ny"].kept == ((nbo(2027, 1, 1, 0), nbo(2027, 1, 1, 2)),)  # 2027 has room
    assert j["ny"].broken == ((nbo(2026, 12, 31, 22), nbo(2027, 1, 1, 0)),)


def test_offpeak_hours_in_a_dst_timezone_follow_local_time():
    berlin = Rules(tz="Europe/Berlin", notice=48 * H, offpeak_start=time(1), offpeak_end=time(4), annual_cap=12 * H)
    ber = ZoneInfo("Europe/Berlin")
    # The night clocks go back (2026-10-25): 01:00-04:00 local holds 4 real hours.
    start = datetime(2026, 10, 25, 1, tzinfo=ber)
    w = Window("w", start, datetime(2026, 10, 25, 4, tzinfo=ber), notified_at=start - 72 * H)
    j = judge([w], berlin)["w"]
    assert j.kept_duration == 4 * H and j.keeps_rules


def test_an_empty_or_inverted_window_keeps_nothing():
    w = Window("w", nbo(2026, 1, 1, 23), nbo(2026, 1, 1, 23), notified_at=nbo(2025, 12, 1))
    assert judge([w], RULES)["w"].kept == ()


def test_offpeak_bounds_the_clocks_skip_or_pass_twice_hold_the_instants_whose_wall_time_is_inside():
    """Stockholm: 29 March 2026 02:00 -> 03:00 (02:30 does not exist), 25 October 03:00 -> 02:00
    (02:30 happens twice). Off-peak hours are those whose wall time is in the range."""
    utc = ZoneInfo("UTC")

    def rules(start, end):
        return Rules(tz="Europe/Stockholm", notice=timedelta(hours=48), offpeak_start=start, offpeak_end=end,
                     annual_cap=timedelta(hours=12))  # fmt: skip

    def at(*args):
        return datetime(*args, tzinfo=utc)

    # 02:30-06:00 on the night the clocks go forward: from the jump (01:00 UTC, 03:00 CEST) on.
    w = Window("w", at(2026, 3, 29, 1, 0), at(2026, 3, 29, 2, 0), notified_at=at(2026, 3, 20))  # 03:00-04:00 CEST
    assert judge([w], rules(time(2, 30), time(6)))["w"].broken == ()
    # 22:00-02:30 that night: ends at the jump; 03:00-03:30 CEST is after it.
    w = Window("w", at(2026, 3, 29, 1, 0), at(2026, 3, 29, 1, 30), notified_at=at(2026, 3, 20))
    assert judge([w], rules(time(22), time(2, 30)))["w"].kept == ()
    # 22:00-02:30 on the night the clocks go back: to the second 02:30 (01:30 UTC, CET).
    w = Window("w", at(2026, 10, 25, 1, 0), at(2026, 10, 25, 1, 30), notified_at=at(2026, 10, 20))  # 02:00-02:30 CET
    assert judge([w], rules(time(22), time(2, 30)))["w"].broken == ()


# --- A corrected window: the minutes an earlier notice announced in time ------------------------------
START = nbo(2026, 10, 10, 23)
IN_TIME = START - 49 * H


def corrected(end, notified_at, *earlier):
    return Window("w", START, end, notified_at=notified_at, earlier=earlier)


def test_a_window_shortened_after_it_ended_keeps_what_its_first_notice_announced():
    j = judge([corrected(START + H, START + 10 * H, Notice(START, START + 2 * H, IN_TIME))], RULES)["w"]
    assert j.notice_ok and j.kept == ((START, START + H),) and j.broken == ()


def test_an_extension_is_judged_on_its_own_late_notice():
    w = corrected(START + 3 * H, START + H, Notice(START, START + 2 * H, IN_TIME))
    j = judge([w], RULES)["w"]
    assert (j.notice_ok, j.partly_noticed, j.noticed) == (False, True, 2 * H)
    assert j.kept == ((START, START + 2 * H),) and j.broken == ((START + 2 * H, START + 3 * H),)


def test_an_earlier_notice_is_judged_against_the_start_it_announced():
    # Announced 49 h before 01:00, then moved to start at 23:00 (47 h after that notice): the hour
    # it adds is short; the hours first announced keep their notice.
    first = Notice(START + 2 * H, START + 4 * H, START + 2 * H - 49 * H)
    j = judge([corrected(START + 4 * H, START - 30 * H, first)], RULES)["w"]
    assert j.kept == ((START + 2 * H, START + 4 * H),) and j.broken == ((START, START + 2 * H),)


def test_a_late_earlier_notice_helps_nothing():
    j = judge([corrected(START + H, START + 10 * H, Notice(START, START + 2 * H, START - 30 * H))], RULES)["w"]
    assert j.kept == () and j.broken_duration == H


def test_a_notice_that_took_the_minutes_back_ends_what_the_first_announced():
    took_back = Notice(START, START, START - 47 * H)  # "no longer affects your services"
    j = judge([corrected(START + 2 * H, START - 30 * H, Notice(START, START + 2 * H, IN_TIME), took_back)], RULES)["w"]
    assert j.kept == () and j.broken_duration == 2 * H


def test_simultaneous_windows_use_the_cap_once():
    """Two windows at the same time (on two services of the contract) are 4 h of scheduled downtime,
    not 8: a later 6-hour window still fits in the 12 hours."""
    night, later = nbo(2026, 10, 10, 22), nbo(2026, 10, 24, 22)
    j = judge([window(night, 4, key="a"), window(night, 4, key="b"), window(later, 6, key="later")], RULES)
    assert all(j[k].keeps_rules for k in ("a", "b", "later"))
    assert j["b"].kept == ((night, night + 4 * H),) and j["later"].capped == timedelta(0)


def test_overlapping_windows_charge_the_cap_only_for_the_minutes_they_add():
    # 8 h kept already; 22:00-02:00 takes the last 4 h; 00:00-04:00 the same night keeps the two
    # hours the first already keeps (no charge) and adds two for which the cap has no room.
    earlier = [window(nbo(2026, 3, d, 22), 4, key=f"e{d}") for d in (2, 3)]
    first, second = window(nbo(2026, 3, 10, 22), 4, key="first"), window(nbo(2026, 3, 11, 0), 4, key="second")
    j = judge([*earlier, first, second], RULES)
    assert j["first"].keeps_rules
    assert j["second"].kept == ((nbo(2026, 3, 11, 0), nbo(2026, 3, 11, 2)),) and j["second"].capped == 2 * H
