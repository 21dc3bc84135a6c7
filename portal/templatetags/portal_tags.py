from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import template
from django.utils import dateformat
from django.utils.html import format_html

from portal.domain import formats

register = template.Library()


# The filters are the formats of portal.domain.formats, one home for each.
register.filter("duration", formats.duration)
register.filter("in_tz", formats.in_tz)
register.filter("percent", formats.percent)
register.filter("money", formats.money)
register.filter("file_type", formats.file_type)
register.filter("grouped", formats.grouped)


@register.filter
def waited(moment: datetime, now: datetime) -> str:
    """How long since `moment`, as the staff pages' countdowns write it ("1 d 2 h")."""
    return formats.wall_span(now - moment)


@register.filter
def utc_end(end: datetime, start: datetime) -> str:
    """A window's end as the status page and its feed write it, in UTC: the time alone when it ends
    on the day it starts ("Thu 5 Nov 2026, 12:00 – 14:00 UTC"), else its day too."""
    end, start = end.astimezone(UTC), start.astimezone(UTC)
    return dateformat.format(end, "H:i" if end.date() == start.date() else "D j M Y, H:i")


@register.simple_tag(takes_context=True)
def countdown(context, moment: datetime | None) -> str:
    """A countdown to `moment` from the page's `now`, in words, with the instant for the script that
    ticks it live (static/js). A tag, not an included template: a ticket page shows five of them."""
    if not moment:
        return ""
    words = formats.countdown_words(moment - context["now"])
    return format_html(
        '<time class="countdown" datetime="{}" data-countdown>{}</time>', moment.astimezone(UTC).isoformat(), words
    )


@register.simple_tag(takes_context=True)
def own_time(context, moment: datetime | None) -> str:
    """A moment of no contract (a login, an invitation's expiry, a review of the organisation's
    people) in the viewer's own timezone (User.timezone), else in UTC, its offset named."""
    return formats.in_tz(moment, getattr(context.get("user"), "timezone", "") or "UTC")


@register.simple_tag(takes_context=True)
def when(context, moment: datetime | None, tz: str) -> str:
    """A moment as the contract's timezone shows it (formats.in_tz) and, where the viewer's own
    timezone (User.timezone) shows another time, that one beside it: "2026-12-14 11:00 (UTC+03:00)
    (09:00 your time, Europe/Berlin)". The one way customer pages show a contract's moments to a
    person elsewhere."""
    shown = formats.in_tz(moment, tz)
    own = getattr(context.get("user"), "timezone", "")
    if moment is None or not own or own == tz:
        return shown
    try:
        mine, theirs = moment.astimezone(ZoneInfo(own)), moment.astimezone(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return shown
    if mine.replace(tzinfo=None) == theirs.replace(tzinfo=None):
        return shown
    fmt = "%H:%M" if mine.date() == theirs.date() else "%Y-%m-%d %H:%M"
    return format_html('{} <span class="own-tz">({} your time, {})</span>', shown, mine.strftime(fmt), own)
