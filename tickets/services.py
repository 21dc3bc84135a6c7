"""Writes for tickets. Each function changes state, records events and pauses, derives the clock
columns again (tickets.recompute.ticket_recompute) and queues its emails in the same transaction."""

from __future__ import annotations

import unicodedata
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from contracts.choices import Priority
from contracts.people.support import support_contact_check
from contracts.selectors import version_in_force
from portal.core import batch
from portal.core.audit import audit
from portal.core.notify_rules import Kind
from portal.core.related import among
from portal.core.roles import WORK_PERMISSION, sees_security
from tickets.terms_cache import TermsCache

from . import hooks, notify, satisfaction, security_mail
from .models import Attachment, EscalationRequest, Ticket, TicketEvent, TicketMessage, TicketPause
from .recompute import ACK_COLUMNS, ticket_recompute
from .search import documents_refresh

Status = Ticket.Status


class TicketError(Exception):
    """A request that the rules refuse; the message is for the person who asked."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _save(ticket: Ticket, fields, *, now: datetime, terms: TermsCache | None = None) -> list[EscalationRequest]:
    """Save the changed fields with the clock columns derived again (every change may move them).
    Returns the pending escalation requests whose acknowledgement moments moved (saved)."""
    recomputed = ticket_recompute(ticket, now=now, terms=terms)
    ticket.save(update_fields=sorted(set(fields) | set(recomputed.fields) | {"updated_at"}))
    EscalationRequest.objects.bulk_update(recomputed.requests, ACK_COLUMNS)
    return recomputed.requests


def _event(ticket, kind, *, now, actor=None, **data) -> TicketEvent:
    return TicketEvent.objects.create(ticket=ticket, kind=kind, at=now, actor=actor, data=data)


def locked_tickets():
    """Tickets read for a change: locked until the transaction ends, with what the services read."""
    return Ticket.objects.select_for_update(of=("self",)).select_related(
        "contract", "organisation", "sla_version", "created_by", "assignee"
    )


def locked_ticket(pk: int, kind: str) -> Ticket | None:
    """The ticket with this id and kind, locked until the transaction ends, its own row alone (what
    it relates to is read if used): an inbound reply's read, for ticket_reply(locked=True). One
    statement written out, as the ORM would write it: compiling locked_tickets()'s select with its
    relations cost more than the rest of the reply's read (bench/RESULTS.md, session 10)."""
    meta, q = Ticket._meta, connection.ops.quote_name
    columns = ", ".join(q(f.column) for f in meta.concrete_fields)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT {columns} FROM {q(meta.db_table)} WHERE {q(meta.pk.column)} = %s AND {q('kind')} = %s{lock}"
    return next(iter(Ticket.objects.raw(sql, [pk, kind])), None)


def _locked(ticket: Ticket) -> Ticket:
    return locked_tickets().get(pk=ticket.pk)


# --- Customers and staff ------------------------------------------------------------------------
def has_control_characters(text: str) -> bool:
    """C0 (line breaks included), DEL and C1: what the API's single-line fields refuse too. The
    forms' check was `ord(ch) < 32`, which let DEL and C1 (NEL, U+0085, is a line break) through."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def ticket_open(
    *, user, contract, service, priority: str | None, subject: str, description: str,
    steps_to_reproduce: str = "", files=(), now: datetime | None = None, kind: str = Ticket.Kind.SUPPORT,
    channel: str = Ticket.Channel.PORTAL, refused_files=(), receipt: bool = True, receipt_headers: dict | None = None,
    email_origin: str = "", version=None,
) -> Ticket:  # fmt: skip
    """File a ticket (the form, the API, email: tickets.inbound). `now` is when the customer reached
    us: the clock starts there. Email: `refused_files` (sentences) are listed in the receipt;
    `receipt=False` sends the filer none (a monitoring system's automatic message);
    `email_origin`, the Message-ID of their message, starts the ticket's thread (tickets.mail_thread);
    `receipt_headers` are added to the filer's receipt (Auto-Submitted: auto-replied); `version`, the
    contract's SLA version in force at `now` when the caller has read it (the email channel's group).
    It refuses before writing anything: its writes need no savepoint of their own in a caller's."""
    now = now or timezone.now()
    if user.organisation_id != contract.organisation_id:
        raise TicketError("Choose one of your organisation's contracts.", field="contract")
    support_contact_check(user=user, contract=contract)  # NotASupportContact: whom to ask
    version, terms, priority = filing_terms(
        contract=contract, service=service, priority=priority, subject=subject, at=now, version=version
    )
    with transaction.atomic(savepoint=False):  # a failure here fails the caller's transaction too
        ticket = ticket_create(
            user=user, contract=contract, service=service, version=version, terms=terms, priority=priority,
            subject=subject, description=description, steps_to_reproduce=steps_to_reproduce, kind=kind, now=now,
            files=files, channel=channel, email_origin=email_origin,
        )  # fmt: skip
        ctx = {
            "version": version, "term": terms.term(version.pk, priority), "refused_files": list(refused_files),
            "files": [f.name for f in files],  # named in the staff copy: staff learn a file came without opening it
        }  # fmt: skip
        notify.ticket_filed(ticket, ctx=ctx, now=now, filer_receipt=receipt, filer_headers=receipt_headers)
        hooks.emit([hooks.ticket_filed(ticket)], now)
    return ticket


