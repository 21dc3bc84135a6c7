"""Who hears about a ticket, and the outbox emails for each ticket event. Keys make every email
once per event and recipient."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model

from portal.core.outbox import Email, outbox_enqueue_many


def customer_recipients(ticket) -> list:
    """The filer and the contract's contacts (active users of the ticket's organisation)."""
    people = {ticket.created_by_id: ticket.created_by}
    for contact in ticket.contract.contacts.all():
        people.setdefault(contact.pk, contact)
    return [u for u in people.values() if u.is_active and u.organisation_id == ticket.organisation_id]


def staff_with_role(role: str) -> list:
    return list(get_user_model().objects.filter(is_staff=True, is_active=True, staff_role=role).order_by("id"))


def level_staff_emails(level, organisation, role_emails=None) -> list[str]:
    """The staff contact of an escalation level: a fixed email address, else the organisation's
    own manager for the role, else every staff member with the role (`role_emails(role)`, which a
    sweep passes to look staff up once per batch)."""
    if level.channel == "email" and "@" in level.contact:
        return [level.contact]
    person = None
    if level.staff_role == "account_manager":
        person = organisation.account_manager
    elif level.staff_role == "cloud_solutions_manager":
        person = organisation.solutions_manager
    if person is not None and person.is_active:
        return [person.email]
    role_emails = role_emails or (lambda role: [u.email for u in staff_with_role(role)])
    return role_emails(level.staff_role) or [settings.SUPPORT_QUEUE_EMAIL]


def queue_or_assignee(ticket) -> list[str]:
    if ticket.assignee_id and ticket.assignee.is_active:
        return [ticket.assignee.email]
    return [settings.SUPPORT_QUEUE_EMAIL]


def to_customers(ticket, key: str, template: str, context: dict) -> list[Email]:
    return [
        Email(
            key=f"{key}:user:{u.pk}",
            to=u.email,
            template=template,
            context={**context, "ticket": ticket, "recipient": u},
        )
        for u in customer_recipients(ticket)
    ]


def to_addresses(emails, key: str, template: str, context: dict, ticket) -> list[Email]:
    return [
        Email(
            key=f"{key}:to:{addr}", to=addr, template=template, context={**context, "ticket": ticket, "recipient": None}
        )
        for addr in dict.fromkeys(emails)
    ]


def send(emails: list[Email], now) -> int:
    return outbox_enqueue_many(emails=emails, now=now)
