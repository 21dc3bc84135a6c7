from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django import template
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

register = template.Library()

# Blank fields of the forms that render the same whenever they are unbound, rendered once per process.
_blank_fields: dict[tuple, str] = {}


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


@register.simple_tag
def form_field(field) -> str:
    """One field with its label, hint and errors (tickets/_field.html). A form whose blank fields
    are the same on every page (`same_when_blank = True`: no initial values, choices or attributes
    from the data) renders each of them once per process while unbound: Django renders a widget
    through the form templates, a third of a ticket page's rendering for its three fields."""
    form = field.form
    key = None
    if not form.is_bound and getattr(form, "same_when_blank", False):
        key = (type(form), form.prefix, form.auto_id, field.name, field.help_text)  # help from settings
        if key in _blank_fields:
            return _blank_fields[key]
    html = render_to_string("tickets/_field.html", {"field": field})
    if key:
        _blank_fields[key] = html
    return html
