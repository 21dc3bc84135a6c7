"""The staff side of credits in the admin: the claim queue (awaiting review first, gap months in
red, a fixed number of queries), the claim page and its operations (each a POST form calling a
service), the month page and its reopening, the changelist actions, and the CSV exports."""

import csv
import io
import re
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import ERROR, SUCCESS
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contracts.models import Outage
from credits.closing import close_month
from credits.models import Claim, ClaimEvent, MonthlyUptime, MonthReopening
from credits.services import claim_approve, claim_submit
from tickets.services import ticket_open

from .factories import ContractFactory, ServiceFactory, StaffFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
OCT = datetime(2026, 10, 1).date()
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)  # inside October's claim window
QUEUE = reverse("admin:credits_claim_changelist")
MONTHS = reverse("admin:credits_monthlyuptime_changelist")


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def down(service, minutes, cause="unplanned", day=10, title="Storage down"):
    start = datetime(2026, 10, day, 2, 0, tzinfo=NBO)
    o = Outage.objects.create(title=title, starts_at=start, ends_at=start + timedelta(minutes=minutes), cause=cause)
    o.services.set([service])
    return o


def submit(contract, user, when=NOW - timedelta(days=1), **kw):
    with time_machine.travel(when, tick=False):
        return claim_submit(contract=contract, month=OCT, user=user, **kw)


def change_url(claim):
    return reverse("admin:credits_claim_change", args=[claim.pk])


def op_url(name, obj):
    return reverse(f"admin:credits_{obj._meta.model_name}_{name}", args=[obj.pk])


def messages_of(response):
    return [(m.level, m.message) for m in response.context["messages"]]


def rows(html):
    return re.findall(r'<tr>\s*<td class="action-checkbox">.*?</tr>', html, re.S)


def parse_csv(response):
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def staff_client(client, ayo):
    client.force_login(ayo)
    return client


@pytest.fixture
def backup(acme_contract):
    """Acme's October: 500 minutes down (98.880%: the 10% tier, KES 15,000.00) and an hour of
    DDoS, which Kaluari excludes."""
    service = acme_contract.services.get()
    down(service, 500)
    down(service, 60, cause="ddos", day=20, title="Flood of requests")
    return acme_contract


@pytest.fixture
def claim(backup, alice):
    return submit(backup, alice, note="Backups failed on the 10th.")


@pytest.fixture
def gap_contract(acme, alice):
    """100 minutes down: 99.776%, below the 99.8% guarantee but in the table's 99.0-99.8 gap."""
    contract = ContractFactory(
        organisation=acme, reference="KAL-0002", name="Restore for Acme", contacts=[alice],
        services=[ServiceFactory(name="Restore", slug="restore")],
    )  # fmt: skip
    down(contract.services.get(), 100)
    return contract


# --- The queue -----------------------------------------------------------------------------------
def test_queue_lists_awaiting_claims_oldest_first_and_gap_months_stand_out(
    staff_client, claim, gap_contract, alice, ayo
):
    gap = submit(gap_contract, alice, NOW - timedelta(days=2))  # older: first
    response = staff_client.get(QUEUE)
    assert [c.pk for c in response.context["cl"].result_list] == [gap.pk, claim.pk]
    html = response.content.decode()
    gap_row, other_row = rows(html)
    assert '<span class="credit-badge credit-gap"' in gap_row and "gap: review" in gap_row
    assert "99.776%" in gap_row and "99.8%" in gap_row and "—" in gap_row  # no tier, nothing eligible
    assert "gap: review" not in other_row
    assert "98.880%" in other_row and "10.0%" in other_row and "KES 15,000.00" in other_row
    assert "Awaiting review" in other_row and "Acme Savings" in other_row and "2026-10" in other_row
    assert "admin-extra/credits.css" in html

    claim_approve(claim=claim, actor=ayo)  # decided: out of the default queue
    assert [c.pk for c in staff_client.get(QUEUE).context["cl"].result_list] == [gap.pk]
    everything = staff_client.get(QUEUE, {"status": "all"}).context["cl"].result_list
    assert [c.pk for c in everything] == [gap.pk, claim.pk]
    flagged = staff_client.get(QUEUE, {"status": "all", "monthly_uptime__flagged__exact": "1"})
    assert [c.pk for c in flagged.context["cl"].result_list] == [gap.pk]
    found = staff_client.get(QUEUE, {"status": "all", "q": "KAL-0002"}).context["cl"].result_list
    assert [c.pk for c in found] == [gap.pk]
    by_month = staff_client.get(QUEUE, {"status": "all", "month": "2026-10"}).context["cl"].result_list
    assert len(by_month) == 2


