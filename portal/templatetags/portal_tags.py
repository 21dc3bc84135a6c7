from datetime import UTC, datetime

from django import template
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

from portal.domain import formats

register = template.Library()

# Blank fields of the forms that render the same whenever they are unbound, rendered once per process.
_blank_fields: dict[tuple, str] = {}


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
