"""Proven in a real browser, staff side: Playwright drives Debian's Chromium against the live server.

An account manager logs in (every section is theirs to see), opens the staff dashboard from the
admin's header (a breach, a ticket at risk with a live countdown, a maintenance window with too
little notice, a month in a gap of the credit table and a claim to review, the sweeps' heartbeats),
then the SLA compliance report: picks
last month with the month picker, filters by organisation, opens one contract's detail, downloads
the CSV, and gets a clear error for a month that is not one. A support agent sees only his role's
sections of the admin. Each step leaves a screenshot in var/screenshots/ and passes axe-core (no
serious or critical violation) and the CSP. The live
server runs on the real clock, so the data is built relative to timezone.now()."""

import calendar
import csv
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from contracts.maintenance.services import window_publish
from contracts.models import Outage
from credits.closing import close_month
from credits.services import claim_submit
from portal.site.staff_dashboard import week_start
from tickets.models import SLACrossing, Ticket
from tickets.services import ticket_open, ticket_reply, ticket_set_status
from tickets.sweeps import check_sla_deadlines

from .factories import ContractFactory, ServiceFactory
from .test_browser import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NBO = "Africa/Nairobi"
MIN = timedelta(minutes=1)


def last_month() -> date:
    """Last month in Nairobi (the contracts' timezone) and in UTC alike, but on the first hours of a
    month: then the report's default (last month in UTC) is the one the test closes."""
    today = timezone.now().astimezone(ZoneInfo("UTC")).date()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def text(locator) -> str:
    return " ".join(locator.inner_text().split())


def visit(page, screenshot, name: str) -> None:
    page.wait_for_load_state("load")
    screenshot(page, name)
    assert_accessible(page, name)


def uptime(month: date, down_minutes: int) -> str:
    """The month's uptime as the pages print it: it depends on the month's length (the test runs
    in whatever month it is)."""
    days = calendar.monthrange(month.year, month.month)[1]
    return f"{Decimal(100) - Decimal(100 * down_minutes) / (days * 1440):.3f}%"


def down(contract, month: date, minutes: int):
    start = datetime(month.year, month.month, 10, 2, 0, tzinfo=ZoneInfo(NBO))
    outage = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + minutes * MIN)
    outage.services.set(contract.services.all())


@pytest.fixture
def world(acme, alice, bob, globex, charlie, sam):
    now = timezone.now()
    month = last_month()
    starts = (month - timedelta(days=100)).replace(day=1)
    backup = ContractFactory(
        organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", contacts=[alice, bob], starts_on=starts
    )
    restore = ContractFactory(
        organisation=globex, reference="KAL-0002", name="Restore for Globex", contacts=[charlie], starts_on=starts,
        services=[ServiceFactory(name="Restore", slug="restore")],
    )  # fmt: skip
    down(backup, month, 500)  # 98.88% (98.84% in a 30-day month): the 10% tier
    down(restore, month, 100)  # 99.776% (99.769%): below 99.8% in the table's gap, flagged
    close_month(month=month, now=now)
    claim = claim_submit(contract=backup, month=month, user=alice, note="Backups failed on the 10th.", now=now)
    service = backup.services.get()
    # Last month's tickets: a P1 answered and resolved in time, and one nobody answered.
    filed = datetime(month.year, month.month, 12, 9, 0, tzinfo=ZoneInfo(NBO))
    kept = ticket_open(
        user=alice, contract=backup, service=service, priority="P1", subject="Restore stuck",
        description="Restore job 3 is stuck.", now=filed,
    )  # fmt: skip
    ticket_reply(ticket=kept, author=sam, body="Restarted it.", now=filed + 5 * MIN)
    ticket_set_status(ticket=kept, actor=sam, status=Ticket.Status.RESOLVED, now=filed + 30 * MIN)
    ticket_open(
        user=alice, contract=backup, service=service, priority="P1", subject="Agent offline",
        description="The agent is offline.", now=filed + timedelta(days=2),
    )  # fmt: skip
    # Nobody answered this P1 (15 min): its first response is breached.
    late = ticket_open(
        user=alice, contract=backup, service=service, priority="P1", subject="Nothing backs up",
        description="Since last night.", now=now - 20 * MIN,
    )  # fmt: skip
    check_sla_deadlines(now=now)
    # A P2 answered in time: its resolution (4 h) is due in 50 minutes, less than a quarter left.
    risky = ticket_open(
        user=alice, contract=backup, service=service, priority="P2", subject="Agent fails a job",
        description="Job 7 fails.", now=now - 190 * MIN,
    )  # fmt: skip
    ticket_reply(ticket=risky, author=sam, body="Looking into it.", now=now - 180 * MIN)
    window = window_publish(
        title="Urgent storage swap", description="", services=[service],
        starts_at=now + timedelta(hours=24), ends_at=now + timedelta(hours=25),
    )  # fmt: skip
    return {"month": month, "backup": backup, "claim": claim, "late": late, "risky": risky, "window": window}