def filing_terms(*, contract, service, priority: str | None, subject: str, at: datetime, version=None):
    """What filing a ticket on `contract` at `at` checks, whoever files it: a one-line subject, a
    service of the contract, SLA terms in force then and one of their priorities (Klart's single
    one when none is given). Returns (version, terms, priority)."""
    if has_control_characters(subject):
        # The subject goes into email headers: no line breaks or other control characters.
        raise TicketError("The subject must be a single line without control characters.", field="subject")
    if not among(contract, "services", service.pk):
        raise TicketError("This service is not covered by the contract.", field="service")
    if version is None or version.sla_id != contract.sla_id:
        version = version_in_force(sla_id=contract.sla_id, at=at)
    if version is None:
        raise TicketError("This contract has no SLA terms in force yet.", field="contract")
    terms = TermsCache()
    offered = [p.priority for p in terms.version(version.pk).priorities.all()]
    if not priority and len(offered) == 1:
        priority = offered[0]  # Klart: one pair of targets, no choice
    if priority not in offered:
        raise TicketError(f"Choose one of: {', '.join(offered)}.", field="priority")
    return version, terms, priority


def ticket_create(
    *, user, contract, service, version, terms, priority, subject, description, steps_to_reproduce, kind, now, files=(),
    channel=Ticket.Channel.PORTAL, filed_at: datetime | None = None, actor=None, email_origin: str = "",
) -> Ticket:  # fmt: skip
    """The row, its clocks, its filing event and files: shared by ticket_open, the vulnerability-report
    form and staff filing for a caller (whose clock starts at `filed_at`, when the customer reached
    us, and whose event names the staff member, `actor`). Callers check the request and send their
    own emails."""
    filed_at = filed_at or now
    ticket = Ticket(
        organisation_id=contract.organisation_id, contract=contract, service=service, sla_version=version,
        priority=priority, subject=subject, description=description, steps_to_reproduce=steps_to_reproduce,
        created_by=user, filed_at=filed_at, kind=kind, channel=channel, email_origin=email_origin,
    )  # fmt: skip
    if type(contract).organisation.is_cached(contract):
        ticket.organisation = contract.organisation  # frozen with its emails: none reads it again
    ticket_recompute(ticket, now=now, terms=terms, pauses=[])
    ticket.save()
    documents_refresh([ticket.pk])
    filed = {"priority": priority, "channel": channel}  # inserted with the inbound poller's group's
    batch.save_new(TicketEvent(ticket=ticket, kind=TicketEvent.Kind.FILED, at=now, actor=actor or user, data=filed))
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


def ticket_reply(
    *, ticket: Ticket, author, body: str, internal: bool = False, files=(), status: str | None = None,
    now: datetime | None = None, locked: bool = False,
) -> TicketMessage:  # fmt: skip
    """A reply (or a staff internal note). Staff may move the ticket's status with it (`status`,
    e.g. waiting on customer): the customer then gets one email, the reply saying the new status,
    not a reply and a status email. It refuses (the ticket locked) before writing anything.
    `locked`: the caller read `ticket` from locked_tickets() or locked_ticket() in its transaction, which goes on."""
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):  # in a caller's transaction, no savepoint of its own
        ticket = ticket if locked else _locked(ticket)
        if not (refused := _reply_refused(ticket, author, internal, status)):
            return _reply(ticket, author, body, internal=internal, files=files, status=status, now=now)
    raise refused  # outside the block: a caller's transaction goes on (tickets.inbound holds the message)


def _reply_refused(ticket: Ticket, author, internal: bool, status: str | None) -> TicketError | None:
    staff = author.is_staff
    if internal and not staff:
        return TicketError("Only staff can write internal notes.", field="internal")
    if status and (not staff or status not in Status.values):
        return TicketError("Unknown status." if staff else "Only staff set a status with a reply.", field="status")
    if not staff and ticket.status == Status.CLOSED:
        return TicketError("This ticket is closed; reopen it to reply.")
    return None


