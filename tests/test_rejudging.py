"""A closed month follows late evidence (issue "Trust", item 6): an outage or a maintenance window
recorded, changed or deleted after its month was closed reopens that month, in the same
transaction; the hourly sweep closes it again with the new figure, audited; if the tier or credit
changed, Alice and Bob are emailed and staff see it; a claim awaiting review follows the figure,
a decided one is flagged, never changed. Months keep the invoice they were closed with. The sweep
closes every ended month, not only the last; "scheduled downtime" is no cause for an outage.

Alice and Bob at Acme (KAL-0001, Kaluari, KES 150,000 a month, Nairobi); Sam on support. November
2026 has 43,200 minutes: 480 down is 98.889% (10%: KES 15,000), 1,440 down is 96.667% (25%: KES
37,500). Clocks are frozen."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contracts.choices import Cause
from contracts.evidence import OUTAGE, Evidence, EvidenceChange
from contracts.maintenance.services import window_delete, window_publish
from contracts.models import Contract, Outage
from contracts.outages.alerts import AlertEvent, outage_record_alerts
from contracts.outages.services import OutageError, outage_delete, outage_record, outage_set_cause, outage_update
from credits.closing import close_due
from credits.evidence import months_reopen_for_evidence
from credits.models import ClaimEvent, MonthlyUptime, MonthReopening
from credits.services import claim_approve, claim_submit
from portal.core.roles import StaffRole
from portal.models import AuditEntry, OutboxMessage

from .factories import ContractFactory, StaffFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOV = date(2026, 11, 1)
CLOSED_AT = datetime(2026, 12, 1, 1, 0, tzinfo=NBO)  # an hour after November ended in Nairobi
LATER = datetime(2026, 12, 3, 10, 0, tzinfo=NBO)  # when the late evidence arrives
SWEEP = LATER + timedelta(hours=1)  # the next hourly run
DASHBOARD = reverse("admin:staff_dashboard")


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def sweep(at, capture):
    """The hourly run at `at`, its emails sent (as the worker would, once the run commits)."""
    with time_machine.travel(at, tick=False), capture(execute=True):
        return close_due(now=at)


def november(contract) -> MonthlyUptime:
    return MonthlyUptime.objects.get(contract=contract, month=NOV)


def down(contract, start, minutes, cause=Cause.UNPLANNED, at=LATER, actor=None):
    """Staff record an outage of the contract's services."""
    return outage_record(
        title="Storage down", services=contract.services.all(), starts_at=start,
        ends_at=start + timedelta(minutes=minutes), cause=cause, actor=actor, now=at,
    )  # fmt: skip


@pytest.fixture
def ayo(db):
    """An account manager: records outages, sets their cause, reviews months and claims."""
    return StaffFactory(email="ayo@vendor.example", name="Ayo Account-Manager", staff_role=StaffRole.ACCOUNT_MANAGER)


@pytest.fixture
def closed_november(acme_contract, django_capture_on_commit_callbacks):
    """Every month of the contract closed at 100% by the sweep, then no email sent yet."""
    sweep(CLOSED_AT, django_capture_on_commit_callbacks)
    assert november(acme_contract).uptime_percent == 100
    mail.outbox.clear()
    return acme_contract


@pytest.fixture
def bad_november(acme_contract, alice, django_capture_on_commit_callbacks):
    """November closed with 480 minutes down: 10%, KES 15,000."""
    down(acme_contract, datetime(2026, 11, 10, 8, 0, tzinfo=NBO), 480, at=datetime(2026, 11, 10, 17, 0, tzinfo=NBO))
    sweep(CLOSED_AT, django_capture_on_commit_callbacks)
    m = november(acme_contract)
    assert (m.tier_percent, m.credit_amount) == (Decimal("10"), Decimal("15000"))
    mail.outbox.clear()
    return acme_contract