def make_claims(n, org, user):
    """n claims on n contracts: every other month in a gap, every third approved."""
    services = [
        ServiceFactory(name="Cloud Backup", slug="cloud-backup"),
        ServiceFactory(name="Restore", slug="restore"),
    ]
    if not Outage.objects.exists():
        down(services[0], 500)
        down(services[1], 100)
    contracts = [ContractFactory(organisation=org, contacts=[user], services=[services[i % 2]]) for i in range(n)]
    close_month(month=OCT, now=NOW - timedelta(days=2))
    staff = StaffFactory(email="lena@vendor.example", name="Lena Lead")
    for i, contract in enumerate(contracts):
        c = submit(contract, user)
        if i % 3 == 0 and c.eligible_amount is not None:
            claim_approve(claim=c, actor=staff)


def test_queue_and_months_list_do_a_fixed_number_of_queries(staff_client, acme, alice):
    def count(url, params):
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get(url, params)
        assert response.status_code == 200
        return len(response.context["cl"].result_list), len(queries)

    make_claims(3, acme, alice)
    queue_3, months_3 = count(QUEUE, {"status": "all"}), count(MONTHS, {})
    make_claims(27, acme, alice)
    queue_30, months_30 = count(QUEUE, {"status": "all"}), count(MONTHS, {})
    assert (queue_3[0], queue_30[0], months_3[0], months_30[0]) == (3, 30, 3, 30)
    assert queue_30[1] == queue_3[1]
    assert months_30[1] == months_3[1]


