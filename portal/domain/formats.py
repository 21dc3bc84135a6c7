"""How the product writes figures for people: durations as the SLAs write them, moments in a
contract's timezone, percentages and money. One home for each; the template filters
(portal/templatetags/portal_tags.py), the admin, the exports and the emails all call these.
Pure Python (no Django)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision

NOTHING = "—"


def minor_unit_exponent(currency: str) -> Decimal:
    """Decimal('0.01') for KES, Decimal('1') for JPY, Decimal('0.001') for BHD (CLDR via Babel)."""
    return Decimal(1).scaleb(-get_currency_precision(currency.upper()))


def duration(value: timedelta | None) -> str:
    """15 min, 1 h, 4 h 30 min, 36 h: how SLAs write durations (hours are not folded into days,
    because '36 working hours' is not '1.5 days')."""
    if value is None:
        return NOTHING
    minutes = int(value.total_seconds() // 60)
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    if hours:
        return f"{hours} h"
    return f"{mins} min"


SECONDS = {"d": 86400, "day": 86400, "days": 86400, "h": 3600, "hour": 3600, "hours": 3600,
           "min": 60, "mins": 60, "minute": 60, "minutes": 60}  # fmt: skip
_PART = r"(\d+)\s*(days?|d|hours?|h|minutes?|mins?)\b"
_DURATION = re.compile(rf"\s*(?:{_PART}\s*)+", re.IGNORECASE)


def duration_parsed(text: str) -> timedelta | None:
    """What staff type for a duration, in the words duration() writes or longer ones: "36 h",
    "4 h 30 min", "15 min", "2 days", "1 day 12 hours". None when the text is not one."""
    if not _DURATION.fullmatch(text or ""):
        return None
    parts = re.findall(_PART, text, re.IGNORECASE)
    return timedelta(seconds=sum(int(n) * SECONDS[unit.lower()] for n, unit in parts))


def wall_left(delta: timedelta) -> str:
    """A countdown's text, as static/js/admin-countdown.js writes it: in 14 min / 3 min overdue."""
    text = wall_span(delta)
    return f"in {text}" if delta.total_seconds() >= 0 else f"{text} overdue"


def wall_span(delta: timedelta) -> str:
    """A stretch of wall-clock time as the staff pages' countdowns write it: 1 d 2 h, 3 h 10 min,
    35 min, 20 s (its sign dropped)."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {minutes} min"
    elif minutes:
        text = f"{minutes} min"
    else:
        text = f"{secs} s"
    return text


def countdown_words(delta: timedelta) -> str:
    """A customer page's countdown as static/js/countdown.js writes it at each tick, so the page
    reads the same before its script runs: in 2 d 19 h 5 min, in 38 min 7 s, passed 3 h 2 min 0 s ago."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if days or hours:
        parts.append(f"{hours} h")
    parts.append(f"{minutes} min")
    if not days:
        parts.append(f"{secs} s")
    text = " ".join(parts)
    return f"in {text}" if delta.total_seconds() > 0 else f"passed {text} ago"


def in_tz(value: datetime | None, tz: str) -> str:
    """A moment in the contract's timezone, with its offset: 2026-12-14 11:00 (UTC+03:00)."""
    if value is None:
        return NOTHING
    text = value.astimezone(ZoneInfo(tz)).isoformat(sep=" ", timespec="minutes")  # 2026-12-14 11:00+03:00
    return f"{text[:16]} (UTC{text[16:]})"


FILE_TYPES = {
    "image/png": "PNG image", "image/jpeg": "JPEG image", "image/gif": "GIF image", "image/webp": "WebP image",
    "application/pdf": "PDF document", "application/zip": "ZIP archive", "application/gzip": "GZip archive",
    "text/plain": "text",
}  # fmt: skip


def file_type(content_type: str) -> str:
    """An accepted attachment's type as people name it ("PNG image", "PDF document"), not its MIME type."""
    return FILE_TYPES.get(content_type, "file")


def grouped(value):
    """A count of minutes (or anything) with its thousands grouped: 44640 -> '44,640'. Not a number
    (None, a dash): as it is."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, float)):
        return value
    return f"{value:,}"


def number(value) -> str:
    """99.800 -> '99.8', 10.000 -> '10': a stored figure without its padding (never 1E+1)."""
    return f"{Decimal(str(value)).normalize():f}"


def percent_number(value) -> str:
    """99.800 -> '99.8', 98 -> '98.0': a percentage as the SLA documents write it, without the sign."""
    text = number(value)
    return text if "." in text else f"{text}.0"


def percent(value, places: int | None = None) -> str:
    """'98.0%' as the SLA documents write it; with `places`, rounded half-up for display only
    (98.8803 -> '98.880%' with 3). The exact figure is never rounded before a tier is chosen."""
    if value is None:
        return NOTHING
    if places is not None:
        return f"{rounded(value, places)}%"
    return f"{percent_number(value)}%"


def rounded(value, places: int) -> str:
    """Half-up to `places` decimals: 97.9166 -> '97.92' with 2."""
    return str(Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def amount(value: Decimal | None, currency: str) -> str | None:
    """15000.00 for KES, 1500 for JPY: in the currency's minor unit, without separators."""
    return None if value is None else str(value.quantize(minor_unit_exponent(currency)))


def money(value: Decimal | None, currency: str) -> str:
    """150000.0000 KES -> 'KES 150,000.00', in the currency's minor unit."""
    if value is None:
        return NOTHING
    return f"{currency} {value.quantize(minor_unit_exponent(currency)):,}"