# --- An outage recorded in a closed month --------------------------------------------------------
def test_an_outage_recorded_for_a_closed_month_rejudges_it_tells_alice_and_shows_staff(
    client, closed_november, alice, bob, ayo, django_capture_on_commit_callbacks
):
    month = november(closed_november)
    # Ayo records it in the admin on 3 December: 10 November, 05:00-13:00 UTC (08:00-16:00 in Nairobi).
    client.force_login(ayo)
    with time_machine.travel(LATER, tick=False):
        response = client.post(
            reverse("admin:contracts_outage_add"),
            {
                "title": "Storage cluster down", "services": [s.pk for s in closed_november.services.all()],
                "starts_at_0": "2026-11-10", "starts_at_1": "05:00:00", "ends_at_0": "2026-11-10",
                "ends_at_1": "13:00:00", "cause": "unplanned", "description": "",
                "updates-TOTAL_FORMS": "0", "updates-INITIAL_FORMS": "0",
                "cause_changes-TOTAL_FORMS": "0", "cause_changes-INITIAL_FORMS": "0",
            },
        )  # fmt: skip
    assert response.status_code == 302, response.context and response.context["errors"]
    outage = Outage.objects.get()

    # Reopened in the same request, by no one, naming the evidence; the figures are still the old ones.
    month.refresh_from_db()
    assert month.status == MonthlyUptime.Status.REOPENED and month.uptime_percent == 100
    reopening = MonthReopening.objects.get(monthly_uptime=month)
    assert reopening.actor is None and reopening.at == LATER
    assert reopening.reason == f"Evidence changed: Outage {outage.pk} “Storage cluster down” recorded by staff."
    assert AuditEntry.objects.filter(action="month.reopened", target_id=str(month.pk), actor=None).exists()
    # Only November: October and December are not touched.
    assert list(MonthlyUptime.objects.filter(status="reopened").values_list("month", flat=True)) == [NOV]

    # The next hourly run closes it again with the new figure, audited before and after.
    assert sweep(SWEEP, django_capture_on_commit_callbacks) == 1
    month.refresh_from_db()
    assert (month.status, month.down_minutes, month.uptime_percent) == ("closed", 480, Decimal("98.88888889"))
    assert (month.tier_percent, month.credit_amount, month.invoice_amount) == (10, 15000, 150000)
    assert month.credit_changed_at == SWEEP and month.closed_at == SWEEP
    entry = AuditEntry.objects.get(action="month.rejudged")
    assert (entry.actor, entry.target_id) == (None, str(month.pk))
    assert entry.before["uptime_percent"] == "100.00000000" and entry.before["credit_amount"] is None
    assert entry.after["uptime_percent"] == "98.88888889" and entry.after["tier_percent"] == "10.000"
    assert entry.after["credit_amount"] == "15000.00" and entry.after["credit_changed"] is True

    # Alice and Bob are told: the month, the old and new figure, the credit, the claim deadline.
    rows = OutboxMessage.objects.filter(template="month_rejudged")
    assert sorted(rows.values_list("to", flat=True)) == [alice.email, bob.email]
    sent = {m.to[0]: m for m in mail.outbox}
    assert set(sent) == {alice.email, bob.email}
    to_alice = sent[alice.email]
    assert to_alice.subject == "KAL-0001, November 2026 judged again: credit now KES 15,000.00"
    assert to_alice.extra_headers["Message-ID"] == rows.get(to=alice.email).message_id
    body = to_alice.body
    assert "Hello Alice Achieng," in body
    assert "November 2026 of KAL-0001 (Cloud Backup for Acme) was judged again" in body
    assert "Monthly uptime: 98.889% (was 100.000%), against a guarantee of 99.8%." in body
    assert "Credit: KES 15,000.00 (10.0% of the month's invoice, refund of the month's invoice) (was none)." in body
    assert "Claims for November 2026 can be filed until 2026-12-31 00:00 (UTC+03:00)." in body
    assert f"/contracts/{closed_november.pk}/uptime/" in body
    html = to_alice.alternatives[0][0]
    assert "<strong>KES 15,000.00</strong>" in html and "<strong>2026-12-31 00:00 (UTC+03:00)</strong>" in html

    # The staff dashboard lists the month for review.
    with time_machine.travel(SWEEP, tick=False):
        board = client.get(DASHBOARD).content.decode()
    months = text(re.search(r'id="months">(.*?)\n</div>', board, re.S)[1])
    assert "KAL-0001" in months and "2026-11" in months and "judged again: credit changed" in months

    # Alice's pages show the new figure: the uptime page, the dashboard, the claim preview.
    client.force_login(alice)
    with time_machine.travel(SWEEP, tick=False):
        uptime = text(client.get(reverse("contract-uptime", args=[closed_november.pk])).content.decode())
        dashboard = text(client.get(reverse("dashboard")).content.decode())
        preview = text(
            client.post(
                reverse("claim-new"), {"contract": closed_november.pk, "month": "2026-11", "action": "preview"}
            ).content.decode()
        )
    assert "November 2026 98.889% (below the guarantee) 480 min 0 min 10.0% KES 15,000.00" in uptime
    assert "98.889% uptime against 99.8%: KES 15,000.00 (10.0% of the invoice)." in dashboard
    assert "Uptime 98.889% against a guarantee of 99.8%" in preview and "KES 15,000.00" in preview


