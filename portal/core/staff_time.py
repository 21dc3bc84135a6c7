"""Times on the staff site: entered and shown in the staff member's own timezone (User.timezone, UTC
where none is set), named on every date-time field with UTC beside the value, and written as the
portal writes them (portal.domain.formats: "2026-12-09 23:00 (UTC+03:00)", "36 h").

- StaffTimezoneMiddleware makes a staff member's zone the current one for their requests, so
  Django's admin reads what they type in it and shows stored moments in it. Objects that belong to
  one contract (a ticket, a claim, a month) show the contract's own time through their admins'
  columns, and the forms that take a moment in a contract's time (a logged call, a ticket filed for
  a caller) say so on the field. A maintenance window or an outage touches contracts in several
  zones, so it is typed in the staff member's own.
- install() makes Django's admin show date-times and durations as the portal does (its lists and
  read-only fields go through django.contrib.admin.utils.display_for_field/display_for_value, which
  print "9 Dec 2026, 8 p.m." and "1 day, 12:00:00"), and gives every date-time field of the admin
  a widget that names its zone (ZonedSplitDateTime) and every duration field one that takes and
  shows "36 h" (DurationInWords). Called once, before the admin registers its
  models (portal.site.apps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.conf import settings
from django.contrib.admin import helpers, options, utils
from django.contrib.admin.templatetags import admin_list
from django.contrib.admin.widgets import AdminSplitDateTime
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from portal.core import django_speedups
from portal.domain.formats import duration, duration_parsed, in_tz


def staff_zone(user) -> str:
    """The timezone a staff member works in: their own, else the server's (UTC)."""
    zone = getattr(user, "timezone", "") or settings.TIME_ZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return settings.TIME_ZONE
    return zone


class StaffTimezoneMiddleware:
    """A staff member's requests to the staff site run in their own timezone (customers' pages name their contract's
    zone on every moment and never depend on the current one)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Only the staff site asks who is signed in: reading request.user reads the session, which
        # makes every response "Vary: Cookie" (the public status page's would no longer be shared
        # by caches).
        if not request.path.startswith(reverse("admin:index")):
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return self.get_response(request)
        with timezone.override(staff_zone(user)):
            return self.get_response(request)  # the response is rendered inside: templates too


def shown(value):
    """A date-time or duration as the portal writes it, else None (Django's own display then)."""
    if isinstance(value, datetime):
        return in_tz(value, timezone.get_current_timezone_name())
    if isinstance(value, timedelta):
        return duration(value)
    return None


class ZonedSplitDateTime(AdminSplitDateTime):
    """The admin's date and time inputs, with the zone they are read in and the value in UTC; their
    "Date:" and "Time:" are the inputs' labels (a screen reader named neither)."""

    template_name = "admin/widgets/zoned_split_datetime.html"

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        zone = timezone.get_current_timezone_name()
        note = f"{zone} time" + (" (UTC)" if zone == "UTC" else "")
        if isinstance(value, datetime):
            note += f": {in_tz(value, zone)}, {value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        head, _, tail = html.rpartition("</p>")  # inside Django's <p class="datetime">, under the inputs
        return format_html('{}<br><span class="zone-note">{}</span></p>{}', mark_safe(head), note, mark_safe(tail))


class DurationInWords(forms.DurationField):
    """A duration as the SLAs write it ("36 h", "4 h 30 min"), typed so or in Django's own form
    ("1 12:00:00", still read), never shown as a timedelta's text."""

    def prepare_value(self, value):
        return duration(value) if isinstance(value, timedelta) else value

    def to_python(self, value):
        parsed = duration_parsed(value) if isinstance(value, str) else None
        return parsed if parsed is not None else super().to_python(value)


def install() -> None:
    display_for_field, display_for_value = utils.display_for_field, utils.display_for_value
    if getattr(display_for_field, "portal_times", False):
        return

    def field_display(value, field, empty_value_display, avoid_link=False):
        if value is not None and not getattr(field, "flatchoices", None):
            text = shown(value)
            if text is not None:
                return text
        return display_for_field(value, field, empty_value_display, avoid_link)

    def value_display(value, empty_value_display, boolean=False):
        text = None if boolean else shown(value)
        return display_for_value(value, empty_value_display, boolean) if text is None else text

    field_display.portal_times = True
    utils.display_for_field, utils.display_for_value = field_display, value_display
    admin_list.display_for_field, admin_list.display_for_value = field_display, value_display
    helpers.display_for_field = field_display
    django_speedups.display_for_value = value_display  # the queue's rows, as Django's
    options.FORMFIELD_FOR_DBFIELD_DEFAULTS[models.DateTimeField]["widget"] = ZonedSplitDateTime
    options.FORMFIELD_FOR_DBFIELD_DEFAULTS[models.DurationField] = {"form_class": DurationInWords}
