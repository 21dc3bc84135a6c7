"""Money notices (issue 20, item 7): a month closed below the guarantee invites the contract's
contacts to claim (the figure, the credit, the deadline, a link to the filled-in claim form), a
reminder 7 days before the window closes if no claim was filed, an email when a claim is credited
or refunded; a month closed again tells them once (the re-judging email, no second invitation);
no invitation for a month whose window has already closed. Every email once, the sweep run twice.

Alice and Bob at Acme (KAL-0001, Kaluari, KES 150,000 a month, Nairobi, guarantee 99.8%), both
designated contacts; Charlie at Globex. October 2026 has 44,640 minutes: 500 down is 98.880%
(10%: KES 15,000). Clocks are frozen."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from contracts.models import Outage
from contracts.outages.services import outage_update
from credits.models import MonthlyUptime
from credits.services import claim_approve, claim_settle, claim_submit
from credits.tasks import close_month as hourly
from portal.models import OutboxMessage

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
OCT = date(2026, 10, 1)
CLOSED_AT = datetime(2026, 11, 1, 1, 0, tzinfo=NBO)  # an hour after October ended in Nairobi
REMIND_AT = datetime(2026, 11, 24, 0, 30, tzinfo=NBO)  # the first hourly run 7 days before 1 December


def down(contract, start, minutes):
    o = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(minutes=minutes))
    o.services.set(contract.services.all())
    return o


@pytest.fixture
def bad_october(acme_contract, charlie):
    down(acme_contract, datetime(2026, 10, 10, 2, 0, tzinfo=NBO), 500)
    return acme_contract


def run_hourly(at, capture):
    """The beat's hourly task at `at`, its emails delivered (as the worker does after commit)."""
    with time_machine.travel(at, tick=False), capture(execute=True):
        hourly()


def rows(template):
    return sorted(OutboxMessage.objects.filter(template=template).values_list("to", flat=True))