def test_a_month_judged_again_to_the_same_credit_is_audited_and_tells_nobody(
    bad_november, django_capture_on_commit_callbacks
):
    outage = Outage.objects.get()
    outage_update(
        outage=outage, title=outage.title, services=outage.services.all(), starts_at=outage.starts_at,
        ends_at=outage.ends_at + timedelta(minutes=10), description="", actor=None, now=LATER,
    )  # fmt: skip
    assert november(bad_november).status == "reopened"
    sweep(SWEEP, django_capture_on_commit_callbacks)
    month = november(bad_november)
    assert (month.status, month.down_minutes, month.credit_amount) == ("closed", 490, 15000)
    assert month.credit_changed_at is None
    assert AuditEntry.objects.filter(action="month.rejudged").get().after["credit_changed"] is False
    assert not mail.outbox and not OutboxMessage.objects.filter(template="month_rejudged").exists()


def test_running_the_sweep_twice_changes_nothing(closed_november, django_capture_on_commit_callbacks):
    down(closed_november, datetime(2026, 11, 10, 8, 0, tzinfo=NBO), 480)
    assert sweep(SWEEP, django_capture_on_commit_callbacks) == 1
    rows = list(MonthlyUptime.objects.order_by("pk").values())
    counts = (AuditEntry.objects.count(), OutboxMessage.objects.count(), len(mail.outbox))
    assert sweep(SWEEP + timedelta(hours=1), django_capture_on_commit_callbacks) == 0
    assert list(MonthlyUptime.objects.order_by("pk").values()) == rows
    assert (AuditEntry.objects.count(), OutboxMessage.objects.count(), len(mail.outbox)) == counts


# --- Claims -------------------------------------------------------------------------------------------
def test_a_pending_claim_follows_the_new_figure(bad_november, alice, sam, django_capture_on_commit_callbacks):
    with time_machine.travel(LATER - timedelta(days=1), tick=False):
        claim = claim_submit(contract=bad_november, month=NOV, user=alice, note="Backups failed")
    assert claim.eligible_amount == 15000
    # Another 960 minutes on the 20th: 1,440 down in all, 96.667%, the 25% tier.
    down(bad_november, datetime(2026, 11, 20, 8, 0, tzinfo=NBO), 960, actor=sam)
    sweep(SWEEP, django_capture_on_commit_callbacks)
    claim.refresh_from_db()
    assert (claim.status, claim.eligible_amount, claim.amount) == ("submitted", 37500, None)  # amount: decided
    event = claim.events.get(kind=ClaimEvent.Kind.REFIGURED)
    assert (event.actor, event.at, event.data) == (None, SWEEP, {"from": "15000.0000", "to": "37500.00"})
    entry = AuditEntry.objects.get(action="claim.refigured")
    assert (entry.before, entry.after) == ({"eligible_amount": "15000.0000"}, {"eligible_amount": "37500.00"})
    assert claim.figure_changed_at is None
    body = next(m for m in mail.outbox if m.to == [alice.email] and "judged again" in m.subject).body
    assert f"Your claim for this month (#{claim.pk}), awaiting review, now asks for the new figure." in body
    # The month has its claim: the email points to it, never invites a second one.
    assert f"Your claim: http://127.0.0.1:8000/claims/{claim.pk}/" in body and "can be filed until" not in body
    assert "Credit: KES 37,500.00 (25.0% of the month's invoice" in body and "(was KES 15,000.00, 10.0%" in body
    # Staff approve the new figure at the eligible amount.
    assert claim_approve(claim=claim, actor=sam, now=SWEEP).amount == 37500


