"""Claims and reopened months: writes, with their emails through the outbox and an audit row."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from contracts.selectors import Versions
from portal.core.audit import audit, audit_entry
from portal.core.notify_rules import Kind, for_contract
from portal.core.outbox import Email, outbox_enqueue_many
from portal.core.unsubscribe import email_to
from portal.core.webhooks import HookEvent, webhooks_emit
from portal.domain.dates import month_bounds
from portal.domain.formats import amount as amount_text
from portal.domain.formats import in_tz, minor_unit_exponent, money
from portal.models import AuditEntry, WebhookEvent

from .closing import close_month
from .figures import not_covered
from .models import Claim, ClaimAttachment, ClaimEvent, MonthlyUptime, MonthReopening
from .selectors import claim_deadline

Status = Claim.Status


class ClaimError(Exception):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def claim_window(*, contract, month: date, now: datetime | None = None):
    """(month end, claims close) in UTC for the contract's month, and the terms that judge it
    (Versions.of_month: a version published later changes neither its credit nor its window, and
    `now` changes nothing)."""
    version = Versions([contract.sla_id]).of_month(contract.sla_id, month)
    if version is None:
        raise ClaimError("This contract has no SLA terms in force.", field="contract")
    _, end = month_bounds(month.year, month.month, version.timezone)
    return end, claim_deadline(version=version, month=month), version


def claim_check(*, contract, month: date, now: datetime | None = None) -> MonthlyUptime:
    """The month's closed figures, or a ClaimError saying why no claim can be filed for it."""
    now = now or timezone.now()
    month = month.replace(day=1)
    end, closes, version = claim_window(contract=contract, month=month, now=now)
    if now < end:
        raise ClaimError(
            f"{month:%B %Y} has not ended yet: claims open at {in_tz(end, version.timezone)}.", field="month"
        )
    if now >= closes:
        raise ClaimError(
            f"Claims for {month:%B %Y} closed at {in_tz(closes, version.timezone)} "
            f"({version.claim_window_days} days after the month's end).",
            field="month",
        )
    if outside := not_covered(contract, month):
        raise ClaimError(outside, field="month")
    if Claim.objects.filter(contract=contract, month=month).exists():
        raise ClaimError(f"A claim for {month:%B %Y} was already filed for this contract.", field="month")
    closed = MonthlyUptime.objects.filter(contract=contract, month=month, status=MonthlyUptime.Status.CLOSED).first()
    if closed is None:
        # The hourly run has not reached this contract yet: close its month now.
        close_month(month=month, now=now, contract_ids=[contract.pk], invite=False)
        closed = MonthlyUptime.objects.filter(contract=contract, month=month).first()
        if closed is None:  # close_month skips a month with no SLA version in force at its end
            raise ClaimError(
                f"{month:%B %Y} has no uptime figures: no SLA terms were in force at its end.", field="month"
            )
    return closed


def _customer_emails(claim: Claim, template: str, key: str, context: dict) -> list[Email]:
    """The claim's email to each person the email rule lets through (portal.core.notify_rules:
    mandatory for its submitter, chosen by the contract's designated contacts and members)."""
    return [
        email_to(r, key=f"claim:{claim.pk}:{key}:user:{r.user.pk}", template=template, context={"claim": claim, **context})
        for r in for_contract(Kind.CREDIT, claim.contract, owner_id=claim.submitted_by_id)
    ]  # fmt: skip


@transaction.atomic
def claim_submit(
    *, contract, month: date, user, note: str = "", tickets=(), files=(), now: datetime | None = None
) -> Claim:
    now = now or timezone.now()
    month = month.replace(day=1)
    if user.organisation_id != contract.organisation_id:
        raise ClaimError("Choose one of your organisation's contracts.", field="contract")
    closed = claim_check(contract=contract, month=month, now=now)
    foreign = [t for t in tickets if t.organisation_id != contract.organisation_id]
    if foreign:
        raise ClaimError("Link only your organisation's tickets.", field="tickets")
    try:
        with transaction.atomic():
            claim = Claim.objects.create(
                contract=contract, month=month, monthly_uptime=closed, submitted_by=user, submitted_at=now, note=note,
                eligible_amount=closed.credit_amount, currency=closed.currency,  # amount: set by a decision
                credit_kind=closed.credit_kind,
            )  # fmt: skip
    except IntegrityError:  # a second claim filed at the same moment
        raise ClaimError(f"A claim for {month:%B %Y} was already filed for this contract.", field="month") from None
    claim.tickets.set(tickets)
    _add_files(claim, files, user, now)
    ClaimEvent.objects.create(claim=claim, kind=ClaimEvent.Kind.SUBMITTED, at=now, actor=user)
    outbox_enqueue_many(emails=_customer_emails(claim, "claim_received", "received", {"uptime": closed}), now=now)
    return claim