def test_a_month_closed_below_the_guarantee_invites_the_contacts_once(
    bad_october, alice, bob, charlie, django_capture_on_commit_callbacks
):
    run_hourly(CLOSED_AT, django_capture_on_commit_callbacks)
    month = MonthlyUptime.objects.get(contract=bad_october, month=OCT)
    assert (month.uptime_percent, month.credit_amount) == (Decimal("98.87992832"), Decimal("15000.0000"))
    assert month.claim_reminder_at == datetime(2026, 11, 24, 0, 0, tzinfo=NBO)
    assert rows("claim_invitation") == [alice.email, bob.email]  # Charlie, at Globex, hears nothing
    to_alice = next(m for m in mail.outbox if m.to == [alice.email])
    assert to_alice.subject == (
        "KAL-0001, October 2026: 98.880% against 99.8%: claim KES 15,000.00 by 2026-12-01 00:00 (UTC+03:00)"
    )
    body = to_alice.body
    assert "Hello Alice Achieng," in body
    assert (
        "Your uptime for October 2026 on KAL-0001 (Cloud Backup for Acme) was 98.880% against 99.8%: you may claim a "
        "credit of KES 15,000.00 (10.0% of the month's invoice, refund of the month's invoice) until "
        "2026-12-01 00:00 (UTC+03:00)." in body
    )
    assert f"/claims/new/?contract={bad_october.pk}&month=2026-10" in body
    html = to_alice.alternatives[0][0]
    assert f"/claims/new/?contract={bad_october.pk}&amp;month=2026-10" in html
    assert "<strong>KES 15,000.00</strong>" in html
    # Automatic mail (RFC 3834), optional for the contacts: a one-click unsubscribe from credit emails.
    assert to_alice.extra_headers["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" in to_alice.extra_headers
    assert {m.to[0] for m in mail.outbox} == {alice.email, bob.email}

    # The link opens the claim form filled in for that contract and month.
    from django.test import Client

    client = Client()
    client.force_login(alice)
    with time_machine.travel(CLOSED_AT + timedelta(hours=1), tick=False):
        page = client.get(f"/claims/new/?contract={bad_october.pk}&month=2026-10").content.decode()
    assert 'value="2026-10"' in page and f'<option value="{bad_october.pk}" selected' in page

    # The next runs write nothing again.
    mail.outbox.clear()
    run_hourly(CLOSED_AT + timedelta(hours=1), django_capture_on_commit_callbacks)
    run_hourly(CLOSED_AT + timedelta(hours=1), django_capture_on_commit_callbacks)
    assert not mail.outbox and OutboxMessage.objects.filter(template="claim_invitation").count() == 2


def test_the_reminder_goes_seven_days_before_the_window_closes_once(
    bad_october, alice, bob, django_capture_on_commit_callbacks
):
    run_hourly(CLOSED_AT, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    run_hourly(REMIND_AT - timedelta(hours=1), django_capture_on_commit_callbacks)  # not yet due
    assert not mail.outbox
    run_hourly(REMIND_AT, django_capture_on_commit_callbacks)
    run_hourly(REMIND_AT, django_capture_on_commit_callbacks)  # twice: nothing more
    run_hourly(REMIND_AT + timedelta(hours=1), django_capture_on_commit_callbacks)
    assert sorted(m.to[0] for m in mail.outbox) == [alice.email, bob.email]
    assert rows("claim_reminder") == [alice.email, bob.email]
    reminder = next(m for m in mail.outbox if m.to == [bob.email])
    assert reminder.subject == "Reminder: claims for KAL-0001, October 2026 close 2026-12-01 00:00 (UTC+03:00)"
    assert "No claim has been filed yet. Your uptime for October 2026" in reminder.body
    assert "you may claim a credit of KES 15,000.00" in reminder.body
    assert MonthlyUptime.objects.get(contract=bad_october, month=OCT).claim_reminder_at is None


def test_no_reminder_once_a_claim_is_filed(bad_october, alice, django_capture_on_commit_callbacks):
    run_hourly(CLOSED_AT, django_capture_on_commit_callbacks)
    with time_machine.travel(datetime(2026, 11, 3, tzinfo=NBO), tick=False):
        claim_submit(contract=bad_october, month=OCT, user=alice)
    mail.outbox.clear()
    run_hourly(REMIND_AT, django_capture_on_commit_callbacks)
    assert not mail.outbox and not OutboxMessage.objects.filter(template="claim_reminder").exists()
    assert MonthlyUptime.objects.get(contract=bad_october, month=OCT).claim_reminder_at is None


def test_no_invitation_for_a_month_whose_window_has_closed(acme_contract, alice, django_capture_on_commit_callbacks):
    """A fresh install closes every month since January: August's claims closed on 1 October."""
    down(acme_contract, datetime(2026, 8, 10, 2, 0, tzinfo=NBO), 500)
    run_hourly(CLOSED_AT, django_capture_on_commit_callbacks)
    august = MonthlyUptime.objects.get(contract=acme_contract, month=date(2026, 8, 1))
    assert august.credit_amount == Decimal("15000.0000") and august.claim_reminder_at is None
    assert not OutboxMessage.objects.filter(template__startswith="claim_").exists() and not mail.outbox


def test_a_month_closed_on_demand_by_a_claim_sends_no_invitation(
    bad_october, alice, bob, django_capture_on_commit_callbacks
):
    with time_machine.travel(CLOSED_AT, tick=False), django_capture_on_commit_callbacks(execute=True):
        claim_submit(contract=bad_october, month=OCT, user=alice)
    assert rows("claim_received") == [alice.email, bob.email] and not rows("claim_invitation")


def test_a_settled_claim_emails_the_customer_once(bad_october, alice, bob, sam, django_capture_on_commit_callbacks):
    run_hourly(CLOSED_AT, django_capture_on_commit_callbacks)
    with time_machine.travel(datetime(2026, 11, 3, tzinfo=NBO), tick=False):
        claim = claim_submit(contract=bad_october, month=OCT, user=alice)
        claim_approve(claim=claim, actor=sam)
    OutboxMessage.objects.filter(status="pending").update(status="sent")  # the receipt and decision, sent before
    mail.outbox.clear()
    settled_at = datetime(2026, 11, 20, 9, 30, tzinfo=NBO)
    with time_machine.travel(settled_at, tick=False), django_capture_on_commit_callbacks(execute=True):
        claim_settle(claim=claim, actor=sam)
    assert sorted(m.to[0] for m in mail.outbox) == [alice.email, bob.email]
    to_alice = next(m for m in mail.outbox if m.to == [alice.email])
    assert to_alice.subject == "Service credit refunded: KES 15,000.00 for October 2026"
    assert (
        "Your service-credit claim for KAL-0001, October 2026, is settled: KES 15,000.00 was refunded on "
        "2026-11-20 09:30 (UTC+03:00)." in to_alice.body
    )
    assert "List-Unsubscribe" not in to_alice.extra_headers  # her own claim: mandatory
    assert OutboxMessage.objects.filter(key__startswith=f"claim:{claim.pk}:settled:").count() == 2


def test_a_month_closed_again_with_another_credit_tells_them_once(
    bad_october, alice, bob, django_capture_on_commit_callbacks
):
    run_hourly(CLOSED_AT, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    outage = Outage.objects.get()
    at = datetime(2026, 11, 5, 10, 0, tzinfo=NBO)
    # Corrected to a whole day down: 96.774%, 25%: KES 37,500; the month is reopened and closed again.
    outage_update(
        outage=outage, title=outage.title, services=outage.services.all(), starts_at=outage.starts_at,
        ends_at=outage.starts_at + timedelta(minutes=1440), description="", actor=None, now=at,
    )  # fmt: skip
    run_hourly(at + timedelta(hours=1), django_capture_on_commit_callbacks)
    month = MonthlyUptime.objects.get(contract=bad_october, month=OCT)
    assert (month.status, month.credit_amount) == ("closed", Decimal("37500.0000"))
    assert sorted(m.to[0] for m in mail.outbox) == [alice.email, bob.email]  # one email each
    assert all("judged again" in m.subject for m in mail.outbox)
    assert OutboxMessage.objects.filter(template="claim_invitation").count() == 2  # still the first ones
    assert month.claim_reminder_at == datetime(2026, 11, 24, 0, 0, tzinfo=NBO)
