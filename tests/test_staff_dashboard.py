"""The staff dashboard (/admin/dashboard/): breaches this week (since Monday 00:00 UTC), tickets at
risk (less than a quarter of the nearest clock left) with a live countdown, maintenance that breaks a contract's rules,
months and claims for review, and the sweeps' heartbeats; staff only, linked from the admin's
index and header, and a fixed number of queries whatever the data's size. Frozen clocks: Wednesday
18 November 2026, 10:00 UTC (13:00 in Nairobi)."""

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
import time_machine
from django.urls import reverse

from contracts.maintenance.services import window_publish
from contracts.models import Outage
from credits.closing import close_month
from credits.services import claim_submit
from portal.core.heartbeat import SWEEPS
from portal.models import SweepHeartbeat
from portal.site.staff_dashboard import staff_dashboard, week_start
from tickets.models import SLACrossing, Ticket
from tickets.security import security_report_submit
from tickets.services import ticket_open, ticket_reply, ticket_set_status
from tickets.sweeps import check_sla_deadlines

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # a Wednesday
MONDAY = datetime(2026, 11, 16, tzinfo=UTC)
OCT = date(2026, 10, 1)
H = timedelta(hours=1)
MIN = timedelta(minutes=1)
DASHBOARD = reverse("admin:staff_dashboard")


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def staff_client(client, ayo):
    client.force_login(ayo)  # an account manager: every section (each is shown as its list's permission allows)
    return client


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(html: str, name: str) -> str:
    found = re.search(rf'<div class="module staff-section" id="{name}">(.*?)\n</div>', html, re.S)
    assert found, name
    return found[1]


def file(contract, user, priority, when, subject):
    with time_machine.travel(when, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority,
            subject=subject, description="Nothing backs up.",
        )  # fmt: skip


def answered(ticket, sam, when):
    with time_machine.travel(when, tick=False):
        ticket_reply(ticket=ticket, author=sam, body="Looking into it.")
    ticket.refresh_from_db()
    return ticket


# --- The week -------------------------------------------------------------------------------------
def test_the_week_starts_on_monday_at_midnight_utc():
    assert week_start(NOW) == MONDAY
    assert week_start(MONDAY) == MONDAY
    assert week_start(MONDAY - timedelta(seconds=1)) == MONDAY - timedelta(days=7)
    # 02:00 on Monday in Nairobi is still Sunday in UTC: last week.
    assert week_start(datetime(2026, 11, 15, 23, 0, tzinfo=UTC)) == datetime(2026, 11, 9, tzinfo=UTC)


# --- Breaches this week ------------------------------------------------------------------------------
def test_a_breach_this_week_appears_and_last_weeks_does_not(staff_client, acme_contract, alice):
    # P1 on Kaluari: first response within 15 min, resolution within 1 h, 24x7; nobody answers.
    late = file(acme_contract, alice, "P1", datetime(2026, 11, 17, 9, 0, tzinfo=UTC), "Backups stopped on Tuesday")
    old = file(acme_contract, alice, "P1", datetime(2026, 11, 15, 20, 0, tzinfo=UTC), "Backups stopped on Sunday")
    check_sla_deadlines(now=NOW)
    assert SLACrossing.objects.filter(ticket=old, kind="breach").count() == 2  # recorded, but last week

    html = staff_client.get(DASHBOARD).content.decode()
    breaches = section(html, "breaches")
    assert "Backups stopped on Tuesday" in breaches and "Backups stopped on Sunday" not in breaches
    # Both of its clocks, latest first, in the contract's time, with the organisation and priority.
    rows = re.findall(r"<tr><td>.*?</tr>", breaches, re.S)
    assert [text(r) for r in rows] == [
        f"#{late.pk} Backups stopped on Tuesday Acme Savings P1 Resolution 2026-11-17 13:00 (UTC+03:00)",
        f"#{late.pk} Backups stopped on Tuesday Acme Savings P1 First response 2026-11-17 12:15 (UTC+03:00)",
    ]
    assert reverse("admin:tickets_ticket_change", args=[late.pk]) in breaches
    assert "2 breaches this week" in text(html)
    # The link to all of them opens the crossings' list filtered the same way.
    link = unescape(re.search(r'<a href="([^"]+)">All breaches this week', breaches)[1])
    assert (
        link
        == reverse("admin:tickets_slacrossing_changelist")
        + "?kind__exact=breach&at__gte=2026-11-16T00%3A00%3A00%2B00%3A00"
    )
    listed = staff_client.get(link)
    assert listed.status_code == 200
    assert sorted(c.ticket_id for c in listed.context["cl"].result_list) == [late.pk, late.pk]