def _reply(ticket: Ticket, author, body: str, *, internal: bool, files, status: str | None, now) -> TicketMessage:
    staff, files = author.is_staff, list(files)
    message = TicketMessage.objects.create(ticket=ticket, author=author, body=body, internal=internal, created_at=now)
    documents_refresh([ticket.pk])
    for f in files:
        _attach(ticket, message, f, author, now)
    fields, old, moved = [], ticket.status, None
    if staff and not internal:
        if ticket.first_response_at is None:
            ticket.first_response_at = now
            fields.append("first_response_at")
        target = status or (Status.OPEN if ticket.status == Status.NEW else None)
        if target:
            moved = _set_status(ticket, target, actor=author, now=now)  # audited like any move
            fields += ["status", "resolved_at", "closed_at"]
        for request in ticket.escalation_requests.filter(acknowledged_at__isnull=True):
            _acknowledge(ticket, request, author, now)
        context = {"message": message, **({"old": Status(old).label} if status and moved else {})}
        emails = notify.to_customers(
            ticket, f"ticket:{ticket.pk}:reply:{message.pk}", "ticket_reply", context, kind=Kind.TICKET
        )
        if ticket.kind == Ticket.Kind.SECURITY:  # the reporter is an address, not a customer
            emails += security_mail.reply_to_reporter(ticket, message, now=now)
    elif not staff:
        if ticket.status == Status.WAITING:
            _set_status(ticket, Status.OPEN, actor=author, now=now)
            fields.append("status")
        emails = notify.to_addresses(
            notify.queue_or_assignee(ticket), f"ticket:{ticket.pk}:reply:{message.pk}", "ticket_customer_reply",
            {"message": message, "files": [f.name for f in files]}, ticket,
        )  # fmt: skip
    else:  # internal notes email nobody; a status set with one is told as any status change
        moved = _set_status(ticket, status, actor=author, now=now) if status else None
        fields += ["status", "resolved_at", "closed_at"] if moved else []
        emails = notify.status_emails(ticket, moved, old) if moved else []
    _save(ticket, list(dict.fromkeys(fields)), now=now)
    notify.send(emails, now, known_new=True)  # every key names the message (or status event) just written
    updates = []
    if not internal:
        author_kind = "staff" if staff else "customer"
        message_data = {"id": message.pk, "author": author_kind, "body": body, "created_at": now}
        key = f"ticket:{ticket.pk}:reply:{message.pk}"
        updates.append(hooks.ticket_updated(ticket, key, "reply", message=message_data))
    if status and moved:
        updates.append(_status_hook(ticket, moved, old))
    hooks.emit(updates, now)
    return message


def _status_hook(ticket: Ticket, event: TicketEvent, old: str):
    return hooks.ticket_updated(ticket, f"ticket:{ticket.pk}:status:{event.pk}", "status", old=old, new=ticket.status)


def _set_status(ticket: Ticket, status: str, *, actor, now: datetime) -> TicketEvent | None:
    """Move to a status and keep the pauses in step: waiting pauses the clocks until the customer
    replies; resolved (or closed) stops them until a reopen resumes them where they stopped."""
    old = ticket.status
    if old == status:
        return None
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
    if (
        done and not was_done
    ):  # however it is resolved (closed at once too): the filer is asked to rate it, once a ticket
        notify.send(satisfaction.rating_request(ticket), now)
    return _event(ticket, TicketEvent.Kind.STATUS, now=now, actor=actor, old=old, new=status)


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
    event = _set_status(ticket, status, actor=actor, now=now)
    _save(ticket, ["status", "resolved_at", "closed_at"], now=now)
    notify.send(notify.status_emails(ticket, event, old), now)
    hooks.emit([_status_hook(ticket, event, old)], now)
    return ticket


@transaction.atomic
def ticket_change_priority(*, ticket: Ticket, actor, priority: str, reason: str, now: datetime | None = None) -> Ticket:
    """Staff: clocks are recomputed from the ticket's start under the new priority (audited); the
    customers are told why, and what it does to the deadlines."""
    now = now or timezone.now()
    ticket = _locked(ticket)
    terms = TermsCache()
    if terms.term(ticket.sla_version_id, priority) is None:
        raise TicketError("The contract's SLA has no terms for that priority.", field="priority")
    if not reason.strip():
        raise TicketError("Say why the priority changes: the customer is told.", field="reason")
    old = ticket.priority
    if old == priority:
        return ticket
    ticket.priority, deadlines = priority, {f: getattr(ticket, f) for f in notify.DEADLINES}
    event = _event(ticket, TicketEvent.Kind.PRIORITY, now=now, actor=actor, old=old, new=priority, reason=reason)
    audit(actor=actor, action="ticket.priority_changed", target=ticket, before={"priority": old},
          after={"priority": priority, "reason": reason}, now=now)  # fmt: skip
    _save(ticket, ["priority"], now=now, terms=terms)
    notify.send(notify.priority_emails(ticket, event, actor=actor, old=old, reason=reason, before=deadlines), now)
    hooks.emit(
        [hooks.ticket_updated(ticket, f"ticket:{ticket.pk}:priority:{event.pk}", "priority", old=old, new=priority)],
        now,
    )
    return ticket


