"""The secret of an organisation's iCal feed of maintenance windows (contracts/maintenance_views.py
writes the feed from selectors.organisation_windows)."""

from __future__ import annotations

import re
import secrets

from ..models import Organisation

ICAL_TOKEN_BYTES = 32
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
