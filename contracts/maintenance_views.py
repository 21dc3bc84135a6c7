"""Maintenance for customers: the page of their organisation's windows (upcoming and past), and
an iCal feed at a secret URL that a customer admin creates, rotates or turns off. Reads come from
contracts.maintenance, scoped to the user's organisation; the feed, which has no login, to the
organisation whose secret it is."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, quote_etag
from django.views.decorators.http import require_GET, require_POST

from portal.core.roles import CustomerRole

from .maintenance.ical import (
    changed_at,
    feed_calendar,
    organisation_by_ical_token,
    organisation_ical_revoke,
    organisation_ical_rotate,
)
from .maintenance.selectors import PAST_DAYS, organisation_maintenance, organisation_windows


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
    windows = list(organisation_windows(organisation_id=organisation.pk, since=now - timedelta(days=PAST_DAYS)))
    body = feed_calendar(organisation, windows)
    # Conditional GET: the feed is the same bytes until an event changes (each is stamped with its
    # last change), so its hash is a strong ETag; Last-Modified is the latest change of an event in it
    # (a window that leaves the feed moves the ETag, which a client that sends it is judged by first).
    etag = quote_etag(hashlib.sha256(body).hexdigest()[:32])
    last = max((changed_at(w) for w, _ in windows), default=None)
    conditional = get_conditional_response(request, etag=etag, last_modified=last and int(last.timestamp()))
    response = conditional or HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["ETag"] = etag
    if last is not None:
        response["Last-Modified"] = http_date(last.timestamp())
    response["Content-Disposition"] = 'inline; filename="maintenance.ics"'
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response
