"""Who hears about a ticket, and the outbox emails for each ticket event. Keys make every email
once per event and recipient. Which customers get which email is portal.core.notify_rules' rule.

A vulnerability report is sealed: its staff emails (breaches, warnings, escalations, replies)
go to security staff alone, whoever the event would name for a support ticket, and no customer
hears of it (the reporter is written to by tickets.security_mail, from their own address)."""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.contrib.auth import get_user_model

from contracts.choices import Priority
from contracts.selectors import organisation_manager
from portal.core import batch
from portal.core.notify_rules import About, Kind, Preferences, Recipient, recipients
from portal.core.outbox import Email, outbox_enqueue_many
from portal.core.roles import StaffRole
from portal.core.unsubscribe import email_to

from . import mail_thread


class Audience:
    """Who may hear about tickets, loaded once for a batch: each organisation's active members,
    each ticket's participants (customers who wrote on it or asked to escalate it), and everyone's
    email choices. The rule itself is portal.core.notify_rules. Inside a portal.core.batch (the
    inbound poller's group) the members and their choices are read once for the batch; the
    participants, which its replies change, are read by each Audience."""

    def __init__(self, tickets=()):
        self.prefs, self._members = batch.shared("tickets.notify.people", _people) or _people()
        self._participants: dict[int, frozenset] = {}
        self.load(tickets)

    def load(self, tickets) -> None:
        from .models import EscalationRequest, TicketMessage

        orgs = {t.organisation_id for t in tickets} - set(self._members)
        if orgs:
            for org in orgs:
                self._members[org] = []
            for u in get_user_model().objects.filter(organisation_id__in=orgs, is_active=True).order_by("id"):
                self._members[u.organisation_id].append(u)
            self.prefs.load(u.pk for org in orgs for u in self._members[org])
        fresh = [t.pk for t in tickets if t.pk not in self._participants]
        if fresh:
            found = {pk: set() for pk in fresh}
            writers = TicketMessage.objects.filter(ticket_id__in=fresh, internal=False, author__is_staff=False)
            for ticket_id, user_id in writers.values_list("ticket_id", "author_id"):
                found[ticket_id].add(user_id)
            askers = EscalationRequest.objects.filter(ticket_id__in=fresh)
            for ticket_id, user_id in askers.values_list("ticket_id", "requested_by_id"):
                found[ticket_id].add(user_id)
            self._participants.update((pk, frozenset(ids)) for pk, ids in found.items())

    @classmethod
    def of_new_ticket(cls, ticket) -> Audience:
        """For the ticket just filed: nobody has written on it or asked to escalate it yet."""
        audience = cls()
        audience._participants[ticket.pk] = frozenset()
        return audience

    def recipients(self, ticket, kind: Kind) -> list[Recipient]:
        self.load([ticket])
        about = About(
            organisation_id=ticket.organisation_id, contract=ticket.contract, owner_id=ticket.created_by_id,
            participant_ids=self._participants[ticket.pk], p1=ticket.priority == Priority.P1,
        )  # fmt: skip
        return recipients(kind, users=self._members[ticket.organisation_id], about=about, prefs=self.prefs)


def _people() -> tuple[Preferences, dict[int, list]]:
    return Preferences(), {}


def staff_with_role(role: str) -> list:
    return list(get_user_model().objects.filter(is_staff=True, is_active=True, staff_role=role).order_by("id"))


def level_staff_emails(level, organisation, role_emails=None) -> list[str]:
    """The staff contact of an escalation level: a fixed email address, else the organisation's
    own manager for the role, else every staff member with the role (`role_emails(role)`, which a
    sweep passes to look staff up once per batch)."""
    if level.channel == "email" and "@" in level.contact:
        return [level.contact]
    person = organisation_manager(level=level, organisation=organisation)
    if person is not None:
        return [person.email]
    role_emails = role_emails or (lambda role: [u.email for u in staff_with_role(role)])
    return role_emails(level.staff_role) or [settings.SUPPORT_QUEUE_EMAIL]


def active_assignee(ticket):
    """Who has the ticket in hand: its assignee while active, else None (nobody: the queue). What a
    staff email routes by and what it says ("Assignee: nobody (the queue)"), one rule."""
    return ticket.assignee if ticket.assignee_id and ticket.assignee.is_active else None


def queue_or_assignee(ticket) -> list[str]:
    assignee = active_assignee(ticket)
    return [assignee.email] if assignee is not None else [settings.SUPPORT_QUEUE_EMAIL]


def to_customers(ticket, key: str, template: str, context: dict, *, kind: Kind, audience=None) -> list[Email]:
    """The ticket's email of `kind` to each customer the rule lets through (portal.core.notify_rules);
    nobody for a vulnerability report."""
    if ticket.kind == "security":
        return []
    audience = audience or Audience()
    emails = [
        email_to(r, key=f"{key}:user:{r.user.pk}", template=template, context={**context, "ticket": ticket})
        for r in audience.recipients(ticket, kind)
    ]
    return [replace(e, headers={**mail_thread.headers(ticket, e.to), **e.headers}) for e in emails]


