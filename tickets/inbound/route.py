"""What an inbound message is, and its effect: security mail, a reply to a ticket, a new ticket,
an automatic message, or held for staff. Called by tickets.inbound.service inside the transaction
that stores the message; sets the row's outcome, reason and links (the service saves it, after its
effect)."""

from __future__ import annotations

import re
from email.message import EmailMessage

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from contracts.choices import Channel
from contracts.incidents import mail as incident_mail
from contracts.models import Contract, Incident
from contracts.outage_reach import contracts_reached
from contracts.people import PeopleError
from contracts.people.support import default_contract_of, support_contact_check
from contracts.selectors import version_in_force
from portal.core import batch
from portal.models import OutboxMessage

from .. import mail_thread, security, security_mail
from ..attachments import MAX_FILES, validate_upload
from ..incident_links import ticket_link_incident
from ..models import Attachment, InboundMessage, Ticket, TicketEvent
from ..services import PRIORITY_ORDER, TicketError, locked_ticket, locked_tickets, ticket_open, ticket_reply
from ..terms_cache import TermsCache
from . import answers, group, parse
from .quotes import latest_reply

Outcome = InboundMessage.Outcome
PRIORITY_TAG = re.compile(r"\[(P[1-4])\]", re.I)
NUMBER_TAG = re.compile(r"\[#(\d{1,12})\]")
ROOT_ID = re.compile(r"<ticket-(\d{1,12})\.\d{14}@[^<>\s]+>")
WORK_TICKETS = "tickets.change_ticket"  # portal.core.roles: who works tickets (and may answer them by email)
THREAD_IDS = 60  # Message-IDs of In-Reply-To and References looked up at most
# How a message was matched to its ticket (ticket_matched): only the first proves who sent it.
BY_ADDRESS, BY_THREAD, BY_NUMBER = "address", "thread", "number"


def route(row: InboundMessage, msg: EmailMessage, env: parse.Envelope, *, too_big: bool) -> None:
    """Inside tickets.inbound.group (the service opens one for a single message)."""
    automatic = parse.automatic_reason(msg, env, group.current().own_addresses())
    env.automatic = automatic
    env.auto_generated = parse.is_auto_generated(msg)
    env.dmarc_failed = dmarc_failed = parse.dmarc_failed(msg, settings.INBOUND_AUTHSERV_ID)
    if too_big:
        return _refuse(row, env, automatic, f"The message is {row.size // (1024 * 1024)} MB; the limit is "
                       f"{settings.INBOUND_MAX_BYTES // (1024 * 1024)} MB.")  # fmt: skip
    body = parse.content(msg, max_file_bytes=settings.ATTACHMENT_MAX_BYTES)
    if row.security:
        return _security(row, env, body, automatic)
    if not env.sender:
        return _hold(row, env, "It has no single sender address (From).", answer=False)
    if not automatic and (damage := parse.broken(msg)):
        return _hold(row, env, damage, answer=False)
    # A message that will most likely be a reply reads its ticket locked (ticket_reply's lock: one
    # read, not two); an automatic or forged one, or one from someone who cannot reply, does not.
    lock = not automatic and not dmarc_failed and (person := _person(env.sender)) is not None and person.is_active
    ticket, matched_by = ticket_matched(env, lock=lock)
    if ticket is not None:
        return _reply(row, msg, env, body, ticket, automatic, dmarc_failed, locked=lock, matched_by=matched_by)
    if automatic:
        row.outcome, row.reason = Outcome.AUTOMATIC, automatic
        return None
    if dmarc_failed:
        return _hold(row, env, "Its sender failed DMARC: the From address may be forged.", answer=False)
    incident = match_incident(env)
    if incident is not None:
        return _incident_ticket(row, msg, env, body, incident)
    return _new_ticket(row, msg, env, body, dmarc_failed)


# --- Outcomes --------------------------------------------------------------------------------------
def _hold(row: InboundMessage, env: parse.Envelope, reason: str, *, answer: bool = True) -> None:
    row.outcome, row.reason = Outcome.HELD, reason[:300]
    if answer:
        answers.held_answer(row, env)


def _refuse(row: InboundMessage, env: parse.Envelope, automatic: str, reason: str) -> None:
    row.outcome, row.reason = Outcome.REFUSED, reason[:300]
    if not automatic:
        answers.refusal(row, env, reason)


