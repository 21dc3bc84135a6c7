"""A reopened month closed again (credits.closing._store, in its transaction): what follows.

- The change is audited (`month.rejudged`, no actor) with the figures before and after: uptime,
  minutes, tier, credit.
- Where the tier or the credit changed (`credit_moved`): the row says when (credit_changed_at: the
  staff dashboard lists it), the contract's contacts are emailed (month_rejudged: the month, the
  old and new figure, the credit, the claim deadline or the claim already filed), a claim awaiting review follows the new
  figure (its eligible amount, audited), and a claim already decided (approved, settled or
  rejected) is never changed: it is flagged for staff (figure_changed_at, a claim event, audited).
"""

from __future__ import annotations

from datetime import datetime

from contracts.models import Contract
from portal.core.audit import audit_entry
from portal.core.notify_rules import Kind, Preferences, for_contract, members_prefetch
from portal.core.outbox import outbox_enqueue_many
from portal.core.unsubscribe import email_to
from portal.domain.dates import days_after_month
from portal.models import AuditEntry

from .models import Claim, ClaimEvent, MonthlyUptime

FIGURES = ("uptime_percent", "down_minutes", "excluded_minutes", "tier_percent", "credit_amount")


def credit_moved(before: MonthlyUptime, after: MonthlyUptime) -> bool:
    """Whether closing again changed what the month is worth to the customer."""
    return (before.tier_percent, before.credit_amount) != (after.tier_percent, after.credit_amount)


def _figures(row: MonthlyUptime) -> dict:
    return {name: getattr(row, name) for name in FIGURES}


def months_rejudged(*, pairs: list[tuple[MonthlyUptime, MonthlyUptime]], now: datetime) -> None:
    """`pairs`: each month as it was closed before and as it is closed now (saved)."""
    AuditEntry.objects.bulk_create(
        audit_entry(actor=None, action="month.rejudged", target=after, before=_figures(before),
                    after={**_figures(after), "credit_changed": credit_moved(before, after)}, now=now)
        for before, after in pairs
    )  # fmt: skip
    claims = _claims_follow(pairs, now)
    moved = [(before, after) for before, after in pairs if credit_moved(before, after)]
    if moved:
        _tell_customers(moved, claims, now)


def _claims_follow(pairs, now: datetime) -> dict[int, Claim]:
    """A claim awaiting review takes the new eligible amount; a decided one is flagged where the
    credit changed. Returns the claims by month row."""
    by_row = {after.pk: (before, after) for before, after in pairs}
    claims = {c.monthly_uptime_id: c for c in Claim.objects.filter(monthly_uptime_id__in=by_row)}
    events, entries = [], []
    for row_id, claim in claims.items():
        before, after = by_row[row_id]
        if claim.status == Claim.Status.SUBMITTED:
            if claim.eligible_amount == after.credit_amount:
                continue
            was = claim.eligible_amount
            claim.eligible_amount = after.credit_amount
            claim.save(update_fields=["eligible_amount"])
            data = {"from": None if was is None else str(was), "to": _text(after.credit_amount)}
            events.append(ClaimEvent(claim=claim, kind=ClaimEvent.Kind.REFIGURED, at=now, data=data))
            entries.append(
                audit_entry(actor=None, action="claim.refigured", target=claim, before={"eligible_amount": was},
                            after={"eligible_amount": after.credit_amount}, now=now)
            )  # fmt: skip
        elif credit_moved(before, after):
            claim.figure_changed_at = now
            claim.save(update_fields=["figure_changed_at"])
            data = {"from": _text(before.credit_amount), "to": _text(after.credit_amount), "status": claim.status}
            events.append(ClaimEvent(claim=claim, kind=ClaimEvent.Kind.FLAGGED, at=now, data=data))
            entries.append(
                audit_entry(actor=None, action="claim.flagged", target=claim,
                            before={"month_credit": before.credit_amount},
                            after={"month_credit": after.credit_amount, "status": claim.status}, now=now)
            )  # fmt: skip
    ClaimEvent.objects.bulk_create(events)
    AuditEntry.objects.bulk_create(entries)
    return claims


def _text(amount) -> str | None:
    return None if amount is None else str(amount)


def _tell_customers(moved, claims: dict[int, Claim], now: datetime) -> None:
    contracts = {
        c.pk: c
        for c in Contract.objects.filter(pk__in={after.contract_id for _, after in moved})
        .select_related("organisation")
        .prefetch_related("contacts", members_prefetch())
    }
    prefs = Preferences()
    prefs.load(u.pk for c in contracts.values() for u in c.organisation.users.all())
    stamp = f"{now.timestamp():.6f}"  # one email per closing again, whatever the number of them
    emails = []
    for before, after in moved:
        contract = contracts[after.contract_id]
        # The month's claim window (credits.services.claim_window): that of the terms that judged it.
        version = after.sla_version
        deadline = days_after_month(after.month, version.timezone, version.claim_window_days)
        claim = claims.get(after.pk)
        context = {
            "contract": contract, "month": after.month, "timezone": version.timezone,
            "before": _figures(before), "after": _figures(after), "guarantee": after.guarantee,
            "currency": after.currency, "credit_kind": after.get_credit_kind_display(),
            # One claim per month: where one was filed, the email points to it, never to filing another.
            "deadline": deadline, "claims_open": claim is None and now < deadline,
            "claim_id": claim.pk if claim else None, "claim_status": claim.status if claim else "",
        }  # fmt: skip
        # The claim's submitter is told whatever they chose: their claim's figure moved.
        emails += [
            email_to(r, key=f"month:{after.pk}:rejudged:{stamp}:user:{r.user.pk}", template="month_rejudged",
                     context=context)
            for r in for_contract(Kind.CREDIT, contract, prefs=prefs, owner_id=claim.submitted_by_id if claim else None)
        ]  # fmt: skip
    outbox_enqueue_many(emails=emails, now=now)