def security_staff_emails(role_emails=None) -> list[str]:
    """Who hears about a vulnerability report: staff whose role is security (the role follows the
    role's group), else the security contact address. `role_emails(role)` as level_staff_emails."""
    role_emails = role_emails or (lambda role: [u.email for u in staff_with_role(role)])
    return role_emails(StaffRole.SECURITY) or [settings.SECURITY_CONTACT_EMAIL]


def status_emails(ticket, event, old: str) -> list[Email]:
    """A status change told to the ticket's customers (`old`: the status it left)."""
    label = ticket.Status(old).label
    return to_customers(
        ticket, f"ticket:{ticket.pk}:status:{event.pk}", "ticket_status", {"old": label}, kind=Kind.TICKET
    )


def to_addresses(emails, key: str, template: str, context: dict, ticket, role_emails=None) -> list[Email]:
    """Staff emails about a ticket; a vulnerability report's go to security staff instead."""
    security = ticket.kind == "security"
    if security:
        emails = security_staff_emails(role_emails)
    return [
        Email(
            key=f"{key}:to:{addr}",
            to=addr,
            template=template,
            context={**context, "ticket": ticket, "recipient": None},
            headers={} if security else mail_thread.headers(ticket, addr),
        )  # fmt: skip
        for addr in dict.fromkeys(emails)
    ]


def send(emails: list[Email], now, *, known_new: bool = False) -> int:
    """`known_new`: every key names a row just written (portal.core.outbox.outbox_enqueue_many)."""
    return outbox_enqueue_many(emails=emails, now=now, known_new=known_new)


def _root(ticket, email: Email, extra: dict) -> Email:
    """The filer's receipt starts the ticket's thread (tickets.mail_thread): the root Message-ID,
    answering only the customer's own message when there is one."""
    kept = {k: v for k, v in email.headers.items() if k not in mail_thread.THREAD_HEADERS}
    headers = {**kept, **mail_thread.root_headers(ticket, email.to), **extra}
    return replace(email, headers=headers, message_id=mail_thread.root_id(ticket))


def ticket_filed(ticket, *, ctx: dict, now, filer_receipt: bool = True, filer_headers: dict | None = None) -> int:
    """The receipt to the customer's side and the new ticket to the support queue, however it was
    filed (the portal, the API, staff for a caller, email). By email, the filer's own receipt answers
    their message (`filer_headers`: threading, auto-replied), or is not sent (`filer_receipt=False`:
    a monitoring system's automatic message)."""
    receipts = to_customers(
        ticket, f"ticket:{ticket.pk}:filed", "ticket_filed", ctx, kind=Kind.TICKET_FILED,
        audience=Audience.of_new_ticket(ticket),
    )  # fmt: skip
    filer = ticket.created_by.email
    own = [e for e in receipts if e.to == filer] if filer_receipt else []
    receipts = [e for e in receipts if e.to != filer] + [_root(ticket, e, filer_headers or {}) for e in own]
    emails = receipts + to_addresses(
        [settings.SUPPORT_QUEUE_EMAIL], f"ticket:{ticket.pk}:filed-staff", "ticket_filed_staff", ctx, ticket
    )
    return send(emails, now, known_new=True)  # every key names the ticket just filed


# --- Changes a customer must know of (issue 20, item 8): once per event and recipient, threaded -----
DEADLINES = ("first_response_due", "resolution_target_at", "resolution_due")


def _assignee(ticket, actor, key: str, ctx: dict) -> list[Email]:
    """The staff email of a change to the ticket's assignee, unless they made it themselves."""
    assignee = ticket.assignee
    if assignee is None or not assignee.is_active or (actor is not None and assignee.pk == actor.pk):
        return []
    return to_addresses([assignee.email], key, "ticket_changed_staff", ctx, ticket)


def priority_emails(ticket, event, *, actor, old: str, reason: str, before: dict) -> list[Email]:
    """A priority changed: from and to, the reason, and the deadlines before and after (the stored
    columns tickets.deadlines wrote), to the ticket's customers and its assignee."""
    key = f"ticket:{ticket.pk}:priority:{event.pk}"
    ctx = {"old": Priority(old).label, "old_code": old, "reason": reason, "before": before, "change": "priority"}
    customers = to_customers(ticket, key, "ticket_priority", ctx, kind=Kind.TICKET)
    return customers + _assignee(ticket, actor, f"{key}:staff", ctx)


def exclusion_emails(ticket, event, *, actor) -> list[Email]:
    """A ticket excluded from the SLA: the cause and the reason, to its customers and its assignee."""
    key = f"ticket:{ticket.pk}:excluded:{event.pk}"
    # Given, not read from the ticket when the email is rendered: the email says what this event said.
    ctx = {"change": "excluded", "cause": ticket.get_excluded_cause_display(), "reason": ticket.excluded_reason}
    customers = to_customers(ticket, key, "ticket_excluded", ctx, kind=Kind.TICKET)
    return customers + _assignee(ticket, actor, f"{key}:staff", ctx)


def assignment_emails(ticket, event, *, actor) -> list[Email]:
    """A ticket assigned: its new assignee is told (not when they took it themselves)."""
    key = f"ticket:{ticket.pk}:assigned:{event.pk}"
    return _assignee(ticket, actor, key, {"change": "assigned"})
