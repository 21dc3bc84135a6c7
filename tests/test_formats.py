"""portal.domain.formats: how figures are written for people, in one place (pure, no database)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from portal.domain import formats


@pytest.mark.parametrize(
    ("value", "text"),
    [(timedelta(minutes=15), "15 min"), (timedelta(hours=1), "1 h"), (timedelta(hours=4, minutes=30), "4 h 30 min"),
     (timedelta(hours=36), "36 h"), (None, "—")],
)  # fmt: skip
def test_duration_is_written_as_the_slas_write_it(value, text):
    assert formats.duration(value) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [("36 h", timedelta(hours=36)), ("4 h 30 min", timedelta(hours=4, minutes=30)), ("15 min", timedelta(minutes=15)),
     ("1 day 12 hours", timedelta(hours=36)), ("2 days", timedelta(days=2)), (" 1 H 5 Mins ", timedelta(minutes=65)),
     ("1 12:00:00", None), ("12", None), ("h", None), ("1 week", None), ("", None)],
)  # fmt: skip
def test_a_duration_typed_in_words_is_read_back(text, value):
    assert formats.duration_parsed(text) == value
    if value is not None:
        assert formats.duration_parsed(formats.duration(value)) == value  # what the form shows, it reads


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(14 * 60, "in 14 min"), (-180, "3 min overdue"), (3 * 3600 + 120, "in 3 h 2 min"), (26 * 3600, "in 1 d 2 h"),
     (42, "in 42 s"), (0, "in 0 s")],
)  # fmt: skip
def test_wall_left(seconds, text):
    assert formats.wall_left(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    "seconds, text",
    [
        (15 * 60, "in 15 min 0 s"),
        (38 * 60 + 7, "in 38 min 7 s"),
        (5 * 3600 + 38 * 60 + 7, "in 5 h 38 min 7 s"),
        (2 * 86400 + 19 * 3600 + 5 * 60 + 59, "in 2 d 19 h 5 min"),  # no seconds once it is days
        (0, "passed 0 min 0 s ago"),  # the script's word at the deadline too
        (-(3 * 3600 + 2 * 60), "passed 3 h 2 min 0 s ago"),
    ],
)
def test_a_customer_countdown_reads_as_its_script_writes_it(seconds, text):
    assert formats.countdown_words(timedelta(seconds=seconds)) == text


def test_in_tz_shows_the_offset():
    moment = datetime(2026, 12, 14, 8, 0, tzinfo=UTC)
    assert formats.in_tz(moment, "Africa/Nairobi") == "2026-12-14 11:00 (UTC+03:00)"
    assert formats.in_tz(moment, "America/St_Johns") == "2026-12-14 04:30 (UTC-03:30)"
    assert formats.in_tz(moment.replace(second=59, microsecond=1), "UTC") == "2026-12-14 08:00 (UTC+00:00)"
    assert formats.in_tz(moment.replace(month=7), "Europe/Stockholm") == "2026-07-14 10:00 (UTC+02:00)"
    assert formats.in_tz(None, "UTC") == "—"


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("99.800"), "99.8%"), (Decimal("98"), "98.0%"), (Decimal("100.000"), "100.0%"), (90, "90.0%"),
     (Decimal("1E+1"), "10.0%"), (None, "—")],
)  # fmt: skip
def test_percent_as_the_sla_documents_write_it(value, text):
    assert formats.percent(value) == text


def test_percent_rounded_for_display_only():
    assert formats.percent(Decimal("98.88035"), places=3) == "98.880%"
    assert formats.percent(Decimal("99.9995"), places=3) == "100.000%"  # half-up
    assert formats.rounded(Decimal("97.916666"), 2) == "97.92"


def test_number_drops_the_padding_and_never_writes_an_exponent():
    assert formats.number(Decimal("10.000")) == "10"
    assert formats.number(Decimal("99.800")) == "99.8"
    assert formats.percent_number(Decimal("10.000")) == "10.0"


@pytest.mark.parametrize(
    ("value", "currency", "money", "amount"),
    [(Decimal("150000.0000"), "KES", "KES 150,000.00", "150000.00"), (Decimal("1500.4"), "JPY", "JPY 1,500", "1500"),
     (Decimal("12.3456"), "BHD", "BHD 12.346", "12.346")],
)  # fmt: skip
def test_money_in_the_currencys_minor_unit(value, currency, money, amount):
    assert formats.money(value, currency) == money
    assert formats.amount(value, currency) == amount
    assert formats.money(None, currency) == "—" and formats.amount(None, currency) is None


@pytest.mark.parametrize(("value", "text"), [(44640, "44,640"), (500, "500"), (0, "0"), (None, None), ("—", "—")])
def test_grouped_writes_a_count_with_its_thousands_grouped(value, text):
    assert formats.grouped(value) == text
