"""Staff triage of held email (the admin's list of held messages): attach one to a ticket (a
staff member's as their public reply, when the triager says so), file it as a ticket for a person
of an organisation, or discard it. A held message to the security address (held only when taking
it failed) is filed as a vulnerability report or discarded, never put on a customer's ticket: its
text may be an undisclosed vulnerability. Each decision is audited and taken once (the row is
locked and must still be held)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from contracts.people import PeopleError
from contracts.selectors import version_in_force
from portal.core.audit import audit

from .. import security
from ..models import InboundMessage, Ticket
from ..services import TicketError, ticket_open, ticket_reply
from . import parse, route

Outcome = InboundMessage.Outcome
SECURITY_MAIL = (
    "A message to the security address is filed as a vulnerability report or discarded, never put on a "
    "customer's ticket."
)


def _held(inbound: InboundMessage, *, security: bool = False) -> InboundMessage:
    """The message locked, still held, and to the security address or not as the operation needs."""
    row = InboundMessage.objects.select_for_update().get(pk=inbound.pk)
    if row.outcome != Outcome.HELD:
        raise TicketError(f"This message is no longer held ({row.get_outcome_display().lower()}).")
    if row.security and not security:
        raise TicketError(SECURITY_MAIL)
    if security and not row.security:
        raise TicketError("Only a message to the security address is filed as a vulnerability report.")
    row.held_as = {"outcome": row.outcome, "reason": row.reason}  # the audit's "before"
    return row


def _decided(row: InboundMessage, *, actor, now: datetime, action: str, after: dict) -> None:
    before = row.held_as
    row.handled_at, row.handled_by = now, actor
    row.save()
    audit(actor=actor, action=action, target=row, before=before, after={"outcome": row.outcome, **after}, now=now)


def _text(row: InboundMessage) -> tuple[str, parse.Content]:
    body = parse.content(parse.parse(bytes(row.raw)), max_file_bytes=0)  # files stay in the original
    return route.latest_reply(body.text) or "(The message had no text.)", body


@transaction.atomic
def triage_discard(*, inbound: InboundMessage, actor, now: datetime | None = None) -> InboundMessage:
    now = now or timezone.now()
    row = _held(inbound, security=inbound.security)  # either kind may be discarded
    row.outcome = Outcome.DISCARDED
    _decided(row, actor=actor, now=now, action="inbound.discarded", after={})
    return row


def staff_sender(row: InboundMessage):
    """The active staff member the held message is from, else None."""
    return get_user_model().objects.filter(email__iexact=row.sender, is_active=True, is_staff=True).first()


@transaction.atomic
def triage_attach(
    *, inbound: InboundMessage, ticket: Ticket, actor, as_staff_reply: bool = False, now: datetime | None = None
) -> InboundMessage:
    """Put a held message on a ticket: as the customer's reply when its sender is an active person of
    the ticket's organisation (a portal reply's effects: a paused clock restarts, the assignee is
    told), else as an internal note quoting it; the whole message is kept as a file on it.
    `as_staff_reply`: a staff member's message posted as their public reply (the customer emailed,
    the first response now, when the customer is answered), as their email would have been had it
    answered the ticket's own reply address (route._staff_reply). The triager vouches for the From
    that the address could not; still only for staff who work tickets, and never when DMARC failed.
    Their whole message stays on the inbound row: it quotes our emails to staff."""
    now = now or timezone.now()
    row = _held(inbound)
    if ticket.kind != Ticket.Kind.SUPPORT:
        raise TicketError("Held email is attached to support tickets only.", field="ticket")
    text, _ = _text(row)
    person = get_user_model().objects.filter(email__iexact=row.sender, is_active=True).first()
    if as_staff_reply:
        if person is None or not person.is_staff:
            raise TicketError("Only an active staff member's message is posted as their reply.", field="as_staff_reply")
        if refused := route.staff_reply_refused(person):
            raise TicketError(f"{refused} Attach it as a note.", field="as_staff_reply")
        if parse.dmarc_failed(parse.parse(bytes(row.raw)), settings.INBOUND_AUTHSERV_ID):
            raise TicketError("Its sender failed DMARC: the From address may be forged.", field="as_staff_reply")
        message = ticket_reply(ticket=ticket, author=person, body=route.with_refused(text), now=now)
    elif person is not None and person.organisation_id == ticket.organisation_id:
        message = ticket_reply(ticket=ticket, author=person, body=route.with_refused(text), now=now)
    else:
        note = f"Email from {row.sender or 'an unknown sender'} (“{row.subject}”), attached by staff:\n\n{text}"
        message = ticket_reply(ticket=ticket, author=actor, body=route.with_refused(note), internal=True, now=now)
    if not as_staff_reply:
        route.keep_original(row, message, message.author)
    row.outcome, row.ticket, row.ticket_message, row.organisation_id = (
        Outcome.REPLIED,
        ticket,
        message,
        ticket.organisation_id,
    )
    after = {"ticket": ticket.pk, **({"as": "staff reply"} if as_staff_reply else {})}
    _decided(row, actor=actor, now=now, action="inbound.attached", after=after)
    return row


@transaction.atomic
def triage_file(*, inbound: InboundMessage, contract, person, actor, now: datetime | None = None) -> InboundMessage:
    """File a held message as a ticket for `person` on `contract`, as its filing by email would have
    (its whole text, its files, a sentence for each one refused): its clock starts when we received
    the message, however late staff decide (the designated-support-contact rule applies)."""
    now = now or timezone.now()
    row = _held(inbound)
    if person.organisation_id != contract.organisation_id or not person.is_active:
        raise TicketError("Choose an active person of the contract's organisation.", field="person")
    body = parse.content(parse.parse(bytes(row.raw)), max_file_bytes=settings.ATTACHMENT_MAX_BYTES)
    service = contract.services.order_by("name").first()
    if service is None:
        raise TicketError(f"{contract.reference} covers no service.", field="contract")
    version = version_in_force(sla_id=contract.sla_id, at=row.received_at)
    if version is None:
        raise TicketError(f"{contract.reference} had no terms in force when the message came.", field="contract")
    subject, priority = route.priority_of(row.subject, version)
    files, refused = route.uploads(body)  # as the message's own filing would have: every file or why not
    refused += body.problems
    try:
        ticket = ticket_open(
            user=person, contract=contract, service=service, priority=priority, subject=subject,
            description=route.with_refused(body.text or "(The message had no text.)", refused), files=files,
            refused_files=refused, now=row.received_at, channel=Ticket.Channel.EMAIL, email_origin=row.message_id,
        )  # fmt: skip
    except PeopleError as exc:  # not a designated support contact: the message says whom to ask
        raise TicketError(str(exc), field="person") from None
    row.outcome, row.ticket, row.organisation_id = Outcome.FILED, ticket, contract.organisation_id
    _decided(row, actor=actor, now=now, action="inbound.filed", after={"ticket": ticket.pk, "for": person.email})
    return row


@transaction.atomic
def triage_report(*, inbound: InboundMessage, actor, now: datetime | None = None) -> InboundMessage:
    """File a held message to the security address as a vulnerability report from its sender, as
    its taking would have: on the clock of its receipt, the reporter's receipt and security staff's
    emails sent (tickets.security); the sender's report limit applies."""
    now = now or timezone.now()
    row = _held(inbound, security=True)
    if not row.sender:
        raise TicketError("The message has no sender address to answer: discard it.")
    body = parse.content(parse.parse(bytes(row.raw)), max_file_bytes=0)
    ticket = security.security_report_submit(
        email=row.sender, name="", summary=route.subject_line(row.subject),
        details=route.with_refused(body.text or "(The message had no text.)"), now=row.received_at,
    )  # fmt: skip
    row.outcome, row.ticket = Outcome.FILED, ticket
    _decided(row, actor=actor, now=now, action="inbound.reported", after={"ticket": ticket.pk})
    return row
