"""The webhook events of tickets (docs/webhooks.md): what the services and sweeps report through the
one ground function, portal.core.webhooks.webhooks_emit, in the change's transaction.

- ticket.filed: a customer filed it; ticket.updated: a status move, a priority change, a public
  reply, an exclusion, an escalation request or its acknowledgement (`change` says which);
  ticket.escalated: the sweep or staff moved it up the ladder; ticket.breached: the sweep
  recorded a breach. Internal notes and assignment are staff's own and report nothing.
- ticket.at_risk goes to the vendor's own endpoints (its on-call tool), not to customers': a P1
  whose first response has only the at-risk share of its allowance left.
- The data is read from the ticket's stored columns only: no query per event. Vulnerability
  reports belong to no customer and report nothing.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.urls import reverse

from contracts.choices import Priority
from portal.core.webhooks import HookEvent, webhooks_emit
from portal.models import WebhookEvent

from .models import Ticket


def ticket_data(ticket: Ticket) -> dict:
    return {
        "id": ticket.pk,
        "number": ticket.number,
        "url": settings.PORTAL_BASE_URL + reverse("ticket-detail", args=[ticket.pk]),
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "contract": ticket.contract_id,
        "service": ticket.service_id,
        "filed_at": ticket.filed_at,
        "channel": ticket.channel,
        "first_response_due": ticket.first_response_due,
        "first_response_at": ticket.first_response_at,
        "resolution_target": ticket.resolution_target_at,
        "resolution_due": ticket.resolution_due,
        "resolved_at": ticket.resolved_at,
        "paused": ticket.paused,
        "breached": ticket.breached,
        "excluded": bool(ticket.excluded_cause),
        "escalation_level": ticket.escalation_level,
        "next_escalation_due": ticket.next_escalation_due,
    }


def ticket_event(ticket: Ticket, event: str, key: str, **details) -> HookEvent | None:
    """The event for one ticket, or None for a vulnerability report. `key` names the cause (the
    email keys' style: "ticket:12:reply:40"): a cause reported twice is delivered once."""
    if ticket.kind != Ticket.Kind.SUPPORT:
        return None
    return HookEvent(
        organisation_id=ticket.organisation_id, event=event, key=key, data={"ticket": ticket_data(ticket), **details}
    )


def ticket_filed(ticket: Ticket) -> HookEvent | None:
    return ticket_event(ticket, WebhookEvent.TICKET_FILED, f"ticket:{ticket.pk}:filed")


def ticket_updated(ticket: Ticket, key: str, change: str, **details) -> HookEvent | None:
    return ticket_event(ticket, WebhookEvent.TICKET_UPDATED, key, change={"kind": change, **details})


def ticket_escalated(ticket: Ticket, old: int, new: int) -> HookEvent | None:
    return ticket_event(
        ticket,
        WebhookEvent.TICKET_ESCALATED,
        f"ticket:{ticket.pk}:escalation:{new}",
        escalation={"from": old, "to": new},
    )


def ticket_breached(ticket: Ticket, clock: str, deadline: datetime) -> HookEvent | None:
    return ticket_event(
        ticket, WebhookEvent.TICKET_BREACHED, f"ticket:{ticket.pk}:crossing:{clock}:breach",
        breach={"clock": clock, "deadline": deadline},
    )  # fmt: skip


def ticket_at_risk(ticket: Ticket, clock: str, deadline: datetime, left) -> HookEvent | None:
    """A P1's first response at risk, for the vendor's own endpoints (its on-call tool; no
    organisation's): the ticket, its deadline and the working time left, with the admin's link."""
    if ticket.kind != Ticket.Kind.SUPPORT or ticket.priority != Priority.P1 or clock != "first_response":
        return None
    admin_url = settings.PORTAL_BASE_URL + reverse("admin:tickets_ticket_change", args=[ticket.pk])
    return HookEvent(
        organisation_id=None, event=WebhookEvent.TICKET_AT_RISK, key=f"ticket:{ticket.pk}:crossing:{clock}:at_risk",
        data={
            "ticket": {**ticket_data(ticket), "organisation": ticket.organisation.name, "admin_url": admin_url},
            "at_risk": {"clock": clock, "deadline": deadline, "working_seconds_left": int(left.total_seconds())},
        },
    )  # fmt: skip


def emit(events: list[HookEvent | None], now: datetime) -> int:
    return webhooks_emit(events=[e for e in events if e is not None], now=now)
