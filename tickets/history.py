"""What the clock of a ticket is derived from, read from its rows: its history (filing, the pauses
while it waited on the customer or was resolved, the first response) for tickets.deadlines, many
tickets' pauses in one query, and the moment it was resolved. tickets.services derives the clock
columns from these."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from django.conf import settings

from . import deadlines
from .models import Ticket, TicketPause

Status = Ticket.Status


def ticket_history(ticket: Ticket, pauses=None) -> deadlines.History:
    pauses = list(ticket.pauses.all()) if pauses is None else pauses
    return deadlines.History(
        filed_at=ticket.filed_at,
        waiting=tuple((p.started_at, p.ended_at) for p in pauses if p.reason == TicketPause.Reason.WAITING),
        resolved=tuple((p.started_at, p.ended_at) for p in pauses if p.reason == TicketPause.Reason.RESOLVED),
        first_response_at=ticket.first_response_at,
    )


class PauseRow(NamedTuple):
    reason: str
    started_at: datetime
    ended_at: datetime | None


def pauses_by_ticket(ids) -> dict[int, list[PauseRow]]:
    """Many tickets' pauses, for ticket_history, as plain rows in one query (a model instance and a
    related manager per pause cost more than deriving the deadlines: bench/RESULTS.md, session 6)."""
    pauses: dict[int, list[PauseRow]] = {}
    rows = TicketPause.objects.filter(ticket_id__in=ids).order_by("started_at", "id")
    for ticket_id, *pause in rows.values_list("ticket_id", "reason", "started_at", "ended_at"):
        pauses.setdefault(ticket_id, []).append(PauseRow(*pause))
    return pauses


def resolved_moment(ticket: Ticket) -> datetime | None:
    return ticket.resolved_at if ticket.status in (Status.RESOLVED, Status.CLOSED) else None


def at_risk_share(priority: str) -> float:
    """The vendor-wide at-risk share of a priority's allowance (settings.SLA_AT_RISK_SHARE)."""
    return settings.SLA_AT_RISK_SHARE[priority]
