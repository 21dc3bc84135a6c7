"""What a month below the guarantee tells the customer, besides the re-judging (credits.rejudging):

- **Invitation**: a month closed for the first time below its contract's guarantee emails the
  contract's people the credit rule lets through (portal.core.notify_rules, Kind.CREDIT): the
  uptime, the guarantee, the credit and the moment the claim window closes, with a link to the
  claim form filled in for that contract and month. Not for a month whose window has already
  closed (a fresh install closing old months). A month closed again is told by the re-judging
  email alone: one email, not two.
- **Reminder**: CLAIM_REMINDER before the window closes, if no claim was filed. The moment is
  stored on the month (`claim_reminder_at`, a partial index) when it is closed; the hourly close
  sweep sends what is due (`claim_reminders_send`) and clears it, once.

The claim window is the month's own (credits.services.claim_window): that of the terms in force at
its end, which judged it (`sla_version`), whatever is published later. Every email is keyed by
contract, month and recipient: written once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from contracts.models import Contract
from portal.core.notify_rules import Kind, Preferences, for_contract, members_prefetch
from portal.core.outbox import Email, outbox_enqueue_many
from portal.core.unsubscribe import email_to
from portal.domain.dates import days_after_month

from .models import MonthlyUptime

CLAIM_REMINDER = timedelta(days=7)
BATCH = 500


def _deadline(row: MonthlyUptime) -> datetime:
    return days_after_month(row.month, row.sla_version.timezone, row.sla_version.claim_window_days)


def _contracts(ids) -> dict[int, Contract]:
    return {
        c.pk: c
        for c in Contract.objects.filter(pk__in=set(ids))
        .select_related("organisation")
        .prefetch_related("contacts", members_prefetch())
    }


def reminders_schedule(rows: list[MonthlyUptime], now: datetime) -> list[tuple[MonthlyUptime, datetime]]:
    """Set `claim_reminder_at` on each row about to be stored (closed for the first time or again):
    CLAIM_REMINDER before its claim window closes, for a month below the guarantee whose reminder is
    still ahead; None otherwise. Returns the rows below the guarantee whose window is open, with its
    close (what an invitation needs). No query: the window is that of the row's own terms."""
    below = [r for r in rows if r.uptime_percent < r.guarantee]
    for r in rows:
        r.claim_reminder_at = None
    if not below:
        return []
    open_ = []
    for r in below:
        closes = _deadline(r)
        if now < closes:
            open_.append((r, closes))
            if closes - CLAIM_REMINDER > now:
                r.claim_reminder_at = closes - CLAIM_REMINDER
    return open_


def _context(row: MonthlyUptime, contract: Contract, closes: datetime, timezone: str) -> dict:
    return {
        "contract": contract, "month": row.month, "timezone": timezone, "deadline": closes,
        "uptime_percent": row.uptime_percent, "guarantee": row.guarantee, "tier_percent": row.tier_percent,
        "credit_amount": row.credit_amount, "currency": row.currency, "credit_kind": row.get_credit_kind_display(),
    }  # fmt: skip


def _emails(pairs, template: str, tag: str, now: datetime) -> list[Email]:
    contracts = _contracts(r.contract_id for r, _ in pairs)
    prefs = Preferences()
    prefs.load(u.pk for c in contracts.values() for u in c.organisation.users.all())
    emails = []
    for row, closes in pairs:
        contract = contracts[row.contract_id]
        context = _context(row, contract, closes, row.sla_version.timezone)
        key = f"month:{row.contract_id}:{row.month:%Y-%m}:{tag}"
        emails += [
            email_to(r, key=f"{key}:user:{r.user.pk}", template=template, context=context)
            for r in for_contract(Kind.CREDIT, contract, prefs=prefs)
        ]
    return emails


def claims_invite(pairs: list[tuple[MonthlyUptime, datetime]], now: datetime) -> int:
    """The invitation to claim for months closed for the first time (`pairs`: the row and its claim
    window's close, from reminders_schedule), in the closing's transaction."""
    if not pairs:
        return 0
    return outbox_enqueue_many(emails=_emails(pairs, "claim_invitation", "claim-invitation", now), now=now)


def claim_reminders_send(*, now: datetime) -> int:
    """The hourly sweep's second step: remind the contacts of every closed month whose reminder is
    due and that has no claim; clear the moment either way. Safe to run twice or on two machines:
    each batch's rows are locked (skip locked) and the emails keyed. Returns the emails written."""
    written = 0
    while True:
        with transaction.atomic():
            rows = list(
                MonthlyUptime.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(claim_reminder_at__lte=now)
                .select_related("sla_version")
                .order_by("claim_reminder_at", "pk")[:BATCH]
            )
            if not rows:
                return written
            claimed = set(
                MonthlyUptime.objects.filter(pk__in=[r.pk for r in rows], claims__isnull=False).values_list(
                    "pk", flat=True
                )
            )
            due = [(r, r.claim_reminder_at + CLAIM_REMINDER) for r in rows if r.pk not in claimed]
            due = [(r, closes) for r, closes in due if r.status == MonthlyUptime.Status.CLOSED and now < closes]
            written += outbox_enqueue_many(emails=_emails(due, "claim_reminder", "claim-reminder", now), now=now)
            MonthlyUptime.objects.filter(pk__in=[r.pk for r in rows]).update(claim_reminder_at=None)
