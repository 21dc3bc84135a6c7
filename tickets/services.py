"""Writes for tickets. Each function changes state, records events and pauses, recomputes the
clock columns from the history and queues its emails in the same transaction."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from contracts.choices import Priority
from contracts.selectors import version_in_force
from portal.core.audit import audit
from tickets.terms_cache import TermsCache

from . import deadlines, notify
from .models import Attachment, EscalationRequest, SLACrossing, Ticket, TicketEvent, TicketMessage, TicketPause

Status = Ticket.Status


class TicketError(Exception):
    """A request that the rules refuse; the message is for the person who asked."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- Clock columns ------------------------------------------------------------------------------
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
    """Many tickets' pauses, for ticket_history, as plain rows in one query: building a model
    instance and a related manager per pause was a fifth of a sweep's or a queue page's deadlines."""
    pauses: dict[int, list[PauseRow]] = {}
    rows = TicketPause.objects.filter(ticket_id__in=ids).order_by("started_at", "id")
    for ticket_id, *pause in rows.values_list("ticket_id", "reason", "started_at", "ended_at"):
        pauses.setdefault(ticket_id, []).append(PauseRow(*pause))
    return pauses


def resolved_moment(ticket: Ticket) -> datetime | None:
    return ticket.resolved_at if ticket.status in (Status.RESOLVED, Status.CLOSED) else None


def ticket_recompute(ticket: Ticket, *, now: datetime, terms: TermsCache | None = None, pauses=None) -> list[str]:
    """Derive the clock columns from the ticket's history; returns the fields it set (not saved)."""
    terms = terms or TermsCache()
    targets = terms.targets(ticket.sla_version_id, ticket.priority)
    history = ticket_history(ticket, pauses)
    d = deadlines.deadlines(targets, history)
    resolved_at = resolved_moment(ticket)
    active = ticket.status in Ticket.ACTIVE and not ticket.is_excluded

    ticket.first_response_due = d.first_response_due
    ticket.resolution_target_at = d.resolution_target_at
    ticket.resolution_due = d.resolution_due
    ticket.paused = history.paused_at(now)
    # Only escalate_due_tickets moves the level; here we say when the next move is due (a past
    # moment is fine: the sweep takes it at once). Resolved, closed or excluded: no timers.
    ticket.next_escalation_due = _earliest_pending(d.escalation_dues, ticket) if active else None
    ticket.next_sla_check_at = (
        deadlines.next_check(d, history, resolved_at=resolved_at, now=now) if not ticket.is_excluded else None
    )
    if ticket.next_sla_check_at is None and not ticket.is_excluded:
        # A crossing may already be due but unrecorded (e.g. recomputed after the fact).
        crossed = deadlines.crossings_due(d, history, resolved_at=resolved_at, now=now)
        if crossed and not _recorded(ticket, crossed):
            ticket.next_sla_check_at = min(crossed.values())
    # The nearest unmet deadline, past or future: the staff queue sorts by it (most overdue first).
    unmet = [d.resolution_target_at, d.resolution_due]
    if ticket.first_response_at is None:
        unmet.append(d.first_response_due)
    ticket.next_deadline = min(filter(None, unmet), default=None) if active else None
    return [
        "first_response_due", "resolution_target_at", "resolution_due", "paused", "next_escalation_due",
        "next_sla_check_at", "next_deadline",
    ]  # fmt: skip


def _earliest_pending(dues, ticket: Ticket) -> datetime | None:
    levels = len(dues)
    if levels == 0:
        return None
    if ticket.escalation_level < levels:
        return dues[ticket.escalation_level - 1]
    return None if ticket.top_alert_sent else dues[-1]


def _recorded(ticket: Ticket, crossed) -> bool:
    if ticket.pk is None:
        return False
    names = {_crossing_key(c) for c in crossed}
    return set(SLACrossing.objects.filter(ticket=ticket).values_list("clock", "kind")) >= names