def test_a_vulnerability_reports_breach_is_shown_to_security_staff_only(client, sam):
    with time_machine.travel(datetime(2026, 11, 16, 8, 0, tzinfo=UTC), tick=False):
        security_report_submit(email="eve@research.example", name="Eve", summary="XSS in search", details="...")
    check_sla_deadlines(now=NOW)
    assert SLACrossing.objects.filter(kind="breach").exists()
    client.force_login(sam)
    assert "XSS in search" not in client.get(DASHBOARD).content.decode()
    client.force_login(StaffFactory(email="sec@vendor.example", staff_role="security"))
    assert "XSS in search" in section(client.get(DASHBOARD).content.decode(), "breaches")


# --- At risk: less than a quarter of the nearest clock's allowance left ---------------------------
def test_a_ticket_with_less_than_a_quarter_of_its_clock_left_is_at_risk(staff_client, acme_contract, alice, sam):
    # P2: first response within 1 h, resolution within 4 h, 24x7. Both answered in time.
    soon = answered(file(acme_contract, alice, "P2", NOW - 190 * MIN, "Agent fails tonight"), sam, NOW - 180 * MIN)
    later = answered(file(acme_contract, alice, "P2", NOW - 150 * MIN, "Agent fails sometimes"), sam, NOW - 140 * MIN)
    # 50 of 240 minutes left (21%): at risk; 90 left (38%): not, though it is due within two hours.
    assert soon.next_deadline == NOW + 50 * MIN and later.next_deadline == NOW + 90 * MIN
    # Waiting on the customer (clocks stopped) and resolved tickets are not at risk either.
    waiting = answered(file(acme_contract, alice, "P2", NOW - 190 * MIN, "Waiting for logs"), sam, NOW - 180 * MIN)
    ticket_set_status(ticket=waiting, actor=sam, status=Ticket.Status.WAITING)
    # P1: 2 of its 15 minutes to a first response left.
    fresh = file(acme_contract, alice, "P1", NOW - 13 * MIN, "Backups stopped just now")
    calm = file(acme_contract, alice, "P1", NOW - 5 * MIN, "Backups slow just now")  # 10 of 15 left

    html = staff_client.get(DASHBOARD).content.decode()
    at_risk = section(html, "at-risk")
    assert "Agent fails tonight" in at_risk and "Backups stopped just now" in at_risk
    assert "Agent fails sometimes" not in at_risk and "Waiting for logs" not in at_risk
    assert calm.subject not in at_risk
    # Nearest first, each with its clock, a live countdown and the contract's time.
    assert at_risk.index("Backups stopped just now") < at_risk.index("Agent fails tonight")
    assert f'<time datetime="{fresh.first_response_due.isoformat()}" data-countdown>in 2 min</time>' in at_risk
    assert f'<time datetime="{soon.next_deadline.isoformat()}" data-countdown>in 50 min</time>' in at_risk
    assert "2026-11-18 13:50 (UTC+03:00)" in at_risk
    rows = [text(r) for r in re.findall(r"<tr><td>.*?</tr>", at_risk, re.S)]
    assert rows[0].startswith(f"#{fresh.pk} Backups stopped just now Acme Savings P1 First response")
    assert rows[1].startswith(f"#{soon.pk} Agent fails tonight Acme Savings P2 Resolution")
    assert "P1 25%, P2 25%, P3 25%, P4 25%, Standard 25%" in text(at_risk)
    assert "js/admin-countdown.js" in html and "admin-extra/tickets.css" in html


