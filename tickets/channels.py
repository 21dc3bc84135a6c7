"""Support by phone (and by a person's inbox): staff log a call on a ticket, and file a ticket for a
customer who called or emailed someone instead of support. Kaluari's escalation levels 2-4 are
phone calls; PRODUCT.md "Support channels".

- A call that answers the customer (outbound, shown to them) is the ticket's first response **at
  the call's time**, not when it was typed: the clocks are derived again through the one
  derivation (tickets.recompute.ticket_recompute, tickets.deadlines.ticket_deadlines), audited with
  the columns before and after. A first-response breach the sweep already recorded stands (as
  every recorded crossing does, docs/decisions.md).
- A ticket filed for a caller starts its clock when the customer reached us (not in the future, at
  most FILED_FOR_MAX_AGE ago), on the SLA version in force then; the customer gets the usual
  receipt and sees it in the portal. Audited, with the support-contact override if staff used one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from contracts.people.support import NotASupportContact, support_contact_check
from portal.core.audit import audit

from . import hooks, notify
from .models import SLACrossing, Ticket, TicketCall, TicketEvent
from .services import (
    Status,
    TicketError,
    _acknowledge,
    _event,
    _locked,
    _save,
    _set_status,
    filing_terms,
    has_control_characters,
    ticket_create,
)

FILED_FOR_MAX_AGE = timedelta(days=7)  # older contacts are not a ticket's start any more: ask them to file
CALL_MAX_DURATION = timedelta(hours=12)
# The clock columns a call's first response can move: shown before and after in its audit entry.
AUDITED_COLUMNS = (
    "first_response_at",
    "first_response_due",
    "at_risk_at",
    "next_deadline",
    "next_sla_check_at",
    "status",
)


def _columns(ticket: Ticket) -> dict:
    return {name: getattr(ticket, name) for name in AUDITED_COLUMNS}


@transaction.atomic
def ticket_call_log(
    *, ticket: Ticket, actor, direction: str, started_at: datetime, duration: timedelta, notes: str = "",
    internal: bool = False, answered: bool = False, contact=None, contact_name: str = "", now: datetime | None = None,
) -> TicketCall:  # fmt: skip
    """Record a call on a ticket. `answered`: an outbound call that answered the customer, which is
    the first response at `started_at` when nobody answered them earlier."""
    now = now or timezone.now()
    ticket = _locked(ticket)
    contact_name = contact_name.strip()
    if direction not in TicketCall.Direction.values:
        raise TicketError("Inbound or outbound?", field="direction")
    if started_at > now:
        raise TicketError("The call cannot start in the future.", field="started_at")
    if started_at < ticket.filed_at:
        raise TicketError("The call cannot start before the ticket was filed.", field="started_at")
    if not timedelta(0) <= duration <= CALL_MAX_DURATION:
        raise TicketError("A call lasts between 0 minutes and 12 hours.", field="duration")
    if contact is not None and (contact.is_staff or contact.organisation_id != ticket.organisation_id):
        raise TicketError("Choose one of the ticket's organisation's people.", field="contact")
    if contact is None and not contact_name:
        raise TicketError(
            "Say with whom: one of the organisation's people, or a name and number.", field="contact_name"
        )
    if has_control_characters(contact_name):
        raise TicketError("The name and number must be a single line.", field="contact_name")
    if answered and direction != TicketCall.Direction.OUTBOUND:
        raise TicketError("Only a call we made answers the customer.", field="answered")
    if answered and internal:
        raise TicketError("A call that answers the customer is shown to them: untick internal.", field="internal")
    call = TicketCall.objects.create(
        ticket=ticket, direction=direction, contact=contact, contact_name="" if contact else contact_name,
        started_at=started_at, duration=duration, notes=notes, internal=internal, answered=answered,
        logged_by=actor, logged_at=now,
    )  # fmt: skip
    _event(ticket, TicketEvent.Kind.CALL, now=now, actor=actor, call=call.pk, direction=direction,
           started_at=started_at.isoformat(), internal=internal, answered=answered)  # fmt: skip
    before, fields = _columns(ticket), []
    first = answered and (ticket.first_response_at is None or started_at < ticket.first_response_at)
    if first:
        ticket.first_response_at = started_at
        fields.append("first_response_at")
        if ticket.status == Status.NEW:
            _set_status(ticket, Status.OPEN, actor=actor, now=now)  # audited like any move
            fields.append("status")
    if answered:
        # The call answered the customer as a public reply would: it acknowledges the escalation
        # requests they made before it ended, as of the call (not before the request).
        for request in ticket.escalation_requests.filter(
            acknowledged_at__isnull=True, requested_at__lte=started_at + duration
        ):
            _acknowledge(ticket, request, actor, now, at=max(started_at, request.requested_at))
    _save(ticket, fields, now=now)
    if first:
        # A breach recorded before the call was logged stands: its row, its email, the ticket's
        # `breached` (docs/decisions.md, "A call as the first response").
        recorded = SLACrossing.objects.filter(ticket=ticket, clock="first_response", kind="breach").exists()
        audit(
            actor=actor, action="ticket.first_response_by_call", target=ticket, before=before,
            after={**_columns(ticket), "call": call.pk, "breach_recorded_stands": recorded}, now=now,
        )  # fmt: skip
    if not internal:
        key = f"ticket:{ticket.pk}:call:{call.pk}"
        data = {
            "id": call.pk, "direction": direction, "started_at": started_at,
            "duration_seconds": int(duration.total_seconds()), "notes": notes, "answered": answered,
        }  # fmt: skip
        hooks.emit([hooks.ticket_updated(ticket, key, "call", call=data)], now)
    return call


@transaction.atomic
def ticket_file_for_customer(
    *, actor, customer, contract, service, priority: str | None, subject: str, description: str, channel: str,
    reached_at: datetime, override: bool = False, now: datetime | None = None,
) -> Ticket:  # fmt: skip
    """Staff file a ticket for `customer`, who reached us at `reached_at` by `channel` (a call, an
    email to a person). Its clock starts then. A customer who is not a designated support contact of
    the contract is refused unless staff confirm the override (audited)."""
    now = now or timezone.now()
    if channel not in Ticket.Channel.values:
        raise TicketError("Choose how the customer reached us.", field="channel")
    if customer.is_staff or not customer.organisation_id:
        raise TicketError("Choose a customer's person.", field="customer")
    if customer.organisation_id != contract.organisation_id:
        raise TicketError("The contract must be one of the customer's organisation's.", field="contract")
    if not customer.is_active:
        raise TicketError("This person is deactivated: file the ticket for an active person.", field="customer")
    if reached_at > now:
        raise TicketError("The customer cannot have reached us in the future.", field="reached_at")
    if reached_at < now - FILED_FOR_MAX_AGE:
        raise TicketError("At most 7 days ago: older requests are filed as they arrive now.", field="reached_at")
    designated = True
    try:
        support_contact_check(user=customer, contract=contract)
    except NotASupportContact:
        designated = False
        if not override:
            raise TicketError(
                f"{customer.get_full_name()} is not a designated support contact of {contract.reference}: "
                "confirm the override to file it anyway (it is audited).",
                field="override",
            ) from None
    version, terms, priority = filing_terms(
        contract=contract, service=service, priority=priority, subject=subject, at=reached_at
    )
    ticket = ticket_create(
        user=customer, actor=actor, contract=contract, service=service, version=version, terms=terms,
        priority=priority, subject=subject, description=description, steps_to_reproduce="",
        kind=Ticket.Kind.SUPPORT, now=now, filed_at=reached_at, channel=channel,
    )  # fmt: skip
    audit(
        actor=actor, action="ticket.filed_for_customer", target=ticket, before={},
        after={
            "customer": customer.email, "contract": contract.reference, "channel": channel, "priority": priority,
            "reached_at": reached_at, "support_contact_override": not designated,
            "first_response_due": ticket.first_response_due, "resolution_due": ticket.resolution_due,
        },
        now=now,
    )  # fmt: skip
    notify.ticket_filed(ticket, ctx={"version": version, "term": terms.term(version.pk, priority)}, now=now)
    hooks.emit([hooks.ticket_filed(ticket)], now)
    return ticket