def test_staff_see_the_dashboard_and_the_compliance_report(logged_in_page, screenshot, ayo, world, globex, tmp_path):
    page = logged_in_page(ayo)
    page.wait_for_url(re.compile(r"/admin/$"))
    assert page.locator("#staff-pages").get_by_role("link", name="Staff dashboard").is_visible()
    visit(page, screenshot, "30-admin-index")

    # The dashboard, from the header of any admin page.
    page.locator("#user-tools").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(re.compile(r"/admin/dashboard/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Staff dashboard"
    late = world["late"]
    breach_moment = SLACrossing.objects.get(ticket=late, kind="breach", clock="first_response").at
    breaches = text(page.locator("#breaches"))
    if breach_moment >= week_start(timezone.now()):  # not when the test runs in a week's first minutes
        assert f"#{late.pk} Nothing backs up Acme Savings P1 First response" in breaches
    at_risk = page.locator("#at-risk")
    assert "Agent fails a job" in text(at_risk)
    countdown = at_risk.locator("time[data-countdown]")
    first = countdown.inner_text()
    assert re.fullmatch(r"in (49|50) min", first)
    # Live: static/js/admin-countdown.js rewrites it every second.
    countdown.evaluate("el => { el.textContent = 'stale'; }")
    page.wait_for_function("el => el.textContent !== 'stale'", arg=countdown.element_handle())
    assert re.fullmatch(r"in (49|50) min", countdown.inner_text())
    maintenance = text(page.locator("#maintenance"))
    assert "Urgent storage swap KAL-0001 Acme Savings" in maintenance and "Notice shorter than 48 h" in maintenance
    months = text(page.locator("#months"))
    assert "KAL-0002 Globex Retail" in months and uptime(last_month(), 100) in months and "gap: review" in months
    assert f"#{world['claim'].pk}" in text(page.locator("#claims"))
    assert "late" in text(page.locator("#sweeps"))  # no beat runs in a test
    visit(page, screenshot, "31-staff-dashboard")

    # The compliance report: last month by default; the month picker picks another and back.
    page.locator("#user-tools").get_by_role("link", name="Compliance").click()
    page.wait_for_url(re.compile(r"/admin/compliance/"))
    month = world["month"]
    picker = page.get_by_label("Month")
    assert picker.input_value() == f"{month:%Y-%m}"
    picker.fill(f"{month:%Y-%m}")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("load")
    table = page.locator("#compliance-table")
    backup = text(table.locator('tbody[data-contract="KAL-0001"]'))
    assert uptime(last_month(), 500) in backup and "KES 15,000.00" in backup and "Awaiting review" in backup
    assert "P1 2 50.0% 1 met · 1 missed" in backup  # last month's two P1 tickets
    assert "KAL-0002" in text(table)
    visit(page, screenshot, "32-compliance-report")

    # Filtered by organisation.
    page.get_by_label("Organisation").select_option(label="Globex Retail")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("load")
    assert page.locator("tbody.compliance-contract").count() == 1
    assert "KAL-0002" in text(page.locator("#compliance-table")) and "gap: review" in text(
        page.locator("#compliance-table")
    )
    visit(page, screenshot, "33-compliance-filtered")

    # The CSV is the page's rows.
    with page.expect_download() as download:
        page.get_by_role("link", name="Export as CSV").click()
    path = tmp_path / "report.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [(r["contract_reference"], r["priority"], r["flagged"]) for r in rows] == [("KAL-0002", "all", "yes")]

    # One contract's detail.
    page.get_by_label("Organisation").select_option(label="All organisations")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("load")
    page.get_by_role("link", name="KAL-0001").click()
    page.wait_for_load_state("load")
    figures = text(page.locator("#figures"))
    assert f"Uptime {uptime(last_month(), 500)} against 99.8%" in figures and "Downtime 500 minutes" in figures
    assert "Storage down" in text(page.locator("#breakdown"))
    visit(page, screenshot, "34-compliance-contract")

    # A month that is not one: a clear error that quotes it (a month picker cannot show it).
    page.goto("/admin/compliance/?month=2026-13")
    assert "“2026-13” is not a month. Enter the month as YYYY-MM, e.g. 2026-10." in text(
        page.locator("#compliance-filters")
    )
    assert "Please correct the error below." in text(page.locator("#content"))
    assert page.locator("#compliance-table").count() == 0
    visit(page, screenshot, "35-compliance-bad-month")


def test_a_support_agent_sees_only_his_sections_of_the_admin(logged_in_page, screenshot, sam):
    """Sam's admin index: tickets, the contracts' context to read, the outbox and the sweeps, the
    staff dashboard; no claims, users, audit log or compliance report (docs/decisions.md)."""
    page = logged_in_page(sam)
    page.wait_for_url(re.compile(r"/admin/$"))
    visit(page, screenshot, "32-admin-index-support-agent")
    page.screenshot(path="/tmp/sam-admin.png", full_page=True)
    sections = {caption.text_content().strip() for caption in page.locator("#content-main .module caption").all()}
    assert sections == {"Staff pages", "Contracts", "Portal: accounts and email outbox", "Tickets"}
    main = text(page.locator("#content-main"))
    shown = ["Staff dashboard", "Tickets", "Escalation requests", "Outages", "Maintenance windows", "Outbox messages"]
    hidden = ["SLA compliance report", "Claims", "Monthly uptime", "Users", "Audit entries", "API tokens", "Groups"]
    assert all(name in main for name in shown) and not any(name in main for name in hidden)
    header = page.locator("#user-tools")
    assert header.get_by_role("link", name="Dashboard").count() == 1
    assert header.get_by_role("link", name="Compliance").count() == 0
