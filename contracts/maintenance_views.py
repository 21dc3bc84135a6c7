"""Maintenance for customers: the page of their organisation's windows (upcoming and past), and
an iCal feed at a secret URL that a customer admin creates, rotates or turns off. Reads come from
contracts.maintenance, scoped to the user's organisation; the feed, which has no login, to the
organisation whose secret it is."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from icalendar import Calendar, Event

from portal.core.roles import CustomerRole

from .maintenance.ical import organisation_by_ical_token, organisation_ical_revoke, organisation_ical_rotate
from .maintenance.selectors import PAST_DAYS, organisation_maintenance, organisation_windows
from .models import MaintenanceWindow


def _feed_url(organisation) -> str:
    if not organisation.ical_token:
        return ""
    return settings.PORTAL_BASE_URL + reverse("maintenance-ical", args=[organisation.ical_token])


def _is_customer_admin(user) -> bool:
    return user.is_customer and user.customer_role == CustomerRole.ADMIN


@login_required
@require_GET
def maintenance_list(request):
    if not request.user.is_customer:
        return redirect("admin:index")  # staff schedule maintenance in the admin
    organisation = request.user.organisation
    upcoming, past = organisation_maintenance(organisation_id=organisation.pk, now=timezone.now())
    return render(
        request,
        "contracts/maintenance_list.html",
        {
            "upcoming": upcoming,
            "past": past,
            "past_days": PAST_DAYS,
            "feed_url": _feed_url(organisation),
            "can_manage_feed": _is_customer_admin(request.user),
        },
    )


# A member (or anyone but a customer admin) who posts here is refused with 403: the page they
# come from is theirs too, only the role is missing. The organisation is always the user's own.
@login_required
@require_POST
def maintenance_ical_rotate(request):
    if not _is_customer_admin(request.user):
        raise PermissionDenied("Only a customer admin can change the calendar feed.")
    had_one = bool(request.user.organisation.ical_token)
    organisation_ical_rotate(organisation=request.user.organisation)
    messages.success(
        request,
        "A new calendar feed URL is ready; the old one no longer works." if had_one else "Your calendar feed is ready.",
    )
    return redirect("maintenance-list")


@login_required
@require_POST
def maintenance_ical_revoke(request):
    if not _is_customer_admin(request.user):
        raise PermissionDenied("Only a customer admin can change the calendar feed.")
    organisation_ical_revoke(organisation=request.user.organisation)
    messages.success(request, "The calendar feed is turned off; its URL no longer works.")
    return redirect("maintenance-list")


@require_GET
def maintenance_ical(request, token: str):
    organisation = organisation_by_ical_token(token=token)
    if organisation is None:
        raise Http404("No such calendar feed.")
    now = timezone.now()
    windows = organisation_windows(organisation_id=organisation.pk, since=now - timedelta(days=PAST_DAYS))
    response = HttpResponse(_calendar(organisation, windows, now), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="maintenance.ics"'
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response


# Line breaks as Python's str.splitlines() knows them (CR, LF, VT, FF, FS, GS, RS, NEL, LS, PS).
_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
# Other control characters, which RFC 5545 allows in no text value (3.3.11); a tab is a space here.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


def _one_line(text: str) -> str:
    """A name as one line: its line breaks (and tabs) folded into a space, control characters
    dropped. An organisation's name with a CR/LF made icalendar refuse X-WR-CALNAME (a 500), and a
    lone CR went out raw in a summary."""
    return " ".join(_CONTROLS.sub("", _BREAKS.sub(" ", text.replace("\t", " "))).split())


def _lines(text: str) -> str:
    """A description keeps its lines, as LF (icalendar escapes them); control characters dropped."""
    return _CONTROLS.sub("", _BREAKS.sub("\n", text))


def _calendar(organisation, windows, now: datetime) -> bytes:
    """One VEVENT per window: a stable UID, SEQUENCE = its revision, times in UTC. Names are one
    line, descriptions lines of text: nothing raw that RFC 5545 forbids in a value."""
    cal = Calendar()
    cal.add("prodid", "-//SLA Portal//Maintenance//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"{_one_line(organisation.name)}: maintenance")
    page = settings.PORTAL_BASE_URL + reverse("maintenance-list")
    for window, services in windows:
        cancelled = window.status == MaintenanceWindow.Status.CANCELLED
        event = Event()
        event.add("uid", f"maintenance-{window.pk}@{settings.MESSAGE_ID_DOMAIN}")
        event.add("sequence", window.revision)
        event.add("dtstamp", now.astimezone(UTC))
        event.add("last-modified", (window.cancelled_at or window.published_at).astimezone(UTC))
        event.add("dtstart", window.starts_at.astimezone(UTC))
        event.add("dtend", window.ends_at.astimezone(UTC))
        event.add("summary", f"{'Cancelled: ' if cancelled else ''}Maintenance: {_one_line(window.title)}")
        event.add(
            "description",
            f"Services: {', '.join(_one_line(s.name) for s in services)}\n"
            f"Impact: {window.get_impact_display()}\n\n{_lines(window.description)}\n\n{page}",
        )
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        event.add("transp", "TRANSPARENT")
        event.add("url", page)
        cal.add_component(event)
    return cal.to_ical()
