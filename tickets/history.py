"""What the clock of a ticket is derived from, read from its rows: its history (filing, the pauses
while it waited on the customer or was resolved, the first response) for tickets.deadlines, the
rows of many tickets' clocks in one query (pauses, pending escalation requests, recorded crossings),
and the moment it was resolved. tickets.recompute derives the clock columns from these."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db.models import CharField, DateTimeField, Value
from django.db.models.functions import Cast

from . import deadlines
from .models import EscalationRequest, SLACrossing, Ticket, TicketPause

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


class ClockRows(NamedTuple):
    pauses: list[PauseRow]  # by start
    requests: list[EscalationRequest]  # the pending ones: pk, requested_at and their clock columns only
    recorded: list[tuple[str, str]]  # (clock, kind) of the recorded crossings


_TEXT, _MOMENT = CharField(), DateTimeField()
_NO_TEXT, _NO_MOMENT = Cast(Value(None), _TEXT), Cast(Value(None), _MOMENT)  # typed: PostgreSQL's UNION


def clock_rows(ids) -> dict[int, ClockRows]:
    """The rows besides the ticket's own that its clock columns are derived from, for many tickets
    in one query (a UNION ALL of the three tables: one round trip, not three, for every change of a
    ticket). Every id asked for has its entry, empty lists for a ticket without such rows."""
    ids = list(ids)
    pauses = TicketPause.objects.filter(ticket_id__in=ids).values_list(
        Value("p", _TEXT), "ticket_id", "id", "reason", _NO_TEXT, "started_at", "ended_at", _NO_MOMENT
    )
    requests = EscalationRequest.objects.filter(ticket_id__in=ids, acknowledged_at__isnull=True).values_list(
        Value("r", _TEXT), "ticket_id", "id", _NO_TEXT, _NO_TEXT, "requested_at", "ack_due", "ack_warn_at"
    )
    crossings = SLACrossing.objects.filter(ticket_id__in=ids).values_list(
        Value("c", _TEXT), "ticket_id", "id", "clock", "kind", _NO_MOMENT, _NO_MOMENT, _NO_MOMENT
    )
    found = {pk: ClockRows([], [], []) for pk in ids}
    ordered_pauses = []
    rows = pauses.order_by().union(requests.order_by(), crossings.order_by(), all=True)
    for table, ticket_id, pk, text_1, text_2, moment_1, moment_2, moment_3 in rows:
        rows_of = found[ticket_id]
        if table == "p":
            ordered_pauses.append((moment_1, pk, ticket_id, PauseRow(text_1, moment_1, moment_2)))
        elif table == "r":
            rows_of.requests.append(
                EscalationRequest(
                    pk=pk, ticket_id=ticket_id, requested_at=moment_1, ack_due=moment_2, ack_warn_at=moment_3
                )
            )
        else:
            rows_of.recorded.append((text_1, text_2))
    for *_, ticket_id, pause in sorted(ordered_pauses, key=lambda p: p[:2]):
        found[ticket_id].pauses.append(pause)
    for rows_of in found.values():
        rows_of.requests.sort(key=lambda r: (r.requested_at, r.pk))
    return found


def resolved_moment(ticket: Ticket) -> datetime | None:
    return ticket.resolved_at if ticket.status in (Status.RESOLVED, Status.CLOSED) else None


def at_risk_share(priority: str) -> float:
    """The vendor-wide at-risk share of a priority's allowance (settings.SLA_AT_RISK_SHARE)."""
    return settings.SLA_AT_RISK_SHARE[priority]