# --- Security mail ---------------------------------------------------------------------------------
def _security(row, env, body, automatic) -> None:
    """Mail to the security address goes to the vulnerability reports, never to general triage:
    an answer to a report is put on it; anything else is a new report."""
    report = security.security_report_find(
        recipients=env.recipients, in_reply_to=env.in_reply_to, references=env.references, sender=env.sender
    )
    if automatic:
        row.outcome, row.reason, row.ticket = Outcome.AUTOMATIC, automatic, report.ticket if report else None
        return
    files, refused = uploads(body)
    refused += body.problems
    if report is not None:
        text = latest_reply(body.text) or "(The message had no text.)"  # an answer: without what it quotes
        message = security.security_report_receive(
            report=report,
            sender=env.sender,
            body=with_refused(text, refused),
            message_id=env.message_id,
            received_at=row.received_at,
            files=files,
        )
        row.outcome, row.ticket, row.ticket_message = Outcome.REPLIED, report.ticket, message
        return
    try:
        ticket = security.security_report_submit(
            email=env.sender,
            name="",
            summary=subject_line(env.subject),
            details=with_refused(body.text or "(The message had no text.)", refused),
            now=row.received_at,
            files=files,
        )
    except TicketError as exc:
        row.outcome, row.reason = Outcome.REFUSED, str(exc)[:300]
        return
    row.outcome, row.ticket = Outcome.FILED, ticket


# --- Replies -------------------------------------------------------------------------------------
def ticket_matched(env: parse.Envelope, *, lock: bool = False) -> tuple[Ticket | None, str]:
    """The ticket a message answers and how it was matched: by the ticket's reply address it was
    sent to (its token made for this sender, or for a staff sender the support queue's address,
    whose emails its members answer from their own: BY_ADDRESS), else by a Message-ID of ours it
    answers (In-Reply-To, References: the ticket's thread root, the outbox's emails of the ticket,
    or the customer's own message that filed it: BY_THREAD), else by a [#number] in the subject
    when the sender is a person of the ticket's organisation or staff (BY_NUMBER; a staff sender's
    is held).
    `lock`: read locked (tickets.services.locked_ticket: its own row), for ticket_reply(locked=True)."""
    tickets = Ticket.objects.filter(kind=Ticket.Kind.SUPPORT)

    def ticket_of(pk: int) -> Ticket | None:
        return locked_ticket(pk, Ticket.Kind.SUPPORT) if lock else tickets.filter(pk=pk).first()

    person = _person(env.sender)
    queue = settings.SUPPORT_QUEUE_EMAIL if person is not None and person.is_staff else None
    for address in env.recipients:
        number = mail_thread.ticket_of_address(address, env.sender)
        if number is None and queue:
            number = mail_thread.ticket_of_address(address, queue)
        if number is not None:
            ticket = ticket_of(number)
            if ticket is not None:
                return ticket, BY_ADDRESS
    ids = list(dict.fromkeys(security_mail.message_ids(env.in_reply_to) + security_mail.message_ids(env.references)))
    if len(ids) > THREAD_IDS:  # a thread's root is first, the latest last: a References of thousands costs no more
        ids = ids[:10] + ids[10 - THREAD_IDS :]
    for mid in ids:
        root = ROOT_ID.fullmatch(mid)
        ticket = ticket_of(int(root.group(1))) if root else None
        if ticket is not None and mail_thread.root_id(ticket) == mid:
            return ticket, BY_THREAD
    if ids:
        for key in OutboxMessage.objects.filter(message_id__in=ids[-50:], key__startswith="ticket:").values_list(
            "key", flat=True
        ):
            pk = mail_thread.ticket_of_email(key)
            ticket = ticket_of(pk) if pk is not None else None
            if ticket is not None:
                return ticket, BY_THREAD
        origin = InboundMessage.objects.filter(message_id__in=ids[-50:], ticket__kind=Ticket.Kind.SUPPORT)
        origin = origin.exclude(ticket=None).values_list("ticket_id", flat=True).first()
        if origin is not None:
            return ticket_of(origin), BY_THREAD
    number = NUMBER_TAG.search(env.subject)
    if number:
        found = locked_tickets().filter(kind=Ticket.Kind.SUPPORT) if lock else tickets
        found = found.filter(pk=int(number.group(1)))
        if person is None or not person.is_staff:  # staff are of no organisation (theirs is held: _staff_reply)
            found = found.filter(organisation__users__email__iexact=env.sender)
        return found.first(), BY_NUMBER
    return None, ""


