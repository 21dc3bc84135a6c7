"""Service-credit claims: the 30-day window in the contract's timezone, one claim per month,
the figure shown before submitting, staff decisions, emails either way."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from contracts.models import Outage
from credits.models import Claim, ClaimEvent, MonthlyUptime
from credits.services import ClaimError, claim_approve, claim_reject, claim_settle, claim_submit, month_reopen

NBO = ZoneInfo("Africa/Nairobi")
OCT = date(2026, 10, 1)
pytestmark = pytest.mark.django_db


@pytest.fixture
def bad_october(acme_contract):
    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    o = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(minutes=500))
    o.services.set(acme_contract.services.all())
    return acme_contract


def submit(contract, user, at, month=OCT, **kw):
    with time_machine.travel(at, tick=False):
        return claim_submit(contract=contract, month=month, user=user, **kw)


def test_a_claim_shows_the_months_figure_and_is_acknowledged_by_email(
    bad_october, alice, bob, django_capture_on_commit_callbacks
):
    at = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
    with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
        claim = claim_submit(contract=bad_october, month=OCT, user=alice, note="Backups failed on the 10th")
    # The month was closed on demand (the hourly run had not reached it).
    assert MonthlyUptime.objects.get(contract=bad_october, month=OCT).tier_percent == Decimal("10")
    assert (claim.eligible_amount, claim.currency, claim.credit_kind) == (Decimal("15000.00"), "KES", "refund")
    received = {m.to[0]: m for m in mail.outbox}
    assert set(received) == {alice.email, bob.email}
    body = received[alice.email].body
    assert "Monthly uptime: 98.880% against a guarantee of 99.8%." in body
    assert "Eligible credit: KES 15,000.00 (10.0% of the month's invoice, refund of the month's invoice)." in body


def test_a_month_that_has_not_ended_is_refused_with_when_claims_open(acme_contract, alice):
    with pytest.raises(
        ClaimError, match=r"October 2026 has not ended yet: claims open at 2026-11-01 00:00 \(UTC\+03:00\)"
    ):
        submit(acme_contract, alice, datetime(2026, 10, 31, 23, 59, tzinfo=NBO))
    assert not Claim.objects.exists()


def test_the_window_closes_thirty_days_after_the_month_end_in_the_contracts_timezone(bad_october, alice):
    with pytest.raises(
        ClaimError, match=r"Claims for October 2026 closed at 2026-12-01 00:00 \(UTC\+03:00\) \(30 days"
    ):
        submit(bad_october, alice, datetime(2026, 12, 1, 0, 0, tzinfo=NBO))
    assert submit(bad_october, alice, datetime(2026, 11, 30, 23, 59, 59, tzinfo=NBO)).pk


def test_a_second_claim_for_the_same_month_is_refused(bad_october, alice, bob):
    submit(bad_october, alice, datetime(2026, 11, 3, tzinfo=NBO))
    with pytest.raises(ClaimError, match="A claim for October 2026 was already filed for this contract."):
        submit(bad_october, bob, datetime(2026, 11, 4, tzinfo=NBO))
    assert Claim.objects.count() == 1


def test_another_organisations_contract_is_refused(bad_october, charlie):
    with pytest.raises(ClaimError, match="your organisation's contracts"):
        submit(bad_october, charlie, datetime(2026, 11, 3, tzinfo=NBO))


def test_approve_reject_adjust_settle(bad_october, alice, sam, django_capture_on_commit_callbacks):
    claim = submit(bad_october, alice, datetime(2026, 11, 3, tzinfo=NBO))
    mail.outbox.clear()
    with pytest.raises(ClaimError, match="Say why the amount differs"):
        claim_approve(claim=claim, actor=sam, amount=Decimal("12000"))
    with django_capture_on_commit_callbacks(execute=True):
        claim_approve(claim=claim, actor=sam, amount=Decimal("12000.00"), reason="Partial: the 10th was announced")
    claim.refresh_from_db()
    assert (claim.status, claim.amount) == ("approved", Decimal("12000.00"))
    adjusted = ClaimEvent.objects.get(claim=claim, kind="adjusted")
    assert adjusted.data == {"from": "15000.0000", "to": "12000.00", "reason": "Partial: the 10th was announced"}
    assert adjusted.actor == sam
    approved = next(m for m in mail.outbox if m.to == [alice.email] and "approved" in m.subject)
    assert approved.subject == "Service-credit claim approved: KES 12,000.00 for October 2026"
    assert "as refund of the month's invoice" in approved.body
    with pytest.raises(ClaimError):
        claim_reject(claim=claim, actor=sam, reason="too late")
    claim_settle(claim=claim, actor=sam)
    assert Claim.objects.get().status == "settled"


def test_a_rejection_needs_a_reason_and_tells_the_customer(bad_october, alice, sam, django_capture_on_commit_callbacks):
    claim = submit(bad_october, alice, datetime(2026, 11, 3, tzinfo=NBO))
    with pytest.raises(ClaimError, match="Say why"):
        claim_reject(claim=claim, actor=sam, reason="  ")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        claim_reject(claim=claim, actor=sam, reason="The outage was caused by unsupported equipment.")
    rejected = next(m for m in mail.outbox if m.to == [alice.email] and "rejected" in m.subject)
    assert "Reason: The outage was caused by unsupported equipment." in rejected.body


def test_reopening_a_month_is_audited_and_refused_once_a_claim_is_approved(bad_october, alice, sam):
    claim = submit(bad_october, alice, datetime(2026, 11, 3, tzinfo=NBO))
    m = MonthlyUptime.objects.get()
    month_reopen(monthly_uptime=m, actor=sam, reason="Outage cause corrected to force majeure")
    m.refresh_from_db()
    assert m.status == "reopened"
    assert m.reopenings.get().previous["credit_amount"] == "15000.0000"
    from credits.closing import close_month

    close_month(month=OCT, now=datetime(2026, 11, 4, tzinfo=NBO))
    claim_approve(claim=claim, actor=sam)
    with pytest.raises(ClaimError, match="already approved"):
        month_reopen(monthly_uptime=MonthlyUptime.objects.get(), actor=sam, reason="again")


def test_a_claim_on_a_reopened_month_waits_and_then_follows_the_corrected_figure(bad_october, alice, sam):
    from credits.closing import close_month

    claim = submit(bad_october, alice, datetime(2026, 11, 3, tzinfo=NBO))
    month_reopen(monthly_uptime=claim.monthly_uptime, actor=sam, reason="The outage was a DDoS")
    with pytest.raises(ClaimError, match="being corrected"):
        claim_approve(claim=claim, actor=sam)
    Outage.objects.update(cause="ddos")
    close_month(month=OCT, now=datetime(2026, 11, 4, tzinfo=NBO))
    claim.refresh_from_db()
    assert claim.eligible_amount is None and claim.amount is None  # no credit is due any more
