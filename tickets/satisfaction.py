"""Customer satisfaction (issue 21, item 4; docs/decisions.md, "Satisfaction ratings"): when a
support ticket is resolved, its filer is emailed once with two links, good and bad. A link opens a
page (tickets.rating_views) with that rating chosen, an optional comment and one button; only the
button's POST records it (mail scanners follow links). One rating per ticket: the link used again
changes it.

The link's token is django.core.signing with a salt of its own, naming the ticket and its filer; it
rates that ticket only, only while the filer's account is active and for RATING_MAX_AGE after the
ticket's latest resolution (a ticket reopened and resolved again is rated with the same links).
The month's figures (good, bad, rated, resolved) are counted with the ticket attainment
(tickets.attainment), beside which the statement and the compliance report show them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from portal.core.audit import audit
from portal.core.notify_rules import About, Kind, recipients
from portal.core.outbox import Email
from portal.core.unsubscribe import BadToken, email_to, signed_read

from . import mail_thread
from .models import Ticket, TicketEvent, TicketPause, TicketRating

__all__ = ["BadToken", "RATING_MAX_AGE", "rating_request", "rating_url", "ticket_rate", "token_read"]

SALT = "tickets.rating"
# A month: long enough for an email read after a holiday, short enough that the rating is about
# the resolution the customer remembers (and an old leaked link stops working).
RATING_MAX_AGE = timedelta(days=30)
Rating = TicketRating.Rating


def token_for(ticket: Ticket) -> str:
    return signing.dumps({"t": ticket.pk, "u": ticket.created_by_id}, salt=SALT)


def rating_url(ticket: Ticket, rating: str | None = None, *, token: str | None = None) -> str:
    """The page that rates `ticket`, with `rating` chosen on it."""
    url = settings.PORTAL_BASE_URL + reverse("ticket-rate", args=[token or token_for(ticket)])
    return f"{url}?rating={Rating(rating).value}" if rating else url


@dataclass(frozen=True)
class RatingTarget:
    ticket: Ticket
    user: object  # the filer, who rates


EXPIRED = f"This rating link has expired: links work for {RATING_MAX_AGE.days} days after the ticket was resolved."


def token_read(token: str, *, now: datetime | None = None) -> RatingTarget:
    """The ticket and filer a token names, or BadToken saying why. The link works for RATING_MAX_AGE
    after the ticket's latest resolution (read now, not the token's own age): the one email's links
    rate a ticket reopened and resolved again, as long after its new resolution."""
    data = signed_read(
        token, salt=SALT, max_age=None, expired=EXPIRED,
        invalid="This rating link is not valid. Copy the whole link from the email.",
    )  # fmt: skip
    try:
        ticket = Ticket.objects.select_related("created_by", "sla_version").get(
            pk=int(data["t"]), created_by_id=int(data["u"]), kind=Ticket.Kind.SUPPORT
        )
    except (KeyError, TypeError, ValueError, Ticket.DoesNotExist):
        raise BadToken("This rating link no longer names a ticket of yours.") from None
    resolved = latest_resolution(ticket)
    if resolved is None or resolved + RATING_MAX_AGE < (now or timezone.now()):
        raise BadToken(EXPIRED)
    if not ticket.created_by.is_active:
        raise BadToken("This rating link belongs to an account that is no longer active.")
    return RatingTarget(ticket, ticket.created_by)


def latest_resolution(ticket: Ticket) -> datetime | None:
    """When the ticket was last resolved: `resolved_at` while it is resolved or closed; reopened, the
    start of its latest resolved span (None: never resolved)."""
    if ticket.resolved_at is not None:
        return ticket.resolved_at
    last = ticket.pauses.filter(reason=TicketPause.Reason.RESOLVED).order_by("-started_at").first()
    return last.started_at if last else None


def rating_request(ticket: Ticket) -> list[Email]:
    """The filer's rating email for a ticket just resolved (contract, organisation and filer
    loaded), or none: not for a vulnerability report, a ticket excluded from the SLA, or a filer the
    rule (portal.core.notify_rules, "updates on my tickets") does not email, which leaves out staff,
    other organisations' people and inactive accounts. Keyed per ticket: one email a ticket, however
    often it is reopened and resolved (its link keeps changing the one rating)."""
    if ticket.kind != Ticket.Kind.SUPPORT or ticket.is_excluded:
        return []
    filer = ticket.created_by
    about = About(organisation_id=ticket.organisation_id, contract=ticket.contract, owner_id=filer.pk)
    found = recipients(Kind.TICKET, users=[filer], about=about)
    if not found:
        return []
    token = token_for(ticket)
    context = {
        "ticket": ticket,
        "good_url": rating_url(ticket, Rating.GOOD, token=token),
        "bad_url": rating_url(ticket, Rating.BAD, token=token),
        "valid_days": RATING_MAX_AGE.days,
    }
    email = email_to(found[0], key=f"ticket:{ticket.pk}:rating", template="ticket_rating", context=context)
    return [replace(email, headers={**mail_thread.headers(ticket, email.to), **email.headers})]


@transaction.atomic
def ticket_rate(*, ticket: Ticket, user, rating: str, comment: str = "", now: datetime | None = None) -> TicketRating:
    """Record the filer's rating of `ticket`, or change the one recorded (audited, and an event on
    the ticket's trail). The same rating and comment again change nothing."""
    now = now or timezone.now()
    rating, comment = Rating(rating).value, comment.strip()
    Ticket.objects.select_for_update().filter(pk=ticket.pk).first()  # two POSTs at once: one after the other
    found = TicketRating.objects.filter(ticket=ticket).first()
    before = {"rating": found.rating, "comment": found.comment} if found else {}
    after = {"rating": rating, "comment": comment}
    if before == after:
        return found
    if found is None:
        found = TicketRating(ticket=ticket, rated_at=now)
    found.rating, found.comment, found.rated_by, found.updated_at = rating, comment, user, now
    found.save()
    TicketEvent.objects.create(ticket=ticket, kind=TicketEvent.Kind.RATED, at=now, actor=user, data=after)
    audit(actor=user, action="ticket.rated", target=ticket, before=before, after=after, now=now)
    return found