@transaction.atomic
def ticket_assign(*, ticket: Ticket, actor, assignee, now: datetime | None = None) -> Ticket:
    now = now or timezone.now()
    ticket = _locked(ticket)
    if assignee is not None and not (assignee.is_staff and assignee.is_active and assignee.has_perm(WORK_PERMISSION)):
        # Anyone else would be emailed about a ticket they cannot open.
        raise TicketError("A ticket is assigned to staff who work tickets.", field="assignee")
    if assignee is not None and ticket.kind == Ticket.Kind.SECURITY and not sees_security(assignee):
        # Only security staff see a report: anyone else would hold a ticket they cannot open.
        raise TicketError("A vulnerability report is assigned to security staff only.", field="assignee")
    if ticket.assignee_id == (assignee.pk if assignee else None):
        return ticket
    ticket.assignee = assignee
    event = _event(
        ticket, TicketEvent.Kind.ASSIGNED, now=now, actor=actor, assignee=assignee.email if assignee else None
    )
    _save(ticket, ["assignee"], now=now)
    notify.send(notify.assignment_emails(ticket, event, actor=actor), now)
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
    if (ticket.excluded_cause, ticket.excluded_reason) == (cause, reason):
        return ticket
    audit(
        actor=actor, action="ticket.excluded", target=ticket,
        before={"cause": ticket.excluded_cause, "reason": ticket.excluded_reason}, after={"cause": cause, "reason": reason}, now=now,
    )  # fmt: skip
    ticket.excluded_cause, ticket.excluded_reason = cause, reason
    event = _event(ticket, TicketEvent.Kind.EXCLUDED, now=now, actor=actor, cause=cause, reason=reason)
    _save(ticket, ["excluded_cause", "excluded_reason"], now=now)
    notify.send(notify.exclusion_emails(ticket, event, actor=actor), now)
    key = f"ticket:{ticket.pk}:excluded:{event.pk}"
    hooks.emit([hooks.ticket_updated(ticket, key, "excluded", cause=cause, reason=reason)], now)
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
    request = EscalationRequest.objects.create(ticket=ticket, requested_by=user, requested_at=now, reason=reason)
    _event(ticket, TicketEvent.Kind.ESCALATION_REQUESTED, now=now, actor=user, request=request.pk)
    # Its acknowledgement moments are derived with the ticket's clocks (none while it is excluded);
    # the sweep of crossings looks at them.
    for moved in _save(ticket, [], now=now):
        if moved.pk == request.pk:
            request.ack_due, request.ack_warn_at = moved.ack_due, moved.ack_warn_at
    staff = notify.queue_or_assignee(ticket) + [u.email for u in notify.staff_with_role("support_lead")]
    ctx = {"request": request}
    notify.send(
        notify.to_customers(
            ticket, f"ticket:{ticket.pk}:esc-request:{request.pk}", "escalation_requested", ctx, kind=Kind.TICKET
        )
        + notify.to_addresses(
            staff, f"ticket:{ticket.pk}:esc-request-staff:{request.pk}", "escalation_requested_staff", ctx, ticket
        ),
        now,
    )
    key = f"ticket:{ticket.pk}:esc-request:{request.pk}"
    hooks.emit([hooks.ticket_updated(ticket, key, "escalation_requested", reason=reason, ack_due=request.ack_due)], now)
    return request


def _acknowledge(ticket, request, actor, now, *, at: datetime | None = None) -> None:
    """Acknowledge `request` as of `at` (a call's time; by default now)."""
    at = at or now
    updated = EscalationRequest.objects.filter(pk=request.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=at, acknowledged_by=actor
    )
    if updated:
        request.acknowledged_at, request.acknowledged_by = at, actor
        _event(ticket, TicketEvent.Kind.ESCALATION_ACKNOWLEDGED, now=now, actor=actor, request=request.pk)
        notify.send(
            notify.to_customers(
                ticket,
                f"ticket:{ticket.pk}:esc-ack:{request.pk}",
                "escalation_acknowledged",
                {"request": request},
                kind=Kind.TICKET,
            ),
            now,
        )
        key = f"ticket:{ticket.pk}:esc-ack:{request.pk}"
        hooks.emit([hooks.ticket_updated(ticket, key, "escalation_acknowledged")], now)


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
        + notify.to_customers(
            ticket, f"{key}:customer", "ticket_escalated", {**ctx, "contact": contact}, kind=Kind.ESCALATION
        ),
        now,
    )
    hooks.emit([hooks.ticket_escalated(ticket, old, new.level)], now)
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