def _person(address: str):
    return group.current().person(address)


def _reply(row, msg, env, body, ticket: Ticket, automatic: str, dmarc_failed, *, locked: bool, matched_by: str) -> None:
    row.ticket = ticket
    if automatic:
        return automatic_on_ticket(row, env, ticket, automatic)
    if dmarc_failed:
        return _hold(row, env, "Its sender failed DMARC: the From address may be forged.", answer=False)
    person = _person(env.sender)
    if person is None:
        return _hold(row, env, f"An unknown sender answered ticket {ticket.number}.")
    if person.is_staff:
        return _staff_reply(row, env, body, ticket, person, locked=locked, matched_by=matched_by)
    if not person.is_active:
        return _hold(row, env, f"{person.email} is deactivated.")
    if person.organisation_id != ticket.organisation_id:
        return _hold(row, env, f"{person.email} is not of the ticket's organisation ({ticket.organisation}).")
    return _post(row, env, body, ticket, person, locked=locked)


def automatic_on_ticket(row: InboundMessage, env: parse.Envelope, ticket: Ticket, reason: str) -> None:
    """An out-of-office answering one of our emails (at the ticket's reply address, or at the return
    path, as RFC 3834 has it): recorded on the ticket, never a reply (no clock restarts, nobody is
    answered)."""
    row.ticket, row.outcome, row.reason = ticket, Outcome.AUTOMATIC, reason[:300]
    row.save()  # now: the event names it (the service saves its effect)
    TicketEvent.objects.create(
        ticket=ticket, kind=TicketEvent.Kind.AUTOMATIC_MAIL, at=row.received_at,
        data={"from": env.sender, "subject": env.subject, "reason": reason, "inbound": row.pk},
    )  # fmt: skip


def _staff_reply(row, env, body, ticket: Ticket, person, *, locked: bool, matched_by: str) -> None:
    """A staff member answering a ticket email (Reply in their mail client) speaks for us: a public
    staff reply, as in the admin (the first response, NEW to OPEN, the customer emailed). A From
    can be forged, so only a message to the reply address whose token was made for this staff
    member's own address, or for the support queue's (whose emails go to its members), is posted:
    only who received that email has it; DMARC was checked before. Anything else is held for
    staff, never answered (our own people need no polite answer)."""
    if refused := staff_reply_refused(person):
        return _hold(row, env, refused, answer=False)
    if matched_by != BY_ADDRESS:
        return _hold(row, env, f"{person.email} is staff: a staff reply by email must answer the ticket's own reply "
                     f"address (the Reply-To of a ticket email sent to them); ticket {ticket.number}.", answer=False)  # fmt: skip
    return _post(row, env, body, ticket, person, locked=locked, staff=True)


def staff_reply_refused(person) -> str | None:
    """Why this staff member's message may not be their public reply on a ticket, or None (the
    email channel's rule, and triage's when it posts a held one as their reply)."""
    if not person.is_active:
        return f"{person.email} is a deactivated staff member."
    if not person.has_perm(WORK_TICKETS):
        return f"{person.email} is staff without the permission to work tickets."
    return None


def _post(row, env, body, ticket: Ticket, person, *, locked: bool, staff: bool = False) -> None:
    """The reply on its ticket (tickets.services.ticket_reply: a customer's or a staff member's, by
    its author), its quotes stripped. A customer's is held when they sent too many messages in the
    last hour (INBOUND_RATE_LIMIT), and their whole message is kept as a file on the reply. A staff
    member's is not limited (an agent answers tens of tickets an hour in an outage, each proven
    theirs by its address), and their whole message is not put on the reply: it quotes our emails
    to staff (the staff routing, what the customer was not sent), and the customer sees a public
    reply's files. It stays on its inbound row, which the admin's Inbound messages show."""
    if not staff and _flooding(env.sender, row):
        return _hold(row, env, "Too many messages from this sender in the last hour.", answer=False)
    files, refused = uploads(body)
    text = with_refused(latest_reply(body.text) or "(The message had no text.)", refused + body.problems)
    try:
        message = ticket_reply(ticket=ticket, author=person, body=text, files=files, now=row.received_at, locked=locked)
    except TicketError as exc:
        return _hold(row, env, f"Not added to ticket {ticket.number}: {exc}")
    if not staff:
        keep_original(row, message, person)
    row.outcome, row.ticket_message, row.organisation_id = Outcome.REPLIED, message, ticket.organisation_id
    return None


