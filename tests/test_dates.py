"""portal.domain.dates: the one month arithmetic (pure, no database)."""

from datetime import UTC, date, datetime

import pytest

from portal.domain.dates import (
    MONTH_FORMAT,
    add_months,
    day_bounds,
    last_day,
    local_month,
    month_bounds,
    month_from_text,
    previous_month,
    runs_during,
    week_start,
)


@pytest.mark.parametrize(
    ("month", "n", "expected"),
    [
        (date(2026, 1, 1), 1, date(2026, 2, 1)),
        (date(2026, 12, 1), 1, date(2027, 1, 1)),
        (date(2026, 1, 1), -1, date(2025, 12, 1)),
        (date(2026, 3, 1), -14, date(2025, 1, 1)),
        (date(2026, 5, 1), 0, date(2026, 5, 1)),
        (date(2026, 5, 17), 1, date(2026, 6, 1)),  # any day names its month
    ],
)
def test_add_months(month, n, expected):
    assert add_months(month, n) == expected


def test_previous_month_and_last_day():
    assert previous_month(date(2026, 1, 15)) == date(2025, 12, 1)
    assert last_day(date(2026, 2, 1)) == date(2026, 2, 28)
    assert last_day(date(2028, 2, 1)) == date(2028, 2, 29)
    assert last_day(date(2026, 12, 1)) == date(2026, 12, 31)


def test_local_month_is_the_month_in_the_contracts_timezone():
    moment = datetime(2026, 10, 31, 22, 30, tzinfo=UTC)  # already 1 November in Nairobi (UTC+3)
    assert local_month(moment, "Africa/Nairobi") == date(2026, 11, 1)
    assert local_month(moment, "UTC") == date(2026, 10, 1)


@pytest.mark.parametrize("text", ["2026-13", "2026-1", "26-10", "", "2026-10-01", "1969-12", "abcd-ef"])
def test_month_from_text_refuses_what_is_not_a_month(text):
    with pytest.raises(ValueError, match=MONTH_FORMAT):
        month_from_text(text)


def test_month_from_text():
    assert month_from_text(" 2026-10 ") == date(2026, 10, 1)


def test_a_dst_month_is_an_hour_shorter_or_longer():
    start, end = month_bounds(2026, 3, "Europe/Stockholm")  # clocks go forward on 29 March
    assert start == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert (end - start).total_seconds() == (31 * 24 - 1) * 3600
    start, end = month_bounds(2026, 10, "Europe/Stockholm")  # and back on 25 October
    assert (end - start).total_seconds() == (31 * 24 + 1) * 3600


def test_october_ends_at_1_november_midnight_local():
    assert month_bounds(2026, 10, "Africa/Nairobi")[1] == datetime(2026, 10, 31, 21, 0, tzinfo=UTC)
    assert month_bounds(2026, 12, "UTC") == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def test_day_bounds_on_a_dst_change_is_23_hours():
    start, end = day_bounds(date(2026, 3, 29), "Europe/Stockholm")
    assert (end - start).total_seconds() == 23 * 3600


def test_week_start_is_monday_midnight_utc():
    assert week_start(datetime(2026, 12, 6, 15, 0, tzinfo=UTC)) == datetime(2026, 11, 30, tzinfo=UTC)
    assert week_start(datetime(2026, 11, 30, 0, 0, tzinfo=UTC)) == datetime(2026, 11, 30, tzinfo=UTC)


def test_a_contract_months_period_is_the_month_clipped_to_the_contracts_term():
    from portal.domain.dates import term_period

    nbo = "Africa/Nairobi"
    oct_start, oct_end = month_bounds(2026, 10, nbo)
    assert term_period(date(2026, 10, 1), nbo, date(2026, 1, 1), None) == (oct_start, oct_end)
    assert term_period(date(2026, 10, 1), nbo, date(2026, 10, 1), date(2026, 10, 31)) == (oct_start, oct_end)
    # From starts_on 00:00 to ends_on + 1 day 00:00, local time.
    assert term_period(date(2026, 10, 1), nbo, date(2026, 10, 20), date(2026, 10, 25)) == (
        datetime(2026, 10, 19, 21, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 21, 0, tzinfo=UTC),
    )
    # A term far in the future or the past never overflows, and a month it misses is empty.
    assert term_period(date(2026, 10, 1), nbo, date(2026, 1, 1), date(9999, 12, 31)) == (oct_start, oct_end)
    start, end = term_period(date(2026, 10, 1), nbo, date(2026, 11, 5), None)
    assert start == end


def test_runs_during_counts_both_days_of_a_contract_in_its_own_zone():
    night = (
        datetime(2026, 10, 11, 20, 0, tzinfo=UTC),
        datetime(2026, 10, 11, 22, 0, tzinfo=UTC),
    )  # 23:00-01:00 Nairobi
    assert runs_during(date(2024, 1, 1), date(2026, 10, 11), "Africa/Nairobi", *night)  # its last day
    assert runs_during(date(2026, 10, 12), None, "Africa/Nairobi", *night)  # its first day, after midnight there
    assert not runs_during(date(2026, 10, 12), None, "UTC", *night)  # still the 11th in UTC
    assert not runs_during(date(2024, 1, 1), date(2025, 12, 31), "Africa/Nairobi", *night)
    # A moment alone; an end is not in [start, end): a window ending at local midnight lies in the day before.
    assert runs_during(date(2026, 10, 11), date(2026, 10, 11), "UTC", night[0])
    assert not runs_during(date(2026, 10, 12), None, "UTC", night[0], datetime(2026, 10, 12, tzinfo=UTC))
