"""The fixed statements written out for the inbound reply's path: the locked read of a ticket
(tickets.services.locked_ticket) and the rows of its clock (tickets.history.clock_rows) read what
the ORM reads, aware moments included, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from tickets.history import PauseRow, clock_rows
from tickets.models import EscalationRequest, SLACrossing, Ticket, TicketPause
from tickets.services import locked_ticket

from .test_inbound import LATER, RECEIVED, frozen, mail, take  # noqa: F401 - frozen: the fixture, used by name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


def filed(n: int) -> Ticket:
    return Ticket.objects.get(pk=take(mail(message_id=f"<r{n}@acme.example>", subject=f"Job {n}")).ticket_id)


def test_the_locked_read_is_the_tickets_own_row(acme_contract, alice):
    ticket = filed(1)
    with transaction.atomic():
        locked = locked_ticket(ticket.pk, Ticket.Kind.SUPPORT)
        assert locked is not None and not locked._state.adding
        fields = [f.attname for f in Ticket._meta.concrete_fields]
        assert [getattr(locked, f) for f in fields] == [getattr(ticket, f) for f in fields]
        assert locked.created_by == alice  # what it relates to is read when used
        assert locked_ticket(ticket.pk, Ticket.Kind.SECURITY) is None
        assert locked_ticket(ticket.pk + 1000, Ticket.Kind.SUPPORT) is None


def test_the_clock_rows_are_those_of_each_table(acme_contract, alice):
    ticket, other, quiet = filed(1), filed(2), filed(3)
    hour = timedelta(hours=1)
    TicketPause.objects.create(ticket=ticket, reason="resolved", started_at=LATER, ended_at=None)
    TicketPause.objects.create(ticket=ticket, reason="waiting", started_at=RECEIVED, ended_at=RECEIVED + hour)
    TicketPause.objects.create(ticket=other, reason="waiting", started_at=RECEIVED, ended_at=None)
    pending = EscalationRequest.objects.create(
        ticket=ticket, requested_by=alice, requested_at=RECEIVED, reason="r", ack_due=LATER, ack_warn_at=None
    )
    EscalationRequest.objects.create(ticket=ticket, requested_by=alice, requested_at=RECEIVED, reason="r",
                                     acknowledged_at=LATER)  # fmt: skip
    SLACrossing.objects.create(
        ticket=other, clock="first_response", kind="breach", at=LATER, recorded_at=LATER, priority="P2", deadline=LATER
    )

    rows = clock_rows([ticket.pk, other.pk, quiet.pk])

    assert rows[ticket.pk].pauses == [
        PauseRow("waiting", RECEIVED, RECEIVED + hour), PauseRow("resolved", LATER, None),
    ]  # fmt: skip
    assert [(r.pk, r.requested_at, r.ack_due, r.ack_warn_at) for r in rows[ticket.pk].requests] == [
        (pending.pk, RECEIVED, LATER, None)
    ]
    assert rows[ticket.pk].pauses[0].started_at.utcoffset() == timedelta(0)  # aware, as the ORM reads it
    assert (rows[ticket.pk].recorded, rows[other.pk].recorded) == ([], [("first_response", "breach", "P2", LATER)])
    assert rows[other.pk].recorded[0].deadline.utcoffset() == timedelta(0)
    assert rows[other.pk].pauses == [PauseRow("waiting", RECEIVED, None)] and rows[other.pk].requests == []
    assert rows[quiet.pk] == ([], [], [])
    assert clock_rows([]) == {}
