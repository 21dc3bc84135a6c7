"""Canned replies: who sees and keeps which, their placeholders, and a reply filled for a ticket.

A reply is personal (its owner alone sees, uses and edits it) or a team's, a team being a staff
role (its group in portal.core.roles): the group's members use it, and those who hold
`tickets.manage_team_replies` (support leads and managers) keep the replies of every team.
Placeholders are `{{ name }}` from PLACEHOLDERS only (portal.domain.placeholders: no other syntax,
nothing evaluated); a reply with any other is refused when it is saved. A reply is filled on the
server for one ticket, its deadlines read from the ticket's stored clocks (the one derivation,
tickets.deadlines) and written in the contract's timezone as the rest of the portal writes them.
The agent edits the filled text and sends it through the reply form (tickets.services.ticket_reply)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q, QuerySet

from portal.domain.formats import in_tz
from portal.domain.placeholders import fill, problems, used

from .models import CannedReply, Ticket
from .selectors import ticket_clock_views

MANAGE_TEAM_REPLIES = "tickets.manage_team_replies"

# Each placeholder and what it is filled with (shown beside the reply's text when it is written).
PLACEHOLDERS = {
    "customer_name": "the name of the person who filed the ticket (a vulnerability report: the reporter's)",
    "organisation": "the customer's organisation",
    "ticket_number": "the ticket's number, as #42",
    "subject": "the ticket's subject",
    "first_response_due": "when the first response is due, in the contract's timezone",
    "resolution_target": "the resolution target, in the contract's timezone",
    "resolution_due": "the resolution limit (the deadline), in the contract's timezone",
    "next_deadline": "the next pending deadline, in the contract's timezone",
    "timezone": "the contract's timezone (Africa/Nairobi)",
    "escalation_level": "the ticket's escalation level now (1, 2...)",
    "escalation_contact": "whom the customer reaches at that level, and how",
    "agent_name": "your name (the staff member inserting the reply)",
}


class CannedReplyError(Exception):
    pass


def placeholder_problems(body: str) -> list[str]:
    return problems(body, PLACEHOLDERS)


def placeholders_left(body: str, filled: Iterable[str] = ()) -> list[str]:
    """The placeholders a text about to be sent still holds (unfilled). `filled`: the values a
    canned reply is filled with for the ticket (canned_values): a placeholder's spelling inside one
    (a customer's subject "prints {{ customer_name }} literally") is the customer's words, not one
    of the reply's own left unfilled."""
    for value in sorted({v for v in filled if v}, key=len, reverse=True):
        body = body.replace(value, "\0")  # a separator: what is left on either side never joins
    return used(body, PLACEHOLDERS)


# --- Who sees and keeps what -----------------------------------------------------------------------
def canned_for(user) -> QuerySet[CannedReply]:
    """The replies `user` may insert: their own, and their teams' (one query)."""
    if not getattr(user, "is_authenticated", False) or not user.is_staff:
        return CannedReply.objects.none()
    return CannedReply.objects.filter(Q(owner=user) | Q(team__user=user)).select_related("team")


def canned_listed(user) -> QuerySet[CannedReply]:
    """The replies the admin lists for `user`: those they may insert and, for those who keep the
    teams' replies, every team's. Another person's personal replies never."""
    if user.has_perm(MANAGE_TEAM_REPLIES):
        return CannedReply.objects.filter(Q(owner=user) | Q(team__isnull=False)).select_related("team")
    return canned_for(user)


def may_keep(user, reply: CannedReply | None, op: str) -> bool:
    """Whether `user` may `op` ("change" or "delete") `reply` (None: some reply of theirs)."""
    personal = user.has_perm(f"tickets.{op}_cannedreply")
    if reply is None:
        return personal or user.has_perm(MANAGE_TEAM_REPLIES)
    if reply.owner_id is not None:
        return personal and reply.owner_id == user.pk
    return user.has_perm(MANAGE_TEAM_REPLIES)


# --- A reply filled for a ticket ---------------------------------------------------------------------
def canned_values(ticket: Ticket, user, *, now: datetime | None = None) -> dict[str, str]:
    clock = ticket_clock_views([ticket], now=now)[ticket.pk]
    tz = clock.timezone
    report = getattr(ticket, "security_report", None) if ticket.kind == Ticket.Kind.SECURITY else None
    customer = (report.reporter_name or report.reporter_email) if report else ticket.created_by.get_full_name()
    return {
        "customer_name": customer,
        "organisation": ticket.organisation.name,
        "ticket_number": ticket.number,
        "subject": ticket.subject_line,
        "first_response_due": in_tz(clock.first_response_due, tz),
        "resolution_target": in_tz(clock.resolution_target_at, tz),
        "resolution_due": in_tz(clock.resolution_due, tz),
        "next_deadline": in_tz(clock.next_deadline, tz),
        "timezone": tz,
        "escalation_level": str(clock.escalation_level),
        "escalation_contact": clock.level_contact or clock.level_instruction or "—",
        "agent_name": user.get_full_name(),
    }


def canned_fill(*, reply: CannedReply, ticket: Ticket, user, now: datetime | None = None) -> str:
    """The reply's text with its placeholders filled for `ticket` by `user`."""
    wrong = placeholder_problems(reply.body)
    if wrong:  # saved before a placeholder was withdrawn: never inserted half-filled
        raise CannedReplyError(f"“{reply.name}” cannot be filled: {' '.join(wrong)} Correct it under Canned replies.")
    return fill(reply.body, canned_values(ticket, user, now=now))
