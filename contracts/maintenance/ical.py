"""Maintenance windows as iCalendar: the secret of an organisation's feed, the feed itself
(contracts/maintenance_views.py serves it from selectors.organisation_windows), and the .ics a
notice carries. Both calendars take each window's event from `window_event`, so a window has one
UID and one SEQUENCE (its revision) wherever a calendar meets it: the notice's file and the feed
update the same event.

The calendar rules (RFC 5545): SEQUENCE is the window's `sequence`, one more on every change a
calendar shows, the cancellation included, and never lower than the revision numbers served before
it was stored (for a notice written before then: `window_identity`). In the feed, which carries no
METHOD, DTSTAMP (and LAST-MODIFIED) is the moment the event last changed, so an unchanged feed is
the same bytes; the notice's file, METHOD:PUBLISH, is stamped with the moment its email was
written and names its ORGANIZER, the sender (RFC 5546 3.2.1). The feed names its refresh interval (RFC 7986 REFRESH-INTERVAL, and X-PUBLISHED-TTL for
Outlook)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.urls import reverse
from icalendar import Calendar, Event, vCalAddress, vDuration

from ..models import MaintenanceWindow, Organisation

ICAL_TOKEN_BYTES = 32
REFRESH = timedelta(hours=1)  # how often a calendar should fetch the feed again
ICAL_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")  # secrets.token_urlsafe's alphabet


def organisation_by_ical_token(*, token: str) -> Organisation | None:
    """The organisation whose feed this secret opens; an empty, short or malformed token opens
    nothing. Only token_urlsafe's alphabet reaches the query (a NUL, `%00` in the URL, is a
    DataError on PostgreSQL: it was a 500)."""
    if len(token) < ICAL_TOKEN_BYTES or not ICAL_TOKEN_RE.fullmatch(token):
        return None
    return Organisation.objects.filter(ical_token=token).first()


def organisation_ical_rotate(*, organisation: Organisation) -> str:
    """A new secret for the feed; the old URL stops working at once."""
    organisation.ical_token = secrets.token_urlsafe(ICAL_TOKEN_BYTES)
    organisation.save(update_fields=["ical_token"])
    return organisation.ical_token


def organisation_ical_revoke(*, organisation: Organisation) -> None:
    organisation.ical_token = ""
    organisation.save(update_fields=["ical_token"])


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


def window_identity(window: MaintenanceWindow) -> tuple[str, int]:
    """(UID, SEQUENCE) of a window's event: the UID stable for the window, the sequence one more on
    every change (RFC 5545 3.8.7.4: a change of STATUS is a new sequence, so a calendar that imported
    the notice's file takes the cancellation). Never below what the revision gave before the
    sequence was stored (its revision, one more once cancelled): a notice frozen then says that."""
    cancelled = window.status == MaintenanceWindow.Status.CANCELLED
    sequence = max(window.sequence or 0, window.revision + (1 if cancelled else 0))
    return f"maintenance-{window.pk}@{settings.MESSAGE_ID_DOMAIN}", sequence


def changed_at(window: MaintenanceWindow) -> datetime:
    """When the window's event last changed (its DTSTAMP in the feed)."""
    return window.changed_at or window.cancelled_at or window.published_at


def window_event(window: MaintenanceWindow, services, *, stamp: datetime, gone: bool = False) -> Event:
    """One window as a VEVENT, times in UTC. Names are one line, descriptions lines of text:
    nothing raw that RFC 5545 forbids in a value. `gone`: cancelled for this reader (the window no
    longer touches their services), as their feed no longer lists it."""
    cancelled = gone or window.status == MaintenanceWindow.Status.CANCELLED
    page = settings.PORTAL_BASE_URL + reverse("maintenance-list")
    uid, sequence = window_identity(window)
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("last-modified", changed_at(window).astimezone(UTC))
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
    return event


def _calendar(name: str = "") -> Calendar:
    cal = Calendar()
    cal.add("prodid", "-//SLA Portal//Maintenance//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if name:
        cal.add("x-wr-calname", name)
    return cal


def feed_calendar(organisation: Organisation, windows) -> bytes:
    """An organisation's feed: one VEVENT per (window, services), each stamped with its last change;
    no METHOD (RFC 5545 3.7.2: a calendar published as a file or feed is no scheduling message)."""
    cal = _calendar(f"{_one_line(organisation.name)}: maintenance")
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(REFRESH))
    for window, services in windows:
        cal.add_component(window_event(window, services, stamp=changed_at(window)))
    return cal.to_ical()


NOTICE_FILENAME = "maintenance.ics"


def notice_attachment(context: dict, written_at: datetime) -> tuple[str, bytes, str]:
    """The .ics of a maintenance email (registered as "maintenance.ics", portal.core.email_parts):
    the window as its notice saw it (the frozen context: that revision's times and SEQUENCE),
    METHOD:PUBLISH, stamped with the moment the email was written, so a retry sends the same bytes.
    A notice that the window no longer affects the reader cancels the event their first one added."""
    cal = _calendar()
    cal.add("method", "PUBLISH")
    gone = context.get("affected") is False
    event = window_event(context["window"], context["services"], stamp=written_at, gone=gone)
    event.add("organizer", *_organizer())
    cal.add_component(event)
    return NOTICE_FILENAME, cal.to_ical(), "text/calendar"


def _organizer() -> tuple[vCalAddress, dict]:
    """The notice's ORGANIZER, which iTIP's PUBLISH requires (RFC 5546 3.2.1): the sender the email
    comes from (DEFAULT_FROM_EMAIL, its name as CN)."""
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return vCalAddress(f"mailto:{address}"), ({"CN": _one_line(name)} if name.strip() else {})
