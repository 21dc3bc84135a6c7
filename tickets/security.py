"""The bug bounty: vulnerability reports from anyone, without an account. Each report is a
ticket of kind "security" that only staff with the security role see, acknowledged on Klart's
clock (4 business hours), with a receipt to the reporter.

- A report comes from an **address**, not an account: the ticket's filer is the reports' own
  account (which never logs in) and the address is kept on the report (SecurityReport), so a
  report sent with a customer's address is not attached to the customer.
- The public form is **limited** per address (one mailbox: case and +tag do not count) and per
  submitter (a keyed hash of the IP address), so it cannot be used to mail anyone over and over.
- The channel is **two-way**: staff replies are emailed to the reporter (tickets.security_mail)
  with the report's reply address; the inbound channel hands an answer to `security_report_find`
  and `security_report_receive`, which put it on the report.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from contracts.models import SLA, Contract, Organisation, Service
from contracts.selectors import version_in_force
from portal.core import form_limits
from portal.core.form_limits import address_key
from portal.core.outbox import Email, outbox_enqueue_many
from portal.core.roles import CustomerRole
from portal.models import OutboxMessage
from tickets.terms_cache import TermsCache

from . import notify, security_mail
from .models import SecurityReport, Ticket, TicketMessage
from .services import TicketError, has_control_characters, ticket_create, ticket_reply, ticket_set_status

REPORTS_ORG = ("security-reports", "Vulnerability reports (bug bounty)")
REPORTS_SERVICE = ("security", "Security")
REPORTS_CONTRACT = "SEC-REPORTS"
# The account every report is filed (and every reporter's email answer written) by: it never logs in.
REPORTS_ACCOUNT = ("reporter@security-reports.invalid", "The reporter (by email)")
# The public form's limits: at most this many reports in the window from one address, and from one
# submitter (IP address).
PER_ADDRESS = (3, timedelta(days=1))
PER_SOURCE = (10, timedelta(days=1))


class ReportLimited(TicketError):
    """Too many reports from one address or submitter: answered 429 with when to try again."""

    def __init__(self, message: str, retry_after: timedelta):
        super().__init__(message)
        self.retry_after = retry_after


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


def reports_account(organisation: Organisation):
    """The reports' own account: inactive, with no usable password (it only files)."""
    user, _ = get_user_model().objects.get_or_create(
        email=REPORTS_ACCOUNT[0],
        defaults={
            "name": REPORTS_ACCOUNT[1], "organisation": organisation, "customer_role": CustomerRole.MEMBER,
            "is_active": False, "password": make_password(None),
        },
    )  # fmt: skip
    return user


def source_key(source: str | None) -> str:
    return form_limits.source_key(source, purpose="tickets.security.source")


def _check_limits(*, address: str, source: str, now: datetime) -> None:
    limits = (
        ("address_key", address, PER_ADDRESS, "this email address"),
        ("source_key", source, PER_SOURCE, "your network address"),
    )
    if hit := form_limits.exceeded(SecurityReport.objects.all(), at="submitted_at", limits=limits, now=now):
        raise ReportLimited(
            f"We have received {hit.limit} reports from {hit.whom} in the last {hit.window.days * 24} hours. "
            f"Please try again in {max(1, round(hit.retry_after.total_seconds() / 3600))} hour(s), or add to a "
            "report you sent by answering its receipt.",
            retry_after=hit.retry_after,
        )