def test_an_approved_claim_is_flagged_never_changed(
    client, bad_november, alice, sam, ayo, django_capture_on_commit_callbacks
):
    with time_machine.travel(LATER - timedelta(days=1), tick=False):
        claim = claim_submit(contract=bad_november, month=NOV, user=alice)
        claim_approve(claim=claim, actor=sam)
    # The outage was a DDoS after all: excluded, November is 100%, no credit due.
    outage_set_cause(outage=Outage.objects.get(), actor=sam, cause=Cause.DDOS, now=LATER)
    reopening = MonthReopening.objects.get()
    assert (
        reopening.actor is None and "cause changed from “Unplanned outage” to “Distributed denial" in reopening.reason
    )
    sweep(SWEEP, django_capture_on_commit_callbacks)
    month = november(bad_november)
    assert (month.uptime_percent, month.tier_percent, month.credit_amount) == (100, None, None)

    claim.refresh_from_db()
    assert (claim.status, claim.eligible_amount, claim.amount) == ("approved", 15000, 15000)
    assert claim.figure_changed_at == SWEEP
    event = claim.events.get(kind=ClaimEvent.Kind.FLAGGED)
    assert event.data == {"from": "15000.0000", "to": None, "status": "approved"}
    assert AuditEntry.objects.filter(action="claim.flagged", target_id=str(claim.pk)).exists()
    body = next(m for m in mail.outbox if m.to == [alice.email] and "judged again" in m.subject).body
    assert f"Your claim for this month (#{claim.pk}) was already decided: staff will review it" in body
    assert "Credit: none (was KES 15,000.00, 10.0% of the month's invoice)." in body
    assert f"Your claim: http://127.0.0.1:8000/claims/{claim.pk}/" in body and "can be filed until" not in body

    # A line for staff on the dashboard, and a warning on the claim's page.
    client.force_login(ayo)
    with time_machine.travel(SWEEP, tick=False):
        board = client.get(DASHBOARD).content.decode()
        page = text(client.get(reverse("admin:credits_claim_change", args=[claim.pk])).content.decode())
    months = text(re.search(r'id="months">(.*?)\n</div>', board, re.S)[1])
    assert f"claim #{claim.pk} approved before: review" in months
    assert "The month was judged again on 2026-12-03 11:00 (UTC+03:00), after this claim was decided" in page


def test_the_email_of_a_month_with_a_rejected_claim_points_to_it_and_invites_no_second_one(
    bad_november, alice, bob, sam, django_capture_on_commit_callbacks
):
    from credits.services import ClaimError, claim_reject

    with time_machine.travel(LATER - timedelta(days=1), tick=False):
        claim = claim_submit(contract=bad_november, month=NOV, user=alice)
        claim_reject(claim=claim, actor=sam, reason="The 10th was announced maintenance.")
    mail.outbox.clear()
    down(bad_november, datetime(2026, 11, 20, 8, 0, tzinfo=NBO), 960, actor=sam)
    sweep(SWEEP, django_capture_on_commit_callbacks)
    for person in (alice, bob):
        message = next(m for m in mail.outbox if m.to == [person.email] and "judged again" in m.subject)
        assert f"Your claim for this month (#{claim.pk}) was already decided" in message.body
        assert f"Your claim: http://127.0.0.1:8000/claims/{claim.pk}/" in message.body
        assert "can be filed" not in message.body and "can be filed" not in message.alternatives[0][0]
        assert f'href="http://127.0.0.1:8000/claims/{claim.pk}/">See your claim</a>' in message.alternatives[0][0]
    # What it would have invited is refused.
    with time_machine.travel(SWEEP, tick=False), pytest.raises(ClaimError, match="already filed"):
        claim_submit(contract=bad_november, month=NOV, user=bob)


