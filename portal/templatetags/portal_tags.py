from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django import template
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """15 min, 1 h, 4 h 30 min, 36 h: how SLAs write durations (hours are not folded into days,
    because '36 working hours' is not '1.5 days')."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    if hours:
        return f"{hours} h"
    return f"{mins} min"


@register.filter
def in_tz(value: datetime | None, tz: str) -> str:
    """A moment in the contract's timezone, with its offset: 2026-12-14 11:00 (UTC+03:00)."""
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(tz))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})"


@register.filter
def percent(value) -> str:
    if value is None:
        return "—"
    text = f"{value.normalize():f}" if hasattr(value, "normalize") else str(value)
    return f"{text}%" if "." in text else f"{text}.0%"  # 98.0%, as the SLA documents write it


@register.filter
def money(value, currency: str) -> str:
    """150000.0000 KES -> 'KES 150,000.00', in the currency's minor unit."""
    if value is None:
        return "—"
    from credits.tiers import minor_unit_exponent

    amount = value.quantize(minor_unit_exponent(currency))
    return f"{currency} {amount:,}"


@register.simple_tag(takes_context=True)
def countdown(context, moment: datetime | None) -> str:
    """A countdown to `moment` from the page's `now`, in words, with the instant for the script that
    ticks it live (static/js). A tag, not an included template: a ticket page shows five of them."""
    if not moment:
        return ""
    now = context["now"]
    words = f"in {timeuntil(moment, now)}" if moment > now else f"passed {timesince(moment, now)} ago"
    return format_html(
        '<time class="countdown" datetime="{}" data-countdown>{}</time>', moment.astimezone(UTC).isoformat(), words
    )