@transaction.atomic
def security_report_submit(
    *, email: str, name: str, summary: str, details: str, source: str | None = None, now: datetime | None = None,
    files=(),
) -> Ticket:  # fmt: skip
    """A report from the public form (`source`: the submitter's IP address, for the limit), or by
    email (`files`: its attachments, checked as uploads)."""
    now = now or timezone.now()
    if has_control_characters(summary):
        raise TicketError("The summary must be a single line.", field="summary")
    key, src = address_key(email), source_key(source)
    _check_limits(address=key, source=src, now=now)
    contract = _reports_contract()
    version = version_in_force(sla_id=contract.sla_id, at=now)
    terms = TermsCache()
    priority = terms.version(version.pk).priorities.all()[0].priority
    ticket = ticket_create(
        user=reports_account(contract.organisation), contract=contract, service=contract.services.get(),
        version=version, terms=terms, priority=priority, subject=summary, description=details, steps_to_reproduce="",
        kind=Ticket.Kind.SECURITY, now=now, files=files,
    )  # fmt: skip
    report = SecurityReport(
        ticket=ticket, reporter_email=email, reporter_name=name, submitted_at=now, address_key=key, source_key=src
    )
    # The receipt has a fixed subject and says nothing the submitter wrote: the form sends it to
    # any address typed in.
    receipt = security_mail.to_reporter(
        report, key="receipt", template="security_report_receipt", context={"ticket": ticket}, now=now
    )
    report.save()
    ctx = {"ticket": ticket, "reporter_name": name, "reporter_email": email}
    emails = [receipt] + [
        Email(key=f"security-report:{ticket.pk}:staff:{addr}", to=addr, template="security_report_staff", context=ctx)
        for addr in notify.security_staff_emails()
    ]
    outbox_enqueue_many(emails=emails, now=now)
    return ticket


# --- Email in: the reporter's answers ---------------------------------------------------------
def security_report_find(*, recipients=(), in_reply_to: str = "", references: str = "", sender: str = ""):
    """The report an inbound message answers, or None: by the report's reply address among its
    recipients (To, Cc, Delivered-To...), else by a Message-ID of ours it answers (In-Reply-To,
    References) from an email to the reporter, when it comes from the reporter's own address."""
    for address in security_mail.addresses(recipients):
        number = security_mail.report_id_of_address(address)
        if number is not None:
            return SecurityReport.objects.filter(ticket_id=number).select_related("ticket").first()
    ids = security_mail.message_ids(in_reply_to) + security_mail.message_ids(references)
    senders = security_mail.addresses([sender])
    sender_address = senders[0] if len(senders) == 1 else ""
    if not ids or not sender_address:
        return None
    keys = OutboxMessage.objects.filter(
        message_id__in=ids, key__startswith="security-report:", key__contains=":reporter:"
    ).values_list("key", flat=True)
    for key in keys:
        report = SecurityReport.objects.filter(ticket_id=int(key.split(":")[1])).select_related("ticket").first()
        if report is not None and report.reporter_email.lower() == sender_address.lower():
            return report
    return None


@transaction.atomic
def security_report_receive(
    *, report: SecurityReport, sender: str, body: str, message_id: str = "", received_at: datetime | None = None,
    files=(),
) -> TicketMessage | None:  # fmt: skip
    """Put a reporter's answer on its report: a message by the reports' account, as a customer's
    reply (security staff are told; a report waiting on the reporter opens again, a closed one is
    reopened). The same message twice (its Message-ID) is put once: None the second time."""
    now = received_at or timezone.now()
    ticket = Ticket.objects.select_for_update(of=("self",)).get(pk=report.ticket_id)
    report = SecurityReport.objects.get(pk=report.pk)  # its thread as it is under the ticket's lock
    if message_id and message_id in security_mail.thread_ids(report):
        return None
    reporter = ticket.created_by
    if ticket.status == Ticket.Status.CLOSED:
        ticket_set_status(ticket=ticket, actor=reporter, status=Ticket.Status.OPEN, now=now)
    message = ticket_reply(ticket=ticket, author=reporter, body=body, files=files, now=now)
    entry = {"at": now.isoformat(), "in": True, "from": sender, "message": message.pk}
    report.thread.append({"id": message_id, **entry} if message_id else entry)  # without one, nothing answers it
    report.save(update_fields=["thread"])
    return message