def test_an_approved_claim_judged_again_shows_the_figures_it_was_decided_on_and_what_the_month_is_worth_now(
    client, bad_november, alice, sam, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    with time_machine.travel(LATER - timedelta(days=1), tick=False):
        claim = claim_submit(contract=bad_november, month=NOV, user=alice)
        claim_approve(claim=claim, actor=sam)
    # Another 960 minutes on the 20th: 1,440 down in all, 96.667%, the 25% tier (KES 37,500).
    down(bad_november, datetime(2026, 11, 20, 8, 0, tzinfo=NBO), 960, actor=sam)
    sweep(SWEEP, django_capture_on_commit_callbacks)
    assert november(bad_november).credit_amount == 37500
    client.force_login(alice)
    with time_machine.travel(SWEEP, tick=False):
        page = text(client.get(reverse("claim-detail", args=[claim.pk])).content.decode())
        api = APIClient()
        api.force_authenticate(alice)
        one = api.get(f"/api/v1/claims/{claim.pk}/").json()
        (listed,) = api.get("/api/v1/claims/").json()["results"]
    figures = page[page.index("The month's figures") : page.index("Decision")]
    # What the claim was decided on, never the new tier beside the old credit ...
    assert "As the claim was decided on. Uptime 98.889% against a guarantee of 99.8%" in figures
    assert "Downtime 480 min of the month's 43,200 min" in figures
    assert "Credit tier 10.0% of the month's invoice Eligible credit KES 15,000.00" in figures
    # ... and what the month is worth now, as the re-judging email and staff say.
    assert (
        "November 2026 was judged again on 2026-12-03 11:00 (UTC+03:00), after this claim was decided: its uptime "
        "is now 96.667% and its credit KES 37,500.00 (25.0% of the month's invoice). The claim is not changed; "
        "staff review it" in figures
    )
    # The API says the same, in the list as in one claim.
    assert one == listed
    assert (one["uptime_percent"], one["tier_percent"], one["eligible_amount"], one["amount"]) == (
        "98.88888889", "10.000", "15000.00", "15000.00",
    )  # fmt: skip
    assert one["month_judged_again"] == {
        "judged_at": "2026-12-03T08:00:00Z", "uptime_percent": "96.66666667", "tier_percent": "25.000",
        "flagged": False, "credit_amount": "37500.00",
    }  # fmt: skip


def test_a_claim_whose_month_kept_its_credit_has_no_notice(client, bad_november, alice, sam):
    from rest_framework.test import APIClient

    with time_machine.travel(LATER - timedelta(days=1), tick=False):
        claim = claim_submit(contract=bad_november, month=NOV, user=alice)
        claim_approve(claim=claim, actor=sam)
    client.force_login(alice)
    page = text(client.get(reverse("claim-detail", args=[claim.pk])).content.decode())
    assert "judged again" not in page and "As the claim was decided on" not in page
    assert "Credit tier 10.0% of the month's invoice Eligible credit KES 15,000.00" in page
    api = APIClient()
    api.force_authenticate(alice)
    assert api.get(f"/api/v1/claims/{claim.pk}/").json()["month_judged_again"] is None


# --- The invoice of the month -------------------------------------------------------------------------
def test_a_changed_invoice_amount_does_not_change_a_closed_month(bad_november, django_capture_on_commit_callbacks):
    Contract.objects.filter(pk=bad_november.pk).update(monthly_invoice_amount=Decimal("300000"), currency="USD")
    sweep(LATER, django_capture_on_commit_callbacks)  # nothing to close: the closed month stays as it is
    month = november(bad_november)
    assert (month.invoice_amount, month.currency, month.credit_amount) == (150000, "KES", 15000)
    # Judged again to the 25% tier: 25% of November's own invoice, not of today's.
    down(bad_november, datetime(2026, 11, 20, 8, 0, tzinfo=NBO), 960)
    sweep(SWEEP, django_capture_on_commit_callbacks)
    month = november(bad_november)
    assert (month.tier_percent, month.credit_amount, month.currency, month.invoice_amount) == (25, 37500, "KES", 150000)
    # A month first closed now takes the contract's amount of the day.
    december = datetime(2027, 1, 1, 1, 0, tzinfo=NBO)
    sweep(december, django_capture_on_commit_callbacks)
    assert MonthlyUptime.objects.get(month=date(2026, 12, 1)).invoice_amount == 300000


# --- Every write path ------------------------------------------------------------------------------------
def test_changing_deleting_and_alerts_reopen_the_months_they_touch(closed_november, sam):
    outage = down(closed_november, datetime(2026, 12, 2, 8, 0, tzinfo=NBO), 60)  # December: not closed
    assert not MonthReopening.objects.exists()
    moved = outage_update(
        outage=outage, title="Storage down", services=outage.services.all(), starts_at=datetime(2026, 11, 30, 22, 0, tzinfo=NBO),
        ends_at=outage.ends_at, description="", actor=sam, now=LATER,
    )  # fmt: skip
    assert november(closed_november).status == "reopened"
    assert "changed by staff (times)" in MonthReopening.objects.get().reason
    MonthlyUptime.objects.update(status="closed")
    outage_delete(outage=moved, actor=sam, now=LATER)
    assert november(closed_november).status == "reopened"
    assert AuditEntry.objects.filter(action="outage.deleted").exists()
    MonthlyUptime.objects.update(status="closed")

    # Alertmanager: a resolved alert never seen firing, for the last hours of November.
    service = closed_november.services.get()
    event = AlertEvent(
        index=0, service=service.slug, firing=False, fingerprint="abc", title="Backups down",
        starts_at=datetime(2026, 11, 30, 20, 0, tzinfo=UTC), ends_at=datetime(2026, 11, 30, 20, 30, tzinfo=UTC),
    )  # fmt: skip
    result = outage_record_alerts(service=service, alerts=[event], now=datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    assert result.recorded and november(closed_november).status == "reopened"
    assert MonthReopening.objects.order_by("pk").last().reason.endswith("“Backups down” recorded by an alert.")


def test_a_maintenance_window_published_or_deleted_for_a_closed_month_reopens_it(closed_november, sam):
    window = window_publish(
        title="Storage upgrade", description="", services=closed_november.services.all(),
        starts_at=datetime(2026, 11, 14, 23, 0, tzinfo=NBO), ends_at=datetime(2026, 11, 15, 1, 0, tzinfo=NBO),
        actor=sam, now=LATER,
    )  # fmt: skip
    assert november(closed_november).status == "reopened"
    assert "Maintenance window" in MonthReopening.objects.get().reason
    MonthlyUptime.objects.update(status="closed")
    window_delete(window=window, now=LATER)
    assert november(closed_november).status == "reopened"


def test_another_services_outage_and_a_title_change_reopen_nothing(closed_november, globex_contract, sam):
    from .factories import ServiceFactory

    other = ServiceFactory(name="AI Assistant", slug="ai-assistant")
    o = outage_record(
        title="AI down", services=[other], starts_at=datetime(2026, 11, 5, tzinfo=NBO),
        ends_at=datetime(2026, 11, 5, 1, 0, tzinfo=NBO), actor=sam, now=LATER,
    )  # fmt: skip
    assert november(closed_november).status == "closed"
    outage_update(
        outage=o, title="AI assistant down", services=[other], starts_at=o.starts_at, ends_at=o.ends_at,
        description="Public words", actor=sam, now=LATER,
    )  # fmt: skip
    assert not MonthReopening.objects.filter(monthly_uptime__contract=closed_november).exists()


def test_evidence_of_the_current_month_costs_no_query(closed_november):
    change = EvidenceChange(
        OUTAGE, 1, "Outage 1", None,
        Evidence(frozenset({1}), datetime(2026, 12, 3, 8, 0, tzinfo=NBO), None, Cause.UNPLANNED),
    )  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        assert months_reopen_for_evidence(changes=[change], now=LATER) == 0
    assert len(queries) == 0


# --- Every ended month closed -------------------------------------------------------------------------
def test_a_fresh_demo_has_every_ended_month_closed(client, django_capture_on_commit_callbacks):
    from portal.site.demo import seed_demo

    at = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        seed_demo()
    assert sweep(at, django_capture_on_commit_callbacks) == 22  # January to November, for both contracts
    for reference in ("KAL-0001", "KLA-0001"):
        months = MonthlyUptime.objects.filter(contract__reference=reference, status="closed")
        assert sorted(months.values_list("month", flat=True)) == [date(2026, m, 1) for m in range(1, 12)]
    rows = list(MonthlyUptime.objects.order_by("pk").values())
    assert sweep(at + timedelta(hours=1), django_capture_on_commit_callbacks) == 0
    assert list(MonthlyUptime.objects.order_by("pk").values()) == rows

    from portal.models import User

    client.force_login(User.objects.get(email="alice@acme.example"))
    with time_machine.travel(at, tick=False):
        contract = Contract.objects.get(reference="KAL-0001")
        page = text(client.get(reverse("contract-uptime", args=[contract.pk])).content.decode())
    assert "Not closed yet" not in page and "January 2026 100.000%" in page


def test_the_sweep_is_cheap_when_nothing_is_due(closed_november):
    later = ContractFactory(organisation=closed_november.organisation, starts_on=date(2026, 6, 1))
    with time_machine.travel(CLOSED_AT, tick=False):
        assert close_due(now=CLOSED_AT) == 6  # the new contract's June to November
    at = CLOSED_AT + timedelta(hours=1)
    with CaptureQueriesContext(connection) as queries, time_machine.travel(at, tick=False):
        assert close_due(now=at) == 0
    # One question of the contracts (the index on contract and month) and one of the reopened
    # months (a partial index): no outage, window or SLA version is read.
    assert len(queries) == 2, [q["sql"] for q in queries]
    assert not any("contracts_outage" in q["sql"] or "contracts_slaversion" in q["sql"] for q in queries)
    # A start moved earlier is caught up.
    Contract.objects.filter(pk=later.pk).update(starts_on=date(2026, 4, 15))
    with time_machine.travel(at, tick=False):
        assert close_due(now=at) == 2
    assert MonthlyUptime.objects.filter(contract=later).count() == 8


def test_months_older_than_the_history_reopened_are_closed_again(acme_contract, django_capture_on_commit_callbacks):
    from credits.closing import close_month

    with time_machine.travel(datetime(2026, 2, 1, 1, 0, tzinfo=NBO), tick=False):
        close_month(month=date(2026, 1, 1), now=datetime(2026, 2, 1, 1, 0, tzinfo=NBO))
    outage_record(
        title="Old", services=acme_contract.services.all(), starts_at=datetime(2026, 1, 5, tzinfo=NBO),
        ends_at=datetime(2026, 1, 5, 8, 0, tzinfo=NBO), actor=None, now=datetime(2027, 3, 1, tzinfo=NBO),
    )  # fmt: skip
    january = MonthlyUptime.objects.get(month=date(2026, 1, 1))
    assert january.status == "reopened"
    sweep(datetime(2027, 3, 1, 1, 0, tzinfo=NBO), django_capture_on_commit_callbacks)
    january.refresh_from_db()
    assert (january.status, january.down_minutes) == ("closed", 480)


# --- "Scheduled downtime" is a maintenance window, not an outage's cause -----------------------------
def test_the_scheduled_maintenance_cause_is_refused_with_a_pointer_to_maintenance_windows(
    client, sam, ayo, acme_contract
):
    start = datetime(2026, 11, 10, 8, 0, tzinfo=NBO)
    with pytest.raises(OutageError, match="record planned work as a maintenance window"):
        down(acme_contract, start, 60, cause=Cause.SCHEDULED_MAINTENANCE)
    assert not Outage.objects.exists()
    outage = down(acme_contract, start, 60)
    with pytest.raises(OutageError, match="maintenance window"):
        outage_set_cause(outage=outage, actor=sam, cause=Cause.SCHEDULED_MAINTENANCE, now=LATER)

    # The admin: a form error, not a 500.
    client.force_login(ayo)
    data = {
        "title": "Upgrade", "services": [s.pk for s in acme_contract.services.all()],
        "starts_at_0": "2026-11-10", "starts_at_1": "05:00:00", "ends_at_0": "2026-11-10", "ends_at_1": "06:00:00",
        "cause": "scheduled_maintenance", "description": "",
        "updates-TOTAL_FORMS": "0", "updates-INITIAL_FORMS": "0",
        "cause_changes-TOTAL_FORMS": "0", "cause_changes-INITIAL_FORMS": "0",
    }  # fmt: skip
    with time_machine.travel(LATER, tick=False):
        response = client.post(reverse("admin:contracts_outage_add"), data)
        assert response.status_code == 200
        assert "record planned work as a maintenance window" in text(response.content.decode())
        assert Outage.objects.count() == 1
        change = client.post(reverse("admin:contracts_outage_change", args=[outage.pk]), data)
        assert change.status_code == 200 and "maintenance window" in text(change.content.decode())

        # An outage that already has the cause keeps it, and can still be edited.
        Outage.objects.filter(pk=outage.pk).update(cause=Cause.SCHEDULED_MAINTENANCE)
        response = client.post(
            reverse("admin:contracts_outage_change", args=[outage.pk]), {**data, "title": "Upgrade 2"}
        )
    assert response.status_code == 302
    outage.refresh_from_db()
    assert (outage.title, outage.cause) == ("Upgrade 2", Cause.SCHEDULED_MAINTENANCE)
