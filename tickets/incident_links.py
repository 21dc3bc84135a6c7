"""Tickets linked to incidents: staff link a ticket (one by one or in bulk from the queue), post
one public update to every ticket linked to an incident and resolve them together; a ticket filed
during an open incident on its service is suggested. Every link and unlink is audited."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from contracts.models import Incident, Outage
from portal.core.audit import audit

from .models import Ticket
from .services import TicketError, ticket_reply


def incident_concerns(incident: Incident, ticket: Ticket) -> bool:
    """Whether the incident's outage concerns the ticket's contract: a service of it, and, for a
    customer-scoped outage, the contract among its scope (else the customer could not open it)."""
    outage = incident.outage
    covered = set(ticket.contract.services.values_list("pk", flat=True))
    if not covered & set(outage.services.values_list("pk", flat=True)):
        return False
    return not outage.customer_scoped or outage.contracts.filter(pk=ticket.contract_id).exists()


def _check(incident: Incident, ticket: Ticket) -> None:
    if ticket.kind != Ticket.Kind.SUPPORT:
        raise TicketError("Only support tickets are linked to incidents.")
    if not incident_concerns(incident, ticket):
        raise TicketError(f"Incident “{incident.title}” does not affect the services of ticket {ticket.pk}'s contract.",
                          field="incident")  # fmt: skip


@transaction.atomic
def ticket_link_incident(*, ticket: Ticket, incident: Incident | None, actor, now: datetime | None = None) -> Ticket:
    """Link the ticket to `incident` (None: unlink). Audited with before/after."""
    now = now or timezone.now()
    current = Ticket.objects.select_for_update(of=("self",)).select_related("contract").get(pk=ticket.pk)
    if incident is not None:
        _check(incident, current)
    new = incident.pk if incident is not None else None
    if current.incident_id == new:
        return current
    audit(actor=actor, action="ticket.incident_linked" if new else "ticket.incident_unlinked", target=current, now=now,
          before={"incident": current.incident_id}, after={"incident": new})  # fmt: skip
    Ticket.objects.filter(pk=current.pk).update(incident_id=new)
    current.incident_id = ticket.incident_id = new
    return current


def tickets_link_incident(*, tickets, incident: Incident, actor, now: datetime | None = None) -> tuple[int, list[str]]:
    """The queue's bulk action: link each ticket, each on its own (one refused never stops the
    others). Returns (how many linked, the refusals' reasons)."""
    now = now or timezone.now()
    linked, refused = 0, []
    for ticket in tickets:
        try:
            ticket_link_incident(ticket=ticket, incident=incident, actor=actor, now=now)
        except TicketError as exc:
            refused.append(str(exc))
            continue
        linked += 1
    return linked, refused


def incident_tickets_reply(
    *, incident: Incident, body: str, actor, resolve: bool = False, now: datetime | None = None
) -> int:
    """One public reply to every open ticket linked to the incident (each customer gets it as a
    reply on their ticket, by the ticket's own emails), each resolved with it when `resolve`.
    Returns how many tickets were answered."""
    if not body.strip():
        raise TicketError("The update needs a text.", field="body")
    now = now or timezone.now()
    status = Ticket.Status.RESOLVED if resolve else None
    done = 0
    with transaction.atomic():
        for ticket in incident.tickets.filter(status__in=Ticket.ACTIVE, kind=Ticket.Kind.SUPPORT).order_by("pk"):
            ticket_reply(ticket=ticket, author=actor, body=body, status=status, now=now)
            done += 1
        audit(actor=actor, action="incident.tickets_answered", target=incident, now=now,
              after={"tickets": done, "resolved": resolve})  # fmt: skip
    return done


# --- Reads ----------------------------------------------------------------------------------------
def incident_suggested(ticket: Ticket) -> Incident | None:
    """An incident the ticket may be about: published, open when it was filed, on its service
    (and, customer-scoped, on its contract)."""
    if ticket.incident_id:
        return None
    outages = Outage.objects.filter(services=ticket.service_id, starts_at__lte=ticket.filed_at).filter(
        Q(customer_scoped=False) | Q(contracts=ticket.contract_id)
    )
    return (
        Incident.objects.filter(outage__in=outages, published_at__isnull=False)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=ticket.filed_at))
        .order_by("-created_at")
        .first()
    )


LINKABLE_AFTER = timedelta(days=30)  # how long a resolved incident stays in the pickers


def incidents_for_linking(*keep: int | None) -> QuerySet[Incident]:
    """What staff choose from: the open incidents, latest first, then those resolved in the last 30
    days, latest resolved first (every incident ever would make the queue's action bar and every
    ticket page grow for good); `keep`: incidents offered whenever resolved (the ticket's own, the
    one suggested for it)."""
    listed = Q(resolved_at__isnull=True) | Q(resolved_at__gte=timezone.now() - LINKABLE_AFTER)
    listed |= Q(pk__in=[pk for pk in keep if pk])
    return (
        Incident.objects.filter(listed)
        .select_related("outage")
        .order_by(F("resolved_at").desc(nulls_first=True), "-created_at")
    )