def _claim_decided(claim: Claim, now: datetime) -> None:
    """The `claim.decided` webhook event (docs/webhooks.md), in the decision's transaction."""
    data = {
        "claim": {
            "id": claim.pk, "url": settings.PORTAL_BASE_URL + reverse("claim-detail", args=[claim.pk]),
            "contract": claim.contract_id, "month": claim.month.strftime("%Y-%m"), "status": claim.status,
            # As the API gives them (credits.api.ClaimOutputSerializer): text in the currency's minor unit.
            "eligible_amount": amount_text(claim.eligible_amount, claim.currency),
            "amount": amount_text(claim.amount, claim.currency), "currency": claim.currency,
            "credit_kind": claim.credit_kind, "decision_reason": claim.decision_reason, "decided_at": claim.decided_at,
        }
    }  # fmt: skip
    event = HookEvent(
        organisation_id=claim.contract.organisation_id, event=WebhookEvent.CLAIM_DECIDED,
        key=f"claim:{claim.pk}:decided:{claim.status}", data=data,
    )  # fmt: skip
    webhooks_emit(events=[event], now=now)


def _add_files(claim: Claim, files, user, now: datetime) -> list[ClaimAttachment]:
    """Each upload already checked by tickets.attachments.validate_upload (its `checked_type`)."""
    return [
        ClaimAttachment.objects.create(
            claim=claim,
            file=f,
            original_name=f.name[:255],
            content_type=getattr(f, "checked_type", "application/octet-stream"),
            size=f.size,
            uploaded_by=user,
            uploaded_at=now,
        )  # fmt: skip
        for f in files
    ]


@transaction.atomic
def claim_attach(*, claim: Claim, user, files, now: datetime | None = None) -> list[ClaimAttachment]:
    """Evidence added to a filed claim (the API's upload; the portal takes files when filing), by
    someone of its organisation, while it awaits review: a decided claim's evidence is what it was
    decided on."""
    now = now or timezone.now()
    claim = _locked(claim)
    if user.organisation_id != claim.contract.organisation_id:
        raise ClaimError("Choose one of your organisation's claims.")
    if claim.status != Status.SUBMITTED:
        raise ClaimError(
            f"This claim is {claim.get_status_display().lower()}: evidence can be added only while it awaits review.",
            field="file",
        )
    return _add_files(claim, files, user, now)


def _locked(claim: Claim) -> Claim:
    return (
        Claim.objects.select_for_update(of=("self",))
        .select_related("contract", "submitted_by", "monthly_uptime")
        .get(pk=claim.pk)
    )


@transaction.atomic
def claim_approve(
    *, claim: Claim, actor, amount: Decimal | None = None, reason: str = "", now: datetime | None = None
) -> Claim:
    """Approve at the eligible amount, or at an adjusted one (with a reason, audited)."""
    now = now or timezone.now()
    claim = _locked(claim)
    if claim.status != Status.SUBMITTED:
        raise ClaimError(
            f"This claim is {claim.get_status_display().lower()}: only a claim awaiting review can be approved."
        )
    if claim.monthly_uptime.status == MonthlyUptime.Status.REOPENED:
        raise ClaimError("The month's figures are being corrected (reopened): approve once it is closed again.")
    if amount is None:
        amount = claim.eligible_amount
    if amount is None:
        raise ClaimError(
            "No credit is due for this month by its figures: give an amount and a reason, or reject it.", field="amount"
        )
    amount = Decimal(amount)
    if amount < 0:
        raise ClaimError("The amount cannot be negative.", field="amount")
    invoice = claim.monthly_uptime.invoice_amount  # a service credit is a part of the month's invoice, at most all
    if amount > invoice:
        raise ClaimError(
            f"The amount cannot exceed the month's invoice ({money(invoice, claim.currency)}).", field="amount"
        )
    if amount != amount.quantize(minor_unit_exponent(claim.currency)):
        raise ClaimError(f"Use at most the minor unit of {claim.currency}.", field="amount")
    if amount != claim.eligible_amount:
        if not reason.strip():
            raise ClaimError("Say why the amount differs from the eligible credit.", field="reason")
        ClaimEvent.objects.create(
            claim=claim, kind=ClaimEvent.Kind.ADJUSTED, at=now, actor=actor,
            data={"from": None if claim.eligible_amount is None else str(claim.eligible_amount), "to": str(amount), "reason": reason},
        )  # fmt: skip
        audit(actor=actor, action="claim.adjusted", target=claim, before={"amount": claim.eligible_amount},
              after={"amount": amount, "reason": reason}, now=now)  # fmt: skip
    claim.status, claim.amount, claim.decision_reason = Status.APPROVED, amount, reason
    claim.decided_by, claim.decided_at = actor, now
    claim.save(update_fields=["status", "amount", "decision_reason", "decided_by", "decided_at"])
    ClaimEvent.objects.create(
        claim=claim, kind=ClaimEvent.Kind.APPROVED, at=now, actor=actor, data={"amount": str(amount)}
    )
    audit(actor=actor, action="claim.approved", target=claim, before={"status": Status.SUBMITTED},
          after={"status": Status.APPROVED, "amount": amount}, now=now)  # fmt: skip
    outbox_enqueue_many(emails=_customer_emails(claim, "claim_approved", "approved", {}), now=now)
    _claim_decided(claim, now)
    return claim