def test_each_list_is_capped_with_the_count_beside_it(staff_client, monkeypatch, acme_contract, alice):
    import portal.site.staff_dashboard

    monkeypatch.setattr(portal.site.staff_dashboard, "LIMIT", 2)
    for minutes in (12, 13, 14):  # 3, 2 and 1 of their 15 minutes left
        file(acme_contract, alice, "P1", NOW - minutes * MIN, f"Stopped {minutes} min ago")
    html = staff_client.get(DASHBOARD).content.decode()
    at_risk = section(html, "at-risk")
    assert "Stopped 14 min ago" in at_risk and "Stopped 13 min ago" in at_risk and "Stopped 12 min ago" not in at_risk
    assert "1 more in the queue" in text(at_risk) and "3 at risk" in text(html)


def test_a_breached_ticket_is_no_longer_at_risk(staff_client, acme_contract, alice):
    file(acme_contract, alice, "P1", NOW - 20 * MIN, "Nobody answered")  # first response overdue by 5 min
    check_sla_deadlines(now=NOW)
    html = staff_client.get(DASHBOARD).content.decode()
    assert "Nobody answered" not in section(html, "at-risk")
    assert "No ticket is at risk." in html


# --- Maintenance that breaks a contract's rules ------------------------------------------------------
def test_a_window_with_too_little_notice_appears_and_one_that_keeps_the_rules_does_not(staff_client, acme_contract):
    service = acme_contract.services.get()
    # 23:00-00:00 Nairobi (off-peak), but published 34 hours ahead: 48 hours' notice are needed.
    short = window_publish(
        title="Urgent disk swap", description="", services=[service],
        starts_at=datetime(2026, 11, 19, 20, 0, tzinfo=UTC), ends_at=datetime(2026, 11, 19, 21, 0, tzinfo=UTC),
    )  # fmt: skip
    window_publish(
        title="Planned disk swap", description="", services=[service],
        starts_at=datetime(2026, 11, 25, 20, 0, tzinfo=UTC), ends_at=datetime(2026, 11, 25, 21, 0, tzinfo=UTC),
    )  # fmt: skip
    # At noon local time and a week ahead: outside off-peak hours.
    noon = window_publish(
        title="Midday migration", description="", services=[service],
        starts_at=datetime(2026, 11, 26, 9, 0, tzinfo=UTC), ends_at=datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    html = staff_client.get(DASHBOARD).content.decode()
    windows = section(html, "maintenance")
    assert "Planned disk swap" not in windows
    rows = [text(r) for r in re.findall(r"<tr><td>.*?</tr>", windows, re.S)]
    assert rows[0].startswith("Urgent disk swap KAL-0001 Acme Savings 2026-11-19 23:00 (UTC+03:00)")
    assert "60 Notice shorter than 48 h" in rows[0]
    assert rows[1].startswith("Midday migration KAL-0001") and "30 Outside off-peak hours" in rows[1]
    assert reverse("admin:contracts_maintenancewindow_change", args=[short.pk]) in windows
    assert reverse("admin:contracts_maintenancewindow_change", args=[noon.pk]) in windows
    assert "2 windows breaking rules" in text(html)


def test_a_cancelled_window_and_one_of_last_month_are_left_out(staff_client, acme_contract):
    from contracts.maintenance.services import window_cancel

    service = acme_contract.services.get()
    with time_machine.travel(datetime(2026, 10, 20, tzinfo=UTC), tick=False):
        window_publish(
            title="October noon work", description="", services=[service],
            starts_at=datetime(2026, 10, 21, 9, 0, tzinfo=UTC), ends_at=datetime(2026, 10, 21, 10, 0, tzinfo=UTC),
        )  # fmt: skip
    cancelled = window_publish(
        title="Cancelled noon work", description="", services=[service],
        starts_at=datetime(2026, 11, 26, 9, 0, tzinfo=UTC), ends_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
    )  # fmt: skip
    window_cancel(window=cancelled)
    html = staff_client.get(DASHBOARD).content.decode()
    assert "Every scheduled window keeps every contract's rules." in section(html, "maintenance")


# --- Months and claims for review --------------------------------------------------------------------
def gap_month(contract, minutes=100):
    """`minutes` down on 10 October: 100 minutes is 99.776%, below 99.8% in the table's gap."""
    start = datetime(2026, 10, 10, 2, 0, tzinfo=UTC)
    outage = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + minutes * MIN)
    outage.services.set([contract.services.get()])


