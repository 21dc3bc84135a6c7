from datetime import UTC, datetime

from django import template
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

from portal.domain import formats

register = template.Library()


# The filters are the formats of portal.domain.formats, one home for each.
register.filter("duration", formats.duration)
register.filter("in_tz", formats.in_tz)
register.filter("percent", formats.percent)
register.filter("money", formats.money)


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