@transaction.atomic
def claim_reject(*, claim: Claim, actor, reason: str, now: datetime | None = None) -> Claim:
    now = now or timezone.now()
    claim = _locked(claim)
    if claim.status != Status.SUBMITTED:
        raise ClaimError(
            f"This claim is {claim.get_status_display().lower()}: only a claim awaiting review can be rejected."
        )
    if not reason.strip():
        raise ClaimError("Say why the claim is rejected: the customer is told.", field="reason")
    claim.status, claim.decision_reason, claim.decided_by, claim.decided_at = Status.REJECTED, reason, actor, now
    claim.amount = None
    claim.save(update_fields=["status", "decision_reason", "decided_by", "decided_at", "amount"])
    ClaimEvent.objects.create(claim=claim, kind=ClaimEvent.Kind.REJECTED, at=now, actor=actor, data={"reason": reason})
    audit(actor=actor, action="claim.rejected", target=claim, before={"status": Status.SUBMITTED},
          after={"status": Status.REJECTED, "reason": reason}, now=now)  # fmt: skip
    outbox_enqueue_many(emails=_customer_emails(claim, "claim_rejected", "rejected", {}), now=now)
    _claim_decided(claim, now)
    return claim


@transaction.atomic
def claim_settle(*, claim: Claim, actor, now: datetime | None = None) -> Claim:
    """Staff mark an approved claim as credited to the account or refunded."""
    now = now or timezone.now()
    claim = _locked(claim)
    if claim.status != Status.APPROVED:
        raise ClaimError("Only an approved claim can be marked as credited or refunded.")
    claim.status, claim.settled_at = Status.SETTLED, now
    claim.save(update_fields=["status", "settled_at"])
    ClaimEvent.objects.create(claim=claim, kind=ClaimEvent.Kind.SETTLED, at=now, actor=actor)
    audit(actor=actor, action="claim.settled", target=claim, now=now, before={"status": Status.APPROVED},
          after={"status": Status.SETTLED, "amount": claim.amount, "currency": claim.currency, "credit_kind": claim.credit_kind})  # fmt: skip
    tz = claim.monthly_uptime.sla_version.timezone
    outbox_enqueue_many(emails=_customer_emails(claim, "claim_settled", "settled", {"timezone": tz}), now=now)
    return claim


@transaction.atomic
def month_reopen(*, monthly_uptime: MonthlyUptime, actor, reason: str, now: datetime | None = None) -> MonthlyUptime:
    """Reopen a closed month; the next run (or a claim's preview) closes it again. Staff (`actor`)
    reopen after a correction, and not over an approved or settled claim. The system (`actor`
    None) reopens it when evidence that touches it changed (credits.evidence), whatever its claims:
    a decided claim is flagged when the month closes again, never changed; a month already reopened
    is left as it is."""
    now = now or timezone.now()
    m = MonthlyUptime.objects.select_for_update().get(pk=monthly_uptime.pk)
    if m.status != MonthlyUptime.Status.CLOSED:
        if actor is None:
            return m
        raise ClaimError("This month is already reopened.")
    if not reason.strip():
        raise ClaimError("Say why the month is reopened.", field="reason")
    if actor is not None and m.claims.filter(status__in=[Status.APPROVED, Status.SETTLED]).exists():
        raise ClaimError("A claim on this month is already approved; reject or settle it before reopening.")
    months_reopen(monthly_uptimes=[m], reasons={m.pk: reason}, actor=actor, now=now)
    return m


def months_reopen(*, monthly_uptimes: list[MonthlyUptime], reasons: dict[int, str], actor, now: datetime) -> int:
    """month_reopen's writes for many closed months, read with select_for_update by the caller, in a
    fixed number of queries: a reopening (with the figures before) and an audit entry each, and the
    status. Returns how many were reopened."""
    rows = [m for m in monthly_uptimes if m.status == MonthlyUptime.Status.CLOSED]
    if not rows:
        return 0
    reopenings, entries = [], []
    for m in rows:
        previous = {
            "uptime_percent": str(m.uptime_percent), "down_minutes": m.down_minutes,
            "excluded_minutes": m.excluded_minutes,
            "tier_percent": str(m.tier_percent) if m.tier_percent is not None else None,
            "credit_amount": str(m.credit_amount) if m.credit_amount is not None else None,
        }  # fmt: skip
        reopenings.append(
            MonthReopening(monthly_uptime=m, at=now, actor=actor, reason=reasons[m.pk], previous=previous)
        )
        entries.append(
            audit_entry(actor=actor, action="month.reopened", target=m, before={"status": "closed", **previous},
                        after={"status": "reopened", "reason": reasons[m.pk]}, now=now)
        )  # fmt: skip
        m.status = MonthlyUptime.Status.REOPENED
    MonthReopening.objects.bulk_create(reopenings)
    AuditEntry.objects.bulk_create(entries)
    MonthlyUptime.objects.filter(pk__in=[m.pk for m in rows]).update(status=MonthlyUptime.Status.REOPENED)
    return len(rows)