def test_a_flagged_month_and_a_claim_awaiting_review_appear(staff_client, acme, alice, acme_contract):
    other = ContractFactory(
        organisation=acme,
        reference="KAL-0002",
        name="Restore",
        services=[ServiceFactory(name="Restore", slug="restore")],
    )
    gap_month(acme_contract)  # flagged
    gap_month(other, minutes=10)  # above the guarantee: nothing to review
    close_month(month=OCT, now=NOW)
    claim = claim_submit(contract=acme_contract, month=OCT, user=alice, note="October")

    html = staff_client.get(DASHBOARD).content.decode()
    months = section(html, "months")
    assert "KAL-0001" in months and "KAL-0002" not in months
    assert "99.776%" in text(months) and "gap: review" in months
    claims = section(html, "claims")
    assert f"#{claim.pk}" in claims and reverse("admin:credits_claim_change", args=[claim.pk]) in claims
    assert "1 month to review" in text(html) and "1 claim awaiting review" in text(html)


def test_a_reopened_month_is_for_review(staff_client, sam, acme_contract):
    from credits.models import MonthlyUptime
    from credits.services import month_reopen

    close_month(month=OCT, now=NOW)
    month_reopen(monthly_uptime=MonthlyUptime.objects.get(), actor=sam, reason="Outage corrected")
    months = section(staff_client.get(DASHBOARD).content.decode(), "months")
    assert "KAL-0001" in months and "reopened" in months


def test_empty_states(staff_client):
    html = staff_client.get(DASHBOARD).content.decode()
    for empty in (
        "No SLA breach this week.", "No ticket is at risk.",
        "Every scheduled window keeps every contract's rules.", "No month awaits review.", "No claim awaits review.",
    ):  # fmt: skip
        assert empty in html


# --- Sweeps ------------------------------------------------------------------------------------------
def test_the_sweeps_heartbeats_in_a_leads_words(staff_client):
    """Each sweep says what it does and what its last result counted, its beat id beside it."""
    from portal.core.heartbeat import PURPOSES

    assert set(PURPOSES) == set(SWEEPS)  # a sweep added to the beat needs its words
    SweepHeartbeat.objects.create(
        name="outbox-sweep", last_started_at=NOW - MIN, last_finished_at=NOW - MIN, runs=3, last_result="3"
    )
    SweepHeartbeat.objects.create(
        name="tickets-sla-deadlines", last_started_at=NOW - MIN, last_finished_at=NOW - MIN, runs=9, last_result="1"
    )
    SweepHeartbeat.objects.create(
        name="inbound-imap", last_started_at=NOW - MIN, last_finished_at=NOW - MIN, runs=2,
        last_result="off: no mailbox to poll (INBOUND_IMAP_URL is not set)",
    )  # fmt: skip
    SweepHeartbeat.objects.create(
        name="credits-close-month", last_started_at=NOW - MIN, last_finished_at=NOW - MIN, runs=1, last_result="1200"
    )
    sweeps = section(staff_client.get(DASHBOARD).content.decode(), "sweeps")
    rows = [text(r) for r in re.findall(r"<tr><td>.*?</tr>", sweeps, re.S)]
    assert len(rows) == len(SWEEPS)
    rows = {name: next(r for r in rows if f" {name} " in r) for name in SWEEPS}
    assert (
        rows["outbox-sweep"]
        == "Email outbox: emails due outbox-sweep every minute on time 2026-11-18 09:59 (UTC+00:00) 3 emails sent"
    )
    assert rows["tickets-sla-deadlines"].endswith("on time 2026-11-18 09:59 (UTC+00:00) 1 warning or breach recorded")
    assert rows["inbound-imap"].endswith("off: no mailbox to poll (INBOUND_IMAP_URL is not set)")
    assert rows["credits-close-month"] == (
        "Closing ended months credits-close-month every hour on time 2026-11-18 09:59 (UTC+00:00) 1,200 months closed"
    )
    assert rows["tickets-escalate"] == "Escalation timers tickets-escalate every minute late never —"
    assert f"{len(SWEEPS) - 4} late" in sweeps  # every sweep but the four that ran