def keep_original(row: InboundMessage, message, person) -> None:
    """The whole message as it came, an .eml file on the reply (what the stripping left out); in the
    poller's group, inserted with the group's (its file written then)."""
    original = Attachment(
        ticket_id=message.ticket_id, message=message, file=ContentFile(bytes(row.raw), name="original.eml"),
        original_name="original.eml", content_type="message/rfc822", size=len(row.raw), uploaded_by=person,
        uploaded_at=row.received_at,
    )  # fmt: skip
    batch.save_new(original)


# --- New tickets -----------------------------------------------------------------------------------
def _flooding(sender: str, row: InboundMessage) -> bool:
    limit, window = settings.INBOUND_RATE_LIMIT
    return group.current().recent(sender, row.received_at, window) >= limit


def _contracts_for(person, recipients: list[str], at, terms: TermsCache) -> list[Contract]:
    """The person's organisation's contracts whose SLA version in force names one of the addresses
    the message was sent to as its level-1 email contact (the levels from the process's terms)."""
    found = []
    for contract in group.current().contracts(person.organisation_id):
        version = group.current().version_in_force(contract.sla_id, at)
        if version is None:
            continue
        level = next((lv for lv in terms.levels(version.pk) if lv.level == 1 and lv.channel == Channel.EMAIL), None)
        if level is not None and level.contact.strip().lower() in recipients:
            found.append((contract, version))
    return found


# --- Replies to incident emails ---------------------------------------------------------------------
def match_incident(env: parse.Envelope) -> Incident | None:
    """The incident an email answers: by its reply address (the token made for this sender), else
    by one of our incident emails' Message-IDs it answers."""
    for address in env.recipients:
        number = incident_mail.incident_of_address(address, env.sender)
        if number is not None:
            return Incident.objects.filter(pk=number).select_related("outage").first()
    ids = security_mail.message_ids(env.in_reply_to) + security_mail.message_ids(env.references)
    number = incident_mail.incident_of_message_ids(ids)
    return Incident.objects.filter(pk=number).select_related("outage").first() if number else None


def _incident_ticket(row, msg, env, body, incident: Incident) -> None:
    """A reply to an incident email files a ticket on the sender's contract that the incident
    affects (the first, by reference, they may open tickets on), linked to the incident."""
    person = _person(env.sender)
    if person is None or not person.organisation_id or not person.is_active:
        return _hold(row, env, "A reply to an incident email from someone who is not an active customer of ours.")
    row.organisation_id = person.organisation_id
    outage = incident.outage
    sids = set(outage.services.values_list("pk", flat=True))
    contracts = contracts_reached(outage).filter(organisation_id=person.organisation_id)
    for contract in contracts.order_by("reference", "pk"):
        try:
            support_contact_check(user=person, contract=contract)
        except PeopleError:
            continue
        version = version_in_force(sla_id=contract.sla_id, at=row.received_at)
        service = contract.services.filter(pk__in=sids).order_by("name").first()
        if version is None or service is None:
            continue
        if _flooding(env.sender, row):
            return _hold(row, env, "Too many messages from this sender in the last hour.", answer=False)
        subject, priority = priority_of(env.subject, version)
        files, refused = uploads(body)
        refused += body.problems
        receipt = not env.auto_generated
        text = latest_reply(body.text) or "(The message had no text.)"  # an answer to our incident email
        ticket = ticket_open(
            user=person, contract=contract, service=service, priority=priority, subject=subject,
            description=with_refused(text, refused),
            files=files, now=row.received_at, refused_files=refused, receipt=receipt, channel=Ticket.Channel.EMAIL,
            receipt_headers=answers.answer_headers(env) if receipt else None, email_origin=env.message_id,
        )  # fmt: skip
        ticket_link_incident(ticket=ticket, incident=incident, actor=None, now=row.received_at)
        row.outcome, row.ticket = Outcome.FILED, ticket
        return None
    return _hold(row, env, f"{person.email} may open tickets on none of the contracts the incident affects.")


