"""The contract page's "Tickets within SLA" chart and the SLA statement, in a real browser (Debian's
Chromium driven by Playwright against the live server, which runs on the real clock: the data is
built relative to timezone.now()).

A customer opens the contract page (the chart, its table, the month picker), picks last month, reads
its statement and downloads the PDF; the statement fits a phone. Every page passes axe-core (no
serious or critical violation) and the Content-Security-Policy, and leaves a screenshot in
var/screenshots/ (with the PDF itself, and its first page as a PNG where pdftoppm is installed)."""

import re
import shutil
import subprocess
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from contracts.maintenance.services import window_publish
from contracts.maintenance.sweep import maintenance_notices_send_due
from contracts.models import Outage
from credits.closing import close_month
from tickets.models import Ticket
from tickets.services import ticket_open, ticket_reply, ticket_set_status

from .conftest import SCREENSHOTS
from .factories import ContractFactory
from .test_browser import NBO, PHONE, expect_heading, month_start, nav_to, text, today, visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def kaluari(acme, alice, bob):
    return ContractFactory(
        organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", contacts=[alice, bob],
        starts_on=month_start(today(), 6),
    )  # fmt: skip


def _ticket(contract, user, at, priority):
    from time_machine import travel

    with travel(at, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority,
            subject=f"{priority} backups fail", description="Nothing backs up.",
        )  # fmt: skip


@pytest.fixture
def last_month(kaluari, alice, sam):
    """Last month: 500 minutes down on the 10th (the 10% tier), a maintenance window that kept the
    rules on the 12th, tickets answered in time and late over the last months; closed."""
    from time_machine import travel

    month = month_start(today(), 1)
    zone = ZoneInfo(NBO)
    start = datetime(month.year, month.month, 10, 2, 0, tzinfo=zone)
    outage = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(minutes=500))
    outage.services.set(kaluari.services.all())
    window_start = datetime(month.year, month.month, 12, 23, 0, tzinfo=zone)
    with travel(window_start - timedelta(days=7), tick=False):
        window = window_publish(
            title="Backup storage upgrade", description="New disks.", services=kaluari.services.all(),
            starts_at=window_start, ends_at=window_start + timedelta(hours=2),
        )  # fmt: skip
    maintenance_notices_send_due(now=window.starts_at - timedelta(hours=48))
    for back in (1, 2, 4):
        m = month_start(today(), back)
        filed = datetime(m.year, m.month, 5, 10, 0, tzinfo=zone)
        for priority, reply_after in (("P1", 10), ("P1", 25), ("P2", 30), ("P3", 200)):
            t = _ticket(kaluari, alice, filed, priority)
            with travel(filed + timedelta(minutes=reply_after), tick=False):
                ticket_reply(ticket=t, author=sam, body="On it.")
            if back != 4 or priority != "P3":
                with travel(filed + timedelta(minutes=reply_after + 20), tick=False):
                    ticket_set_status(ticket=t, actor=sam, status=Ticket.Status.RESOLVED)
    assert close_month(month=month, now=timezone.now()) == 1
    return month


def test_a_customer_reads_the_attainment_chart_and_downloads_a_months_statement(
    logged_in_page, screenshot, alice, kaluari, last_month
):
    page = logged_in_page(alice)
    nav_to(page, "Contracts")
    expect_heading(page, "Cloud Backup for Acme")
    section = page.locator("#attainment")
    assert text(section.get_by_role("heading", level=2)) == "Tickets within SLA, last 7 months"
    charts = section.get_by_role("img")
    assert charts.count() == 4  # P1 to P4, each an SVG with its title
    assert charts.first.get_attribute("aria-labelledby") == "att-P1-title att-P1-desc"
    row = section.locator("table.attainment tbody tr", has_text=f"{last_month:%B %Y}")
    assert text(row).startswith(f"{last_month:%B %Y} 1 of 2 (50%) 2 of 2 (100%) 1 of 1 (100%)")
    section.scroll_into_view_if_needed()
    visit(page, screenshot, "statement-01-contract-attainment")

    # The month picker: last month is offered; its statement opens.
    picker = page.get_by_label("Month", exact=True)
    assert picker.input_value() == f"{last_month:%Y-%m}"
    page.get_by_role("button", name="Open the statement").click()
    page.wait_for_url(re.compile(rf"/contracts/{kaluari.pk}/statement/{last_month:%Y-%m}/$"))
    expect_heading(page, f"KAL-0001 · {last_month:%B %Y}")
    assert "Closed" in text(page.locator(".statement-head .badges"))
    assert "Storage down" in text(page.locator("table.breakdown"))
    assert "Backup storage upgrade" in text(page.locator("table.breakdown"))
    assert "KES 15,000.00" in text(page.locator("section", has=page.get_by_role("heading", name="Service credit")))
    visit(page, screenshot, "statement-02-page")

    # The PDF: a download named after the contract and the month.
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("^Download the PDF")).click()
    download = info.value
    assert download.suggested_filename == f"sla-statement-KAL-0001-{last_month:%Y-%m}.pdf"
    pdf = SCREENSHOTS / "statement-03.pdf"
    download.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")
    if shutil.which("pdftoppm"):  # poppler-utils: the first page as a PNG, to look at
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", pdf, pdf.with_suffix("")])

    # On a phone: nothing scrolls sideways (wide tables scroll in their own box).
    phone = logged_in_page(alice, viewport=PHONE)
    phone.goto(f"/contracts/{kaluari.pk}/statement/{last_month:%Y-%m}/")
    visit(phone, screenshot, "statement-04-phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.goto(f"/contracts/{kaluari.pk}/#attainment")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "statement-05-phone-contract")

    # A month that has not started: a clear page, not an error.
    page.goto(f"/contracts/{kaluari.pk}/statement/2999-01/")
    expect_heading(page, "SLA statement")
    assert "January 2999 has not started yet" in text(page.locator("main"))
    visit(page, screenshot, "statement-06-not-started")
