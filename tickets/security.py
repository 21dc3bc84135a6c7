"""The bug bounty: vulnerability reports from anyone, without an account. Each report is a
ticket of kind "security" that only staff with the security role see, acknowledged on Klart's
clock (4 business hours), with a receipt to the reporter."""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from contracts.models import SLA, Contract, Organisation, Service
from contracts.selectors import version_in_force
from portal.core.outbox import Email, outbox_enqueue_many
from portal.core.roles import CustomerRole
from tickets.terms_cache import TermsCache

from .models import Ticket
from .services import TicketError, has_control_characters, ticket_create

REPORTS_ORG = ("security-reports", "Vulnerability reports (bug bounty)")
REPORTS_SERVICE = ("security", "Security")
REPORTS_CONTRACT = "SEC-REPORTS"


def _reports_contract() -> Contract:
    """The internal contract reports are filed on: created on first use, on the Klart template
    (whose SLA pledges to acknowledge within 4 business hours)."""
    org, _ = Organisation.objects.get_or_create(slug=REPORTS_ORG[0], defaults={"name": REPORTS_ORG[1]})
    service, _ = Service.objects.get_or_create(slug=REPORTS_SERVICE[0], defaults={"name": REPORTS_SERVICE[1]})
    contract = Contract.objects.filter(reference=REPORTS_CONTRACT).first()
    if contract is None:
        contract = Contract.objects.create(
            organisation=org, reference=REPORTS_CONTRACT, name="Vulnerability reports",
            sla=SLA.objects.get(template_key="klart-ai"), starts_on=date(2024, 1, 1),
            monthly_invoice_amount=0, currency="EUR",
        )  # fmt: skip
        contract.services.set([service])
    return contract


def _reporter(email: str, name: str, organisation: Organisation):
    """The reporter's account: an existing user with that email, else an inactive one that can
    never log in (it only records who reported)."""
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User(
            email=email.lower(),
            name=name,
            organisation=organisation,
            customer_role=CustomerRole.MEMBER,
            is_active=False,
        )
        user.set_unusable_password()
        user.save()
    return user


@transaction.atomic
def security_report_submit(*, email: str, name: str, summary: str, details: str, now: datetime | None = None) -> Ticket:
    now = now or timezone.now()
    if has_control_characters(summary):
        raise TicketError("The summary must be a single line.", field="summary")
    contract = _reports_contract()
    version = version_in_force(sla_id=contract.sla_id, at=now)
    terms = TermsCache()
    priority = terms.version(version.pk).priorities.all()[0].priority
    ticket = ticket_create(
        user=_reporter(email, name, contract.organisation), contract=contract, service=contract.services.get(),
        version=version, terms=terms, priority=priority, subject=summary, description=details, steps_to_reproduce="",
        kind=Ticket.Kind.SECURITY, now=now,
    )  # fmt: skip
    security_staff = list(
        get_user_model()
        .objects.filter(is_staff=True, is_active=True, staff_role="security")
        .values_list("email", flat=True)
    ) or [settings.SECURITY_CONTACT_EMAIL]
    ctx = {"ticket": ticket, "reporter_name": name, "reporter_email": email}
    emails = [
        Email(key=f"security-report:{ticket.pk}:receipt", to=email, template="security_report_receipt", context=ctx)
    ]
    emails += [
        Email(key=f"security-report:{ticket.pk}:staff:{addr}", to=addr, template="security_report_staff", context=ctx)
        for addr in security_staff
    ]
    outbox_enqueue_many(emails=emails, now=now)
    return ticket