def _new_ticket(row, msg, env, body, dmarc_failed) -> None:
    person = _person(env.sender)
    if person is not None and person.is_staff:  # our own people: held, never answered
        return _hold(row, env, f"{person.email} is staff: staff file a ticket for a customer in the admin, and "
                     "answer a ticket by email only at its reply address.", answer=False)  # fmt: skip
    if person is None or not person.organisation_id:
        return _hold(row, env, "The sender is not a customer of ours.")
    if not person.is_active:
        return _hold(row, env, f"{person.email} is deactivated.")
    row.organisation_id = person.organisation_id
    terms = TermsCache()  # one read of the terms revision for the contracts and the priority
    matching = _contracts_for(person, env.recipients, row.received_at, terms)
    if not matching:
        return _hold(row, env, "None of the organisation's contracts has this support address.")
    allowed = []
    for contract, version in matching:
        try:
            support_contact_check(user=person, contract=contract)
        except PeopleError:
            continue
        allowed.append((contract, version))
    if not allowed:
        return _hold(row, env, f"{person.email} may not open tickets on {matching[0][0].reference}.")
    if len(allowed) > 1:
        default = default_contract_of(user=person, contracts=[c for c, _ in allowed])
        if default is None:
            refs = ", ".join(c.reference for c, _ in allowed)
            return _hold(row, env, f"Several contracts have this support address ({refs}) and none is the "
                         "organisation's default contract.", answer=False)  # fmt: skip
        allowed = [(c, v) for c, v in allowed if c == default]
    if _flooding(env.sender, row):
        return _hold(row, env, "Too many messages from this sender in the last hour.", answer=False)
    contract, version = allowed[0]
    service = next(iter(contract.services.all()), None)  # the first by name (read with the contract)
    if service is None:
        return _hold(row, env, f"{contract.reference} covers no service.", answer=False)
    subject, priority = priority_of(env.subject, version, terms)
    files, refused = uploads(body)
    refused += body.problems
    receipt = not env.auto_generated
    ticket = ticket_open(
        user=person, contract=contract, service=service, priority=priority, subject=subject,
        description=with_refused(body.text or "(The message had no text.)", refused), files=files,
        now=row.received_at, refused_files=refused, receipt=receipt, channel=Ticket.Channel.EMAIL,
        receipt_headers=answers.answer_headers(env) if receipt else None, email_origin=env.message_id,
        version=version,
    )  # fmt: skip
    row.outcome, row.ticket = Outcome.FILED, ticket
    return None


def subject_line(subject: str) -> str:
    """A message's subject as a ticket's: printable characters only, at most 200, never empty."""
    clean = "".join(ch for ch in subject if ch.isprintable()).strip()
    return clean[:200] or "(no subject)"


def priority_of(subject: str, version, terms: TermsCache | None = None) -> tuple[str, str]:
    """The ticket's subject and priority: a [P1]..[P4] tag the version offers, else its email
    default, else its least urgent priority."""
    offered = [p.priority for p in (terms or TermsCache()).version(version.pk).priorities.all()]
    tag = PRIORITY_TAG.search(subject)
    if tag and tag.group(1).upper() in offered:
        return subject_line(PRIORITY_TAG.sub("", subject, count=1)), tag.group(1).upper()
    if version.email_priority in offered:
        return subject_line(subject), version.email_priority
    ordered = sorted(offered, key=lambda p: PRIORITY_ORDER.index(p) if p in PRIORITY_ORDER else 0)
    return subject_line(subject), ordered[-1]


def uploads(body: parse.Content) -> tuple[list, list[str]]:
    """The attachments that pass the upload checks, and a sentence for each one refused."""
    accepted, refused = [], []
    for f in body.files:
        if len(accepted) >= MAX_FILES:
            refused.append(f"“{f.name}”: at most {MAX_FILES} files are attached")
            continue
        upload = SimpleUploadedFile(f.name, f.content, content_type=f.claimed_type)
        try:
            upload.checked_type = validate_upload(upload)
        except ValidationError as exc:
            refused.append(" ".join(exc.messages))
            continue
        accepted.append(upload)
    return accepted, refused


MAX_TEXT = 20000  # a description's or reply's longest text
CUT = "\n\n[Cut here: the message was longer than 20,000 characters.]"


def with_refused(text: str, refused: list[str] = ()) -> str:
    """The text as stored: the files refused named after it, a text too long cut so that they
    still are, and the cut said where it is."""
    notice = "\n\n[Not attached: " + "; ".join(refused) + "]" if refused else ""
    if len(text) + len(notice) > MAX_TEXT:
        text = text[: max(0, MAX_TEXT - len(notice) - len(CUT))] + CUT
    return (text + notice)[:MAX_TEXT]
