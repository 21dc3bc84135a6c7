"""What the clock of a ticket is derived from, read from its rows: its history (filing, the pauses
while it waited on the customer or was resolved, the first response) for tickets.deadlines, the
rows of many tickets' clocks in one query (pauses, pending escalation requests, recorded crossings),
and the moment it was resolved. tickets.recompute derives the clock columns from these."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import connection

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
    recorded: list[deadlines.Recorded]  # the recorded crossings (clock, kind, priority, deadline)


def _clock_sql(n: int) -> str:
    """The UNION ALL of the three tables for `n` tickets (their ids given three times). Written
    out, not built by the ORM: its shape never changes, and compiling the ORM's union cost more than
    the rest of an inbound reply's clock (bench/RESULTS.md, session 10). Columns: table, ticket,
    row, three texts, three moments."""
    q, ids = connection.ops.quote_name, ", ".join(["%s"] * n)
    pauses, requests, crossings = (q(m._meta.db_table) for m in (TicketPause, EscalationRequest, SLACrossing))
    return (
        f"SELECT 'p', ticket_id, id, reason, NULL, NULL, started_at, ended_at, NULL FROM {pauses}"
        f" WHERE ticket_id IN ({ids})"
        f" UNION ALL SELECT 'r', ticket_id, id, NULL, NULL, NULL, requested_at, ack_due, ack_warn_at FROM {requests}"
        f" WHERE ticket_id IN ({ids}) AND acknowledged_at IS NULL"
        f" UNION ALL SELECT 'c', ticket_id, id, clock, kind, priority, deadline, NULL, NULL FROM {crossings}"
        f" WHERE ticket_id IN ({ids})"
    )


def _moment():
    """A moment as the ORM reads a DateTimeField (the backend's converters: SQLite returns text)."""
    started_at = TicketPause._meta.get_field("started_at")
    converters = connection.ops.get_db_converters(started_at.get_col(TicketPause._meta.db_table))

    def convert(value):
        for converter in converters:
            value = converter(value, started_at, connection)
        return value

    return convert


def clock_rows(ids) -> dict[int, ClockRows]:
    """The rows besides the ticket's own that its clock columns are derived from, for many tickets
    in one query (a UNION ALL of the three tables: one round trip, not three, for every change of a
    ticket). Every id asked for has its entry, empty lists for a ticket without such rows."""
    ids = list(ids)
    found = {pk: ClockRows([], [], []) for pk in ids}
    if not ids:
        return found
    with connection.cursor() as cursor:
        cursor.execute(_clock_sql(len(ids)), ids * 3)
        rows = cursor.fetchall()
    moment = _moment()
    ordered_pauses = []
    for table, ticket_id, pk, text_1, text_2, text_3, moment_1, moment_2, moment_3 in rows:
        rows_of = found[ticket_id]
        moment_1, moment_2, moment_3 = moment(moment_1), moment(moment_2), moment(moment_3)
        if table == "p":
            ordered_pauses.append((moment_1, pk, ticket_id, PauseRow(text_1, moment_1, moment_2)))
        elif table == "r":
            rows_of.requests.append(
                EscalationRequest(
                    pk=pk, ticket_id=ticket_id, requested_at=moment_1, ack_due=moment_2, ack_warn_at=moment_3
                )
            )
        else:
            rows_of.recorded.append(deadlines.Recorded(text_1, text_2, text_3, moment_1))
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