def _crossing_key(c: deadlines.Crossing) -> tuple[str, str]:
    return {
        deadlines.Crossing.FIRST_RESPONSE_BREACH: ("first_response", SLACrossing.Kind.BREACH),
        deadlines.Crossing.RESOLUTION_WARNING: ("resolution", SLACrossing.Kind.WARNING),
        deadlines.Crossing.RESOLUTION_BREACH: ("resolution", SLACrossing.Kind.BREACH),
    }[c]


def _save(ticket: Ticket, fields, *, now: datetime) -> None:
    fields = set(fields) | set(ticket_recompute(ticket, now=now)) | {"updated_at"}
    ticket.save(update_fields=sorted(fields))


def _event(ticket, kind, *, now, actor=None, **data) -> TicketEvent:
    return TicketEvent.objects.create(ticket=ticket, kind=kind, at=now, actor=actor, data=data)


def _locked(ticket: Ticket) -> Ticket:
    return (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("contract", "organisation", "sla_version", "created_by", "assignee")
        .get(pk=ticket.pk)
    )


# --- Customers and staff ------------------------------------------------------------------------
def has_control_characters(text: str) -> bool:
    """C0 (line breaks included), DEL and C1: what the API's single-line fields refuse too. The
    forms' check was `ord(ch) < 32`, which let DEL and C1 (NEL, U+0085, is a line break) through."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


@transaction.atomic
def ticket_open(
    *, user, contract, service, priority: str | None, subject: str, description: str,
    steps_to_reproduce: str = "", files=(), now: datetime | None = None, kind: str = Ticket.Kind.SUPPORT,
) -> Ticket:  # fmt: skip
    now = now or timezone.now()
    if user.organisation_id != contract.organisation_id:
        raise TicketError("Choose one of your organisation's contracts.", field="contract")
    if has_control_characters(subject):
        # The subject goes into email headers: no line breaks or other control characters.
        raise TicketError("The subject must be a single line without control characters.", field="subject")
    if not contract.services.filter(pk=service.pk).exists():
        raise TicketError("This service is not covered by the contract.", field="service")
    version = version_in_force(sla_id=contract.sla_id, at=now)
    if version is None:
        raise TicketError("This contract has no SLA terms in force yet.", field="contract")
    terms = TermsCache()
    offered = [p.priority for p in terms.version(version.pk).priorities.all()]
    if not priority and len(offered) == 1:
        priority = offered[0]  # Klart: one pair of targets, no choice
    if priority not in offered:
        raise TicketError(f"Choose one of: {', '.join(offered)}.", field="priority")
    ticket = ticket_create(
        user=user, contract=contract, service=service, version=version, terms=terms, priority=priority,
        subject=subject, description=description, steps_to_reproduce=steps_to_reproduce, kind=kind, now=now, files=files,
    )  # fmt: skip
    ctx = {"version": version, "term": terms.term(version.pk, priority)}
    notify.send(
        notify.to_customers(ticket, f"ticket:{ticket.pk}:filed", "ticket_filed", ctx)
        + notify.to_addresses(
            [notify.settings.SUPPORT_QUEUE_EMAIL], f"ticket:{ticket.pk}:filed-staff", "ticket_filed_staff", ctx, ticket
        ),
        now,
    )
    return ticket


def ticket_create(
    *, user, contract, service, version, terms, priority, subject, description, steps_to_reproduce, kind, now, files=()
) -> Ticket:
    """The row, its clocks, its filing event and files: shared by ticket_open and the
    vulnerability-report form. Callers check the request and send their own emails."""
    ticket = Ticket(
        organisation_id=contract.organisation_id, contract=contract, service=service, sla_version=version,
        priority=priority, subject=subject, description=description, steps_to_reproduce=steps_to_reproduce,
        created_by=user, filed_at=now, kind=kind,
    )  # fmt: skip
    ticket_recompute(ticket, now=now, terms=terms, pauses=[])
    ticket.save()
    _event(ticket, TicketEvent.Kind.FILED, now=now, actor=user, priority=priority)
    for f in files:
        _attach(ticket, None, f, user, now)
    return ticket


def _attach(ticket, message, upload, user, now) -> Attachment:
    """`upload` is an UploadedFile already checked by tickets.attachments.validate_upload; its
    checked type is passed as `upload.checked_type` (the browser's claim is not trusted)."""
    from .attachments import validate_upload

    content_type = getattr(upload, "checked_type", None) or validate_upload(upload)
    return Attachment.objects.create(
        ticket=ticket, message=message, file=upload, original_name=upload.name[:255],
        content_type=content_type, size=upload.size, uploaded_by=user, uploaded_at=now,
    )  # fmt: skip


@transaction.atomic
def ticket_reply(
    *, ticket: Ticket, author, body: str, internal: bool = False, files=(), now: datetime | None = None
) -> TicketMessage:
    now = now or timezone.now()
    ticket = _locked(ticket)
    staff = author.is_staff
    if internal and not staff:
        raise TicketError("Only staff can write internal notes.", field="internal")
    if not staff and ticket.status == Status.CLOSED:
        raise TicketError("This ticket is closed; reopen it to reply.")
    message = TicketMessage.objects.create(ticket=ticket, author=author, body=body, internal=internal, created_at=now)
    for f in files:
        _attach(ticket, message, f, author, now)
    fields = []
    if staff and not internal:
        if ticket.first_response_at is None:
            ticket.first_response_at = now
            fields.append("first_response_at")
        if ticket.status == Status.NEW:
            _set_status(ticket, Status.OPEN, actor=author, now=now)  # audited like any move
            fields.append("status")
        for request in ticket.escalation_requests.filter(acknowledged_at__isnull=True):
            _acknowledge(ticket, request, author, now)
        emails = notify.to_customers(
            ticket, f"ticket:{ticket.pk}:reply:{message.pk}", "ticket_reply", {"message": message}
        )
    elif not staff:
        if ticket.status == Status.WAITING:
            _set_status(ticket, Status.OPEN, actor=author, now=now)
            fields.append("status")
        emails = notify.to_addresses(
            notify.queue_or_assignee(ticket),
            f"ticket:{ticket.pk}:reply:{message.pk}",
            "ticket_customer_reply",
            {"message": message},
            ticket,
        )
    else:
        emails = []  # internal notes email nobody
    _save(ticket, fields, now=now)
    notify.send(emails, now)
    return message


def _set_status(ticket: Ticket, status: str, *, actor, now: datetime) -> None:
    """Move to a status and keep the pauses in step: waiting pauses the clocks until the customer
    replies; resolved (or closed) stops them until a reopen resumes them where they stopped."""
    old = ticket.status
    if old == status:
        return
    if old == Status.WAITING:
        TicketPause.objects.filter(ticket=ticket, reason=TicketPause.Reason.WAITING, ended_at__isnull=True).update(
            ended_at=now
        )
    if status == Status.WAITING:
        TicketPause.objects.create(ticket=ticket, reason=TicketPause.Reason.WAITING, started_at=now)
    was_done = old in (Status.RESOLVED, Status.CLOSED)
    done = status in (Status.RESOLVED, Status.CLOSED)
    if done and not was_done:
        ticket.resolved_at = now
        TicketPause.objects.create(ticket=ticket, reason=TicketPause.Reason.RESOLVED, started_at=now)
    if was_done and not done:
        ticket.resolved_at = None
        ticket.closed_at = None
        TicketPause.objects.filter(ticket=ticket, reason=TicketPause.Reason.RESOLVED, ended_at__isnull=True).update(
            ended_at=now
        )
    if status == Status.CLOSED:
        ticket.closed_at = now
    ticket.status = status
    _event(ticket, TicketEvent.Kind.STATUS, now=now, actor=actor, old=old, new=status)


CUSTOMER_MOVES = {
    Status.CLOSED: {Status.NEW, Status.OPEN, Status.WAITING, Status.RESOLVED},
    Status.OPEN: {Status.RESOLVED, Status.CLOSED},  # reopen
}


@transaction.atomic
def ticket_set_status(*, ticket: Ticket, actor, status: str, now: datetime | None = None) -> Ticket:
    now = now or timezone.now()
    ticket = _locked(ticket)
    if status not in Status.values:
        raise TicketError("Unknown status.", field="status")
    if not actor.is_staff and ticket.status not in CUSTOMER_MOVES.get(status, set()):
        raise TicketError(
            f"A ticket that is {ticket.get_status_display().lower()} cannot be moved to {Status(status).label.lower()}.",
            field="status",
        )
    old = ticket.status
    if old == status:
        return ticket
    _set_status(ticket, status, actor=actor, now=now)
    _save(ticket, ["status", "resolved_at", "closed_at"], now=now)
    notify.send(
        notify.to_customers(
            ticket,
            f"ticket:{ticket.pk}:status:{TicketEvent.objects.filter(ticket=ticket).latest('id').pk}",
            "ticket_status",
            {"old": Status(old).label},
        ),
        now,
    )
    return ticket


@transaction.atomic
def ticket_change_priority(*, ticket: Ticket, actor, priority: str, now: datetime | None = None) -> Ticket:
    """Staff: clocks are recomputed from the ticket's start under the new priority (audited)."""
    now = now or timezone.now()
    ticket = _locked(ticket)
    terms = TermsCache()
    if terms.term(ticket.sla_version_id, priority) is None:
        raise TicketError("The contract's SLA has no terms for that priority.", field="priority")
    old = ticket.priority
    if old == priority:
        return ticket
    ticket.priority = priority
    _event(ticket, TicketEvent.Kind.PRIORITY, now=now, actor=actor, old=old, new=priority)
    audit(
        actor=actor,
        action="ticket.priority_changed",
        target=ticket,
        before={"priority": old},
        after={"priority": priority},
        now=now,
    )
    _save(ticket, ["priority"], now=now)
    return ticket


@transaction.atomic
def ticket_assign(*, ticket: Ticket, actor, assignee, now: datetime | None = None) -> Ticket:
    now = now or timezone.now()
    ticket = _locked(ticket)
    if assignee is not None and not assignee.is_staff:
        raise TicketError("Tickets are assigned to staff.", field="assignee")
    ticket.assignee = assignee
    _event(ticket, TicketEvent.Kind.ASSIGNED, now=now, actor=actor, assignee=assignee.email if assignee else None)
    _save(ticket, ["assignee"], now=now)
    return ticket


@transaction.atomic
def ticket_exclude(*, ticket: Ticket, actor, cause: str, reason: str, now: datetime | None = None) -> Ticket:
    """Staff mark a ticket excluded from the SLA, with a cause from the contract's exclusion list."""
    now = now or timezone.now()
    ticket = _locked(ticket)
    if cause not in (ticket.sla_version.exclusion_causes or []):
        raise TicketError("Choose a cause from the contract's exclusion list.", field="cause")
    if not reason.strip():
        raise TicketError("Say why the ticket is excluded.", field="reason")
    audit(
        actor=actor, action="ticket.excluded", target=ticket,
        before={"cause": ticket.excluded_cause, "reason": ticket.excluded_reason}, after={"cause": cause, "reason": reason}, now=now,
    )  # fmt: skip
    ticket.excluded_cause, ticket.excluded_reason = cause, reason
    _event(ticket, TicketEvent.Kind.EXCLUDED, now=now, actor=actor, cause=cause, reason=reason)
    _save(ticket, ["excluded_cause", "excluded_reason"], now=now)
    return ticket


@transaction.atomic
def ticket_request_escalation(*, ticket: Ticket, user, reason: str, now: datetime | None = None) -> EscalationRequest:
    """A customer asks to escalate; staff must acknowledge it within the contract's time (Klart:
    4 working hours; elsewhere the priority's first-response time)."""
    now = now or timezone.now()
    ticket = _locked(ticket)
    if not ticket.is_active:
        raise TicketError("Only an open ticket can be escalated; reopen it first.")
    if ticket.escalation_requests.filter(acknowledged_at__isnull=True).exists():
        raise TicketError("Your earlier escalation request is still waiting for acknowledgement.")
    terms = TermsCache()
    version = terms.version(ticket.sla_version_id)
    if version.escalation_ack_time:
        from contracts.calendars import clock_for

        ack_due = clock_for(version.escalation_ack_calendar).add(now, version.escalation_ack_time)
    else:
        targets = terms.targets(ticket.sla_version_id, ticket.priority)
        ack_due = targets.clock.add(now, targets.first_response)
    request = EscalationRequest.objects.create(
        ticket=ticket, requested_by=user, requested_at=now, reason=reason, ack_due=ack_due
    )
    _event(ticket, TicketEvent.Kind.ESCALATION_REQUESTED, now=now, actor=user, request=request.pk)
    ticket.next_sla_check_at = min(filter(None, [ticket.next_sla_check_at, ack_due]), default=None)
    ticket.save(update_fields=["next_sla_check_at", "updated_at"])
    staff = notify.queue_or_assignee(ticket) + [u.email for u in notify.staff_with_role("support_lead")]
    ctx = {"request": request}
    notify.send(
        notify.to_customers(ticket, f"ticket:{ticket.pk}:esc-request:{request.pk}", "escalation_requested", ctx)
        + notify.to_addresses(
            staff, f"ticket:{ticket.pk}:esc-request-staff:{request.pk}", "escalation_requested_staff", ctx, ticket
        ),
        now,
    )
    return request


def _acknowledge(ticket, request, actor, now) -> None:
    updated = EscalationRequest.objects.filter(pk=request.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=now, acknowledged_by=actor
    )
    if updated:
        request.acknowledged_at, request.acknowledged_by = now, actor
        _event(ticket, TicketEvent.Kind.ESCALATION_ACKNOWLEDGED, now=now, actor=actor, request=request.pk)
        notify.send(
            notify.to_customers(
                ticket, f"ticket:{ticket.pk}:esc-ack:{request.pk}", "escalation_acknowledged", {"request": request}
            ),
            now,
        )


@transaction.atomic
def escalation_acknowledge(*, request: EscalationRequest, actor, now: datetime | None = None) -> None:
    now = now or timezone.now()
    ticket = _locked(request.ticket)
    _acknowledge(ticket, request, actor, now)


@transaction.atomic
def ticket_escalate_now(*, ticket: Ticket, actor, now: datetime | None = None) -> Ticket:
    """Staff move a ticket one level up the ladder at once, before its dwell has passed. Audited
    and emailed like a move by the sweep (same email keys: each level is announced once); the
    sweep carries on from the new level, on the ladder's times counted from filing."""
    from contracts.selectors import level_contact

    now = now or timezone.now()
    ticket = _locked(ticket)
    if not ticket.is_active or ticket.is_excluded:
        raise TicketError("Only an open ticket that counts for the SLA can be escalated.")
    levels = TermsCache().levels(ticket.sla_version_id)
    if ticket.escalation_level >= len(levels):
        raise TicketError("The ticket is already at the top level." if levels else "The SLA has no escalation ladder.")
    old, new = ticket.escalation_level, levels[ticket.escalation_level]
    ticket.escalation_level = new.level
    data = {"from": old, "to": new.level, "passed": [new.level]}  # as the sweep writes it
    _event(ticket, TicketEvent.Kind.ESCALATED, now=now, actor=actor, **data)
    _save(ticket, ["escalation_level"], now=now)
    ctx = {"level": new, "passed": [new], "from_level": old}
    key = f"ticket:{ticket.pk}:escalation:{new.level}"
    contact = level_contact(level=new, organisation=ticket.organisation)[1]
    notify.send(
        notify.to_addresses(
            notify.level_staff_emails(new, ticket.organisation), f"{key}:staff", "ticket_escalated_staff", ctx, ticket
        )
        + notify.to_customers(ticket, f"{key}:customer", "ticket_escalated", {**ctx, "contact": contact}),
        now,
    )
    return ticket


PRIORITY_ORDER = [Priority.P1, Priority.P2, Priority.P3, Priority.P4, Priority.STANDARD]


@transaction.atomic
def ticket_attach(*, ticket: Ticket, user, files, now: datetime | None = None) -> list[Attachment]:
    """Files added to a ticket outside a reply (the API's attachment upload). Each upload is
    already checked by tickets.attachments.validate_upload (see _attach)."""
    now = now or timezone.now()
    ticket = _locked(ticket)
    if not user.is_staff and ticket.status == Status.CLOSED:
        raise TicketError("This ticket is closed; reopen it to add files.")
    return [_attach(ticket, None, f, user, now) for f in files]