def test_a_customer_is_sent_to_the_admin_login(client, claim, alice):
    client.force_login(alice)
    for url in (QUEUE, MONTHS, change_url(claim)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    response = client.post(op_url("approve", claim))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert Claim.objects.get(pk=claim.pk).status == Claim.Status.SUBMITTED


# --- The claim page ------------------------------------------------------------------------------
def test_claim_page_shows_the_months_figures_breakdown_and_what_the_customer_sent(
    staff_client, backup, alice, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    ticket = ticket_open(
        user=alice, contract=backup, service=backup.services.get(), priority="P2",
        subject="Backups fail", description="Nothing backs up.",
    )  # fmt: skip
    graph = SimpleUploadedFile("graph.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    graph.checked_type = "image/png"
    claim = submit(backup, alice, note="Backups failed on the 10th.", tickets=[ticket], files=[graph])

    response = staff_client.get(change_url(claim))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Backups failed on the 10th." in html
    assert "44,640 in the month" in html and "<strong>500</strong> down" in html and "60 excluded" in html
    assert "98.880%" in html and "10.0% of the month's invoice: KES 15,000.00" in html
    assert "Distributed denial of service attack" in html and "Excluded: Distributed denial of service attack" in html
    assert "2026-10-10 02:00 (UTC+03:00)" in html  # the outage, in contract time
    assert f"#{ticket.pk} Backups fail" in html
    attachment = claim.attachments.get()
    download = reverse("admin:credits_claim_attachment", args=[claim.pk, attachment.pk])
    assert download in html and "graph.png" in html
    assert staff_client.get(download)["Content-Disposition"].startswith('attachment; filename="graph.png"')
    assert 'id="approve-form"' in html and 'value="Approve KES 15,000.00"' in html
    assert "<td>Submitted</td><td>Alice Achieng</td>" in html  # the audit trail
    assert 'id="claim_form"' not in html  # no form that saves the claim's fields
    assert staff_client.post(change_url(claim), {"note": "changed"}).status_code == 405


def test_approve_at_the_eligible_amount_emails_the_customer_and_is_audited(
    staff_client, claim, alice, bob, ayo, mailoutbox, django_capture_on_commit_callbacks
):
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(op_url("approve", claim))
    assert response.status_code == 302 and response["Location"] == change_url(claim)
    claim.refresh_from_db()
    assert (claim.status, claim.amount, claim.decided_by, claim.decided_at) == ("approved", Decimal("15000"), ayo, NOW)
    event = ClaimEvent.objects.get(claim=claim, kind=ClaimEvent.Kind.APPROVED)
    assert (event.actor, event.data) == (ayo, {"amount": "15000.0000"})
    approved = [m for m in mailoutbox if m.subject == "Service-credit claim approved: KES 15,000.00 for October 2026"]
    assert sorted(m.to[0] for m in approved) == [alice.email, bob.email]

    page = staff_client.get(change_url(claim)).content.decode()
    assert 'id="settle-form"' in page and 'value="Mark as refunded"' in page and 'id="approve-form"' not in page


def test_a_gap_month_has_nothing_to_approve_at_the_eligible_amount(staff_client, gap_contract, alice):
    claim = submit(gap_contract, alice)
    response = staff_client.post(op_url("approve", claim))
    assert response.status_code == 400  # the page again with why, no 500
    assert [level for level, _ in messages_of(response)] == [ERROR]
    assert "No credit is due for this month by its figures" in messages_of(response)[0][1]
    assert Claim.objects.get(pk=claim.pk).status == Claim.Status.SUBMITTED


def test_an_adjusted_amount_needs_a_reason_and_is_audited(staff_client, claim, ayo):
    response = staff_client.post(op_url("adjust", claim), {"amount": "12000", "reason": " "})
    assert response.status_code == 400
    assert (ERROR, "Say why the amount differs from the eligible credit.") in messages_of(response)
    assert 'value="12000"' in response.content.decode()  # what was typed is kept
    claim.refresh_from_db()
    assert (claim.status, claim.amount) == ("submitted", None)
    assert list(claim.events.values_list("kind", flat=True)) == ["submitted"]

    response = staff_client.post(op_url("adjust", claim), {"amount": "12000.005", "reason": "Partial"})
    assert (ERROR, "Use at most the minor unit of KES.") in messages_of(response)

    reason = "Partial: the 10th was announced"
    response = staff_client.post(op_url("adjust", claim), {"amount": "12000.00", "reason": reason}, follow=True)
    assert (SUCCESS, "Approved at the adjusted amount.") in messages_of(response)
    claim.refresh_from_db()
    assert (claim.status, claim.amount, claim.decision_reason) == ("approved", Decimal("12000"), reason)
    adjusted = ClaimEvent.objects.get(claim=claim, kind=ClaimEvent.Kind.ADJUSTED)
    assert (adjusted.actor, adjusted.data) == (ayo, {"from": "15000.0000", "to": "12000.00", "reason": reason})
    assert f"KES 15,000.00 → KES 12,000.00: {reason}" in response.content.decode()


def test_an_adjusted_amount_above_the_months_invoice_is_a_field_error(staff_client, claim, mailoutbox):
    # One zero too many: KES 1,500,000.00 on a KES 150,000 invoice is no service credit.
    response = staff_client.post(op_url("adjust", claim), {"amount": "1500000.00", "reason": "Partial credit"})
    assert response.status_code == 400
    message = "The amount cannot exceed the month's invoice (KES 150,000.00)."
    assert (ERROR, message) in messages_of(response)
    assert response.context["op_forms"]["adjust"].errors == {"amount": [message]}
    claim.refresh_from_db()
    assert (claim.status, claim.amount) == ("submitted", None)
    assert list(claim.events.values_list("kind", flat=True)) == ["submitted"] and not mailoutbox
    # The whole invoice is the most a credit can be.
    response = staff_client.post(op_url("adjust", claim), {"amount": "150000", "reason": "Nothing worked"})
    assert response.status_code == 302
    claim.refresh_from_db()
    assert (claim.status, claim.amount) == ("approved", Decimal("150000"))


def test_reject_with_a_reason_emails_the_customer(
    staff_client, claim, alice, ayo, mailoutbox, django_capture_on_commit_callbacks
):
    response = staff_client.post(op_url("reject", claim), {"reason": ""})
    assert (ERROR, "Say why the claim is rejected: the customer is told.") in messages_of(response)
    assert Claim.objects.get(pk=claim.pk).status == Claim.Status.SUBMITTED

    mailoutbox.clear()
    reason = "The outage was caused by unsupported equipment."
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(op_url("reject", claim), {"reason": reason})
    assert response.status_code == 302
    claim.refresh_from_db()
    assert (claim.status, claim.amount, claim.decided_by) == ("rejected", None, ayo)
    assert ClaimEvent.objects.get(claim=claim, kind=ClaimEvent.Kind.REJECTED).data == {"reason": reason}
    rejected = next(m for m in mailoutbox if m.to == [alice.email] and "rejected" in m.subject)
    assert f"Reason: {reason}" in rejected.body


def test_settle_an_approved_claim(staff_client, claim, ayo):
    response = staff_client.post(op_url("settle", claim))  # not approved yet: refused, no 500
    assert response.status_code == 400
    assert (ERROR, "Only an approved claim can be marked as credited or refunded.") in messages_of(response)

    claim_approve(claim=claim, actor=ayo)
    response = staff_client.post(op_url("settle", claim), follow=True)
    assert (SUCCESS, "Marked as credited / refunded.") in messages_of(response)
    claim.refresh_from_db()
    assert (claim.status, claim.settled_at) == ("settled", NOW)
    assert ClaimEvent.objects.get(claim=claim, kind=ClaimEvent.Kind.SETTLED).actor == ayo


def test_every_operation_rejects_get(staff_client, claim):
    month = claim.monthly_uptime
    urls = [op_url(name, claim) for name in ("approve", "adjust", "reject", "settle")] + [op_url("reopen", month)]
    for url in urls:
        assert staff_client.get(url).status_code == 405, url
    assert staff_client.post(reverse("admin:credits_monthlyuptime_change", args=[month.pk])).status_code == 405
    assert list(claim.events.values_list("kind", flat=True)) == ["submitted"]
    assert not MonthReopening.objects.exists()


def test_operations_check_csrf_and_the_change_permission(client, claim, ayo):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(ayo)
    assert browser.post(op_url("approve", claim)).status_code == 403

    viewer = StaffFactory(email="viewer@vendor.example", is_superuser=False)
    viewer.user_permissions.set(Permission.objects.filter(codename__in=["view_claim", "view_monthlyuptime"]))
    client.force_login(viewer)
    page = client.get(change_url(claim))
    assert page.status_code == 200 and 'id="operations"' not in page.content.decode()
    assert client.post(op_url("approve", claim)).status_code == 403
    assert client.post(op_url("reopen", claim.monthly_uptime), {"reason": "x"}).status_code == 403
    assert Claim.objects.get(pk=claim.pk).status == Claim.Status.SUBMITTED


# --- Monthly uptime ------------------------------------------------------------------------------
def test_reopen_a_month_is_audited_and_holds_its_claims(staff_client, claim, ayo):
    month = claim.monthly_uptime
    month_url = reverse("admin:credits_monthlyuptime_change", args=[month.pk])
    page = staff_client.get(month_url).content.decode()
    assert 'id="reopen-form"' in page and "Never reopened." in page and f"#{claim.pk}" in page

    response = staff_client.post(op_url("reopen", month), {"reason": ""})
    assert (ERROR, "Say why the month is reopened.") in messages_of(response)
    assert not MonthReopening.objects.exists()

    reason = "Outage cause corrected to force majeure"
    response = staff_client.post(op_url("reopen", month), {"reason": reason}, follow=True)
    assert (SUCCESS, "Reopened: the next month-end run closes it again with fresh figures.") in messages_of(response)
    reopening = MonthReopening.objects.get(monthly_uptime=month)
    assert (reopening.actor, reopening.reason, reopening.at) == (ayo, reason, NOW)
    assert reopening.previous["credit_amount"] == "15000.0000"
    assert MonthlyUptime.objects.get(pk=month.pk).status == "reopened"
    assert reason in response.content.decode() and 'id="reopen-form"' not in response.content.decode()

    # The claim's page warns that the figures it was filed on are being corrected.
    page = staff_client.get(change_url(claim)).content.decode()
    assert 'id="stale"' in page and "This month is reopened for correction" in page

    response = staff_client.post(op_url("reopen", month), {"reason": "again"})
    assert (ERROR, "This month is already reopened.") in messages_of(response)


def test_months_list_is_read_only_and_gap_months_stand_out(staff_client, claim, gap_contract, alice):
    submit(gap_contract, alice)
    response = staff_client.get(MONTHS)
    html = response.content.decode()
    gap_row, other_row = rows(html)  # within a month, flagged first
    assert "gap: review" in gap_row and "KAL-0002" in gap_row and "99.776%" in gap_row
    assert "gap: review" not in other_row and "KES 15,000.00" in other_row and "Closed" in other_row
    assert '<td class="field-gap">—</td>' in other_row  # an empty cell as every page of ours writes one
    flagged = staff_client.get(MONTHS, {"flagged__exact": "1"}).context["cl"].result_list
    assert [m.contract.reference for m in flagged] == ["KAL-0002"]
    assert staff_client.get(reverse("admin:credits_monthlyuptime_add")).status_code == 403
    assert 'value="delete_selected"' not in html


def test_the_month_page_reads_its_breakdowns_titles_now_in_a_fixed_number_of_queries(staff_client, backup):
    close_month(month=OCT, now=NOW)
    month = MonthlyUptime.objects.get(contract=backup)
    month_url = reverse("admin:credits_monthlyuptime_change", args=[month.pk])
    flood = Outage.objects.get(title="Flood of requests")
    Outage.objects.filter(pk=flood.pk).update(title="Flood of requests (renamed after closing)")

    def page():
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get(month_url)
        assert response.status_code == 200
        return response.content.decode(), len(queries)

    page()  # the first page of a session caches what every page needs
    html, small = page()
    link = reverse("admin:contracts_outage_change", args=[flood.pk])
    assert f'<a href="{link}">Flood of requests (renamed after closing)</a>' in html
    assert "2026-10-20 02:00 (UTC+03:00) – 2026-10-20 03:00 (UTC+03:00)" in html
    assert "<td>0</td><td>60</td><td>Excluded: Distributed denial of service attack</td>" in html

    MonthlyUptime.objects.all().delete()
    for day in range(1, 29):
        down(backup.services.get(), 5, day=day, title=f"Blip {day}")
    close_month(month=OCT, now=NOW)
    month_url = reverse("admin:credits_monthlyuptime_change", args=[MonthlyUptime.objects.get(contract=backup).pk])
    html, large = page()
    assert html.count("Blip ") == 28 and large == small


# --- Changelist actions --------------------------------------------------------------------------
def act(client, action, objects, url=QUEUE + "?status=all", **extra):
    data = {"action": action, "_selected_action": [str(o.pk) for o in objects], **extra}
    return client.post(url, data, follow=True)


def test_approve_settle_and_reject_actions(staff_client, claim, gap_contract, alice):
    gap = submit(gap_contract, alice)
    response = act(staff_client, "approve_eligible", [claim, gap])
    assert (SUCCESS, "1 claim(s) approved.") in messages_of(response)
    assert any(level == ERROR and f"Claim #{gap.pk} (KAL-0002, 2026-10): No credit is due" in text for level, text in messages_of(response))  # fmt: skip
    response = act(staff_client, "settle", [claim, gap])
    assert (SUCCESS, "1 claim(s) marked as credited / refunded.") in messages_of(response)
    assert Claim.objects.get(pk=claim.pk).status == Claim.Status.SETTLED

    page = act(staff_client, "reject_selected", [gap])
    assert page.status_code == 200 and 'id="reject_selected-form"' in page.content.decode()
    assert f"#{gap.pk} KAL-0002" in page.content.decode()  # the claims listed before the reason is asked
    refused = act(staff_client, "reject_selected", [gap], apply="yes", reason="")
    assert refused.status_code == 400 and "Say why the claims are rejected" in refused.content.decode()
    assert Claim.objects.get(pk=gap.pk).status == Claim.Status.SUBMITTED
    done = act(
        staff_client, "reject_selected", [gap], apply="yes", reason="Within the table's gap: reviewed, no credit."
    )
    assert (SUCCESS, "1 claim(s) rejected.") in messages_of(done)
    assert Claim.objects.get(pk=gap.pk).decision_reason == "Within the table's gap: reviewed, no credit."


# --- CSV exports ---------------------------------------------------------------------------------
def test_claims_export_as_csv_with_formula_injection_guarded(staff_client, acme, alice, ayo, gap_contract):
    evil = ContractFactory(
        organisation=acme, reference="KAL-0003", name="=HYPERLINK(\"http://evil.example\",\"Click\")",
        contacts=[alice], services=[gap_contract.services.get()],
    )  # fmt: skip
    gap, other = submit(gap_contract, alice), submit(evil, alice, NOW - timedelta(hours=1))
    claim_approve(claim=other, actor=ayo, amount=Decimal("500"), reason="+1 goodwill")

    response = act(staff_client, "export_csv", [gap, other])
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="claims-\d{8}-\d{4}\.csv"', response["Content-Disposition"])
    exported = {row["contract_reference"]: row for row in parse_csv(response)}
    assert exported["KAL-0002"] == {
        "id": str(gap.pk), "organisation": "Acme Savings", "contract_reference": "KAL-0002",
        "contract_name": "Restore for Acme", "month": "2026-10", "status": "submitted", "uptime_percent": "99.77598566",
        "guarantee": "99.8", "tier_percent": "", "eligible_amount": "", "amount": "", "currency": "KES",
        "credit_kind": "refund", "submitted_at": "2026-11-02T07:00:00+00:00", "decided_at": "", "decided_by": "",
        "decision_reason": "", "flagged": "yes",
    }  # fmt: skip
    approved = exported["KAL-0003"]
    assert approved["contract_name"] == '\'=HYPERLINK("http://evil.example","Click")'
    assert approved["decision_reason"] == "'+1 goodwill"
    assert (approved["status"], approved["amount"], approved["decided_by"]) == ("approved", "500.00", ayo.email)
    assert approved["decided_at"] == "2026-11-03T07:00:00+00:00"

    # The link beside the list exports the list as filtered and searched on screen.
    html = staff_client.get(QUEUE, {"q": "KAL-0002"}).content.decode()
    link = reverse("admin:credits_claim_export") + "?q=KAL-0002"
    assert f'href="{link}"' in html
    assert [r["id"] for r in parse_csv(staff_client.get(link))] == [str(gap.pk)]
    assert [r["id"] for r in parse_csv(staff_client.get(link.replace("?", "?status=approved&")))] == []
    everything = parse_csv(staff_client.get(reverse("admin:credits_claim_export"), {"status": "all"}))
    assert [r["id"] for r in everything] == [str(gap.pk), str(other.pk)]  # the queue's order


def test_a_claim_nobody_decided_has_no_amount_in_the_claims_csv_nor_anywhere(staff_client, claim, ayo):
    """Its eligible figure, yes; an amount only once approved: a sum of the `amount` column is money approved."""
    assert (claim.eligible_amount, claim.amount) == (Decimal("15000"), None)
    (row,) = parse_csv(staff_client.get(reverse("admin:credits_claim_export")))
    assert (row["status"], row["eligible_amount"], row["amount"]) == ("submitted", "15000.00", "")
    queue = staff_client.get(QUEUE).content.decode()
    assert "KES 15,000.00" in queue  # the eligible column
    claim_approve(claim=claim, actor=ayo)
    (row,) = parse_csv(staff_client.get(reverse("admin:credits_claim_export"), {"status": "all"}))
    assert (row["status"], row["eligible_amount"], row["amount"]) == ("approved", "15000.00", "15000.00")


def test_the_migration_takes_the_amount_off_claims_nobody_decided(claim, ayo, backup, gap_contract, alice):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("credits.migrations.0008_claim_amount_set_by_decision")
    decided = submit(gap_contract, alice)
    claim_approve(claim=decided, actor=ayo, amount=Decimal("500"), reason="Goodwill")
    Claim.objects.filter(pk=claim.pk).update(amount=claim.eligible_amount)  # as filed before
    migration.undecided_have_no_amount(apps, None)
    assert Claim.objects.get(pk=claim.pk).amount is None
    assert Claim.objects.get(pk=decided.pk).amount == Decimal("500")  # a decision's amount stays
    migration.undecided_amount_as_before(apps, None)
    assert Claim.objects.get(pk=claim.pk).amount == Decimal("15000")


def test_monthly_uptime_export_as_csv(staff_client, claim, acme):
    evil = ContractFactory(organisation=acme, reference="@SUM(1+1)", name="-2+3", services=[ServiceFactory()])
    close_month(month=OCT, now=NOW, contract_ids=[evil.pk])
    response = staff_client.get(reverse("admin:credits_monthlyuptime_export"))
    assert re.fullmatch(r'attachment; filename="monthly-uptime-\d{8}-\d{4}\.csv"', response["Content-Disposition"])
    exported = parse_csv(response)
    assert exported[1] == {
        "organisation": "Acme Savings", "contract_reference": "KAL-0001", "contract_name": "Cloud Backup for Acme",
        "month": "2026-10", "total_minutes": "44640", "down_minutes": "500", "excluded_minutes": "60",
        "uptime_percent": "98.87992832", "guarantee": "99.8", "tier_percent": "10", "credit_amount": "15000.00",
        "currency": "KES", "flagged": "no", "status": "closed", "closed_at": "2026-11-02T07:00:00+00:00",
    }  # fmt: skip
    assert (exported[0]["contract_reference"], exported[0]["contract_name"]) == ("'@SUM(1+1)", "'-2+3")
    assert exported[0]["uptime_percent"] == "100"

    selected = act(staff_client, "export_csv", [claim.monthly_uptime], url=MONTHS)
    assert [r["contract_reference"] for r in parse_csv(selected)] == ["KAL-0001"]


def test_exports_do_a_fixed_number_of_queries(staff_client, acme, alice):
    def count(url):
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get(url, {"status": "all"} if url.endswith("claim/export/") else {})
            exported = parse_csv(response)  # the rows are read while the response streams
        return len(exported), len(queries)

    claims, months = reverse("admin:credits_claim_export"), reverse("admin:credits_monthlyuptime_export")
    make_claims(3, acme, alice)
    claims_3, months_3 = count(claims), count(months)
    make_claims(27, acme, alice)
    claims_30, months_30 = count(claims), count(months)
    assert (claims_3[0], claims_30[0], months_3[0], months_30[0]) == (3, 30, 3, 30)
    assert claims_30[1] == claims_3[1] and months_30[1] == months_3[1]