# --- Who sees it, and where it is linked from --------------------------------------------------------
def test_staff_only_a_customer_is_refused_as_every_admin_page_refuses(client, alice):
    assert client.get(DASHBOARD)["Location"].startswith("/admin/login/")
    client.force_login(alice)
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_linked_from_the_admin_index_and_header(staff_client):
    html = staff_client.get(reverse("admin:index")).content.decode()
    assert f'<a href="{DASHBOARD}">Staff dashboard</a>' in html
    assert f'<a href="{reverse("admin:compliance")}">SLA compliance report</a>' in html
    header = staff_client.get(reverse("admin:tickets_ticket_changelist")).content.decode()
    assert f'<a href="{DASHBOARD}">Dashboard</a>' in header


# --- A fixed number of queries ---------------------------------------------------------------------
def world(n: int, sam):
    """n organisations, each with a breach this week, a ticket at risk, a window with too little
    notice, a flagged month and a claim awaiting review."""
    for i in range(n):
        org = OrganisationFactory(name=f"Org {i}", slug=f"org-{i}")
        user = UserFactory(email=f"u{i}@org{i}.example", organisation=org, customer_role="admin")
        service = ServiceFactory(name=f"Backup {i}", slug=f"backup-{i}")
        contract = ContractFactory(organisation=org, reference=f"K-{i}", services=[service], contacts=[user])
        file(contract, user, "P1", NOW - 2 * H, f"Breached {i}")
        answered(file(contract, user, "P2", NOW - 190 * MIN, f"At risk {i}"), sam, NOW - 180 * MIN)
        window_publish(
            title=f"Short notice {i}", description="", services=[service],
            starts_at=datetime(2026, 11, 19, 20, 0, tzinfo=UTC), ends_at=datetime(2026, 11, 19, 21, 0, tzinfo=UTC),
        )  # fmt: skip
        gap_month(contract)
        close_month(month=OCT, now=NOW, contract_ids=[contract.pk])
        claim_submit(contract=contract, month=OCT, user=user)
    check_sla_deadlines(now=NOW)


@pytest.mark.parametrize("n", [1, 6])
def test_a_fixed_number_of_queries_whatever_the_size(staff_client, sam, django_assert_num_queries, n):
    world(n, sam)
    board = staff_dashboard(now=NOW)
    assert (board.breaches.count, board.at_risk.count, board.windows.count) == (2 * n, n, n)
    assert (board.review_months.count, board.claims.count) == (n, n)
    # session, user, their permissions (their own and their role's, one query) and whether Ayo has a second-factor
    # device (portal.core.staff_otp), then: breaches 2, at risk 2, maintenance 7, months 2, claims 2,
    # heartbeats 1
    with django_assert_num_queries(32):  # and the day's work: tests/test_staff_today.py
        response = staff_client.get(DASHBOARD)
    assert response.status_code == 200
