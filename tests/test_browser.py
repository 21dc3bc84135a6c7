"""Proven in a real browser: Playwright drives Debian's Chromium against the live server.

- A customer logs in by typing, files a P1 ticket on the Kaluari contract, watches its countdown
  tick, replies with a PNG and asks to escalate; a support agent answers in the admin; the
  customer sees the answer and the stopped first-response clock.
- A customer files a credit claim for last month from the uptime page, and a claim for a month
  whose window has passed is refused with the moment it was due.
- The dashboard (and every other customer page) fits a phone.

Every customer page visited passes axe-core (no serious or critical violation), breaks no rule of
the Content-Security-Policy (logged_in_page fails the test on a CSP refusal in the console) and
leaves a screenshot in var/screenshots/. The live server runs on the real clock, so the data is
built relative to timezone.now()."""

import base64
import contextlib
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.templatetags.static import static
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError

from contracts.maintenance.services import window_publish
from contracts.models import Organisation, Outage
from credits.closing import close_month
from credits.models import Claim
from credits.services import claim_window
from portal.domain.formats import in_tz
from portal.models import User
from tickets.models import Ticket
from tickets.services import ticket_open

from .factories import ContractFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NBO = "Africa/Nairobi"  # the Kaluari template's timezone
PNG = base64.b64decode(  # 1x1 pixel
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
AXE = static("vendor/axe/axe.min.js")  # vendored axe-core, served by the live server like our own scripts
PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # the live server's thread reads the same settings


def month_start(day: date, months_back: int) -> date:
    first = day.replace(day=1)
    for _ in range(months_back):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def today() -> date:
    """Today in the contract's timezone: the live server runs on the real clock."""
    return timezone.now().astimezone(ZoneInfo(NBO)).date()


@pytest.fixture
def kaluari(acme, alice, bob):
    """Acme's Kaluari Cloud Backup contract, started long enough ago for every month used here."""
    return ContractFactory(
        organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", contacts=[alice, bob],
        starts_on=month_start(today(), 6),
    )  # fmt: skip


@pytest.fixture
def last_month_closed(kaluari):
    """500 minutes down on the 10th of last month (98.8x% uptime, the 10% tier: KES 15,000.00), and
    the month closed as the hourly run would have."""
    month = month_start(today(), 1)
    start = datetime(month.year, month.month, 10, 2, 0, tzinfo=ZoneInfo(NBO))
    outage = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(minutes=500))
    outage.services.set(kaluari.services.all())
    assert close_month(month=month, now=timezone.now()) == 1
    return month


def assert_accessible(page, name: str) -> None:
    """axe-core on the page as it is: no violation of impact serious or critical. The script is
    loaded from our own origin, so the page's CSP allows it (no bypass needed)."""
    page.add_script_tag(url=AXE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    report = "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n"
        + "\n".join(f"    {n['target']}: {n['failureSummary']}".replace("\n", " ") for n in v["nodes"][:5])
        for v in bad
    )
    assert not bad, f"axe on {name} ({page.url}):\n{report}"


def visit(page, screenshot, name: str) -> None:
    """Every customer page a step lands on: kept as a screenshot and checked by axe."""
    page.wait_for_load_state("load")
    screenshot(page, name)
    assert_accessible(page, name)


def expect_heading(page, name: str) -> None:
    # A click returns before the page it opens has replaced this one (whose load state is "load"):
    # wait for the heading named so, then check it is the page's.
    page.get_by_role("heading", level=1, name=name, exact=True).wait_for()
    assert page.get_by_role("heading", level=1).inner_text() == name


def text(locator) -> str:
    return " ".join(locator.inner_text().split())


def nav_to(page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


# --- A ticket, from filing to the first answer --------------------------------------------------
def test_a_customer_files_a_p1_ticket_and_support_answers_it(
    logged_in_page, screenshot, live_server, alice, sam, kaluari, tmp_path
):
    page = logged_in_page(alice)
    assert page.url == f"{live_server.url}/"  # the login page leads to the dashboard
    expect_heading(page, "Acme Savings")
    visit(page, screenshot, "01-dashboard")

    # File a P1 on the Kaluari contract, from the contract's card.
    page.get_by_role("link", name="File a ticket on Cloud Backup for Acme").click()
    expect_heading(page, "File a ticket")
    assert page.get_by_label("Contract").input_value() == str(kaluari.pk)
    visit(page, screenshot, "02-ticket-new")
    page.get_by_role("radio", name="P1 – production incident").check()
    page.get_by_label("Subject").fill("Backups fail on the Nairobi cluster")
    page.get_by_label("Description").fill("No backup job has finished since 06:00.\nThe agent times out.")
    page.get_by_role("button", name="File the ticket").click()

    page.wait_for_url(re.compile(r"/tickets/\d+/$"))
    ticket = Ticket.objects.get()
    assert (ticket.priority, ticket.created_by, ticket.contract) == ("P1", alice, kaluari)
    assert f"Ticket {ticket.number} is filed" in text(page.locator(".messages"))
    clocks = page.locator("section", has=page.get_by_role("heading", name="SLA clocks"))
    due = ticket.filed_at + timedelta(minutes=15)  # P1: first response within 15 min, 24x7
    assert f"First response Due {in_tz(due, NBO)}" in text(clocks)

    # The countdown ticks without a reload.
    countdown = clocks.locator("dd time[data-countdown]").first
    assert countdown.get_attribute("datetime") == due.astimezone(ZoneInfo("UTC")).isoformat()
    before = countdown.inner_text()
    assert re.fullmatch(r"in 1[45] min \d+ s", before), before
    page.wait_for_timeout(1500)
    after = countdown.inner_text()
    assert after != before and re.fullmatch(r"in 1[45] min \d+ s", after), (before, after)
    visit(page, screenshot, "03-ticket-filed")

    # Reply with a screenshot of the error.
    png = tmp_path / "agent-error.png"
    png.write_bytes(PNG)
    reply = page.locator("#reply")
    reply.get_by_label("Your reply").fill("Here is what the agent shows.")
    reply.get_by_label("Attachments").set_input_files(png)
    reply.get_by_role("button", name="Send reply").click()
    page.wait_for_load_state("load")
    conversation = page.locator("#conversation")
    assert "Here is what the agent shows." in text(conversation)
    assert conversation.get_by_role("link", name="agent-error.png").is_visible()
    assert ticket.attachments.get().content_type == "image/png"

    # Ask to escalate.
    page.get_by_label("Why should this ticket be escalated?").fill("Month-end close depends on these backups.")
    page.get_by_role("button", name="Ask to escalate").click()
    page.wait_for_load_state("load")
    assert "You asked to escalate" in text(page.locator("#escalation"))
    assert ticket.escalation_requests.count() == 1
    visit(page, screenshot, "04-ticket-replied-escalated")

    # Sam, a support agent, answers with the public reply form of the ticket's admin page.
    staff = logged_in_page(sam)
    staff.goto(f"/admin/tickets/ticket/{ticket.pk}/change/")
    form = staff.locator("#reply-form")
    form.get_by_label("Body").fill("We are on it: the storage node is being replaced.")
    assert not form.get_by_label(re.compile("^Internal note")).is_checked()
    form.get_by_role("button", name="Send").click()
    staff.wait_for_load_state("load")
    assert "Reply sent to the customer." in text(staff.locator(".messagelist"))
    screenshot(staff, "05-admin-answered")

    # Alice sees the answer, and the first-response clock has stopped.
    page.reload()
    ticket.refresh_from_db()
    assert ticket.first_response_at is not None
    answer = page.locator("li.msg.staff")
    assert "Sam Support Support team" in text(answer)
    assert "We are on it: the storage node is being replaced." in text(answer)
    assert f"First response Answered at {in_tz(ticket.first_response_at, NBO)}" in text(clocks)
    visit(page, screenshot, "06-ticket-answered")

    nav_to(page, "Tickets")
    expect_heading(page, "Tickets")
    assert ticket.subject in text(page.locator("table.tickets"))
    visit(page, screenshot, "07-ticket-list")
    # On a 1280-px screen every column is in view, "what to do now" too: the list does not scroll
    # sideways in its box (its status and priority sit under the subject, as on the dashboard).
    page.set_viewport_size({"width": 1280, "height": 900})
    box = page.locator(".table-wrap:has(table.tickets)")
    assert box.evaluate("e => e.scrollWidth <= e.clientWidth"), box.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert "P1" in text(page.locator("table.tickets tbody th"))


# --- Uptime and credits ---------------------------------------------------------------------------
def test_a_customer_claims_a_credit_and_a_late_claim_is_refused(
    logged_in_page, screenshot, alice, kaluari, last_month_closed
):
    now, claimable, late = timezone.now(), last_month_closed, month_start(today(), 3)
    _, closes, _ = claim_window(contract=kaluari, month=claimable, now=now)
    travel = contextlib.nullcontext()
    if now > closes - timedelta(minutes=5):
        # On the 31st no month is open for a claim: play the test on the 15th (the server's clock;
        # time-machine moves it for the live server's thread too, and nothing here reads the browser's).
        travel = time_machine.travel(now.replace(day=15), tick=True)
    with travel:
        # A maintenance window next week, so that the maintenance page shows its table.
        starts = (now.astimezone(ZoneInfo(NBO)) + timedelta(days=7)).replace(hour=23, minute=0, second=0, microsecond=0)
        window_publish(
            title="Backup storage upgrade", description="The storage nodes get new disks.",
            services=kaluari.services.all(), starts_at=starts, ends_at=starts + timedelta(hours=2),
        )  # fmt: skip

        page = logged_in_page(alice)
        nav_to(page, "Uptime and credits")
        expect_heading(page, "Uptime and service credits")
        visit(page, screenshot, "10-claims")
        page.get_by_role("link", name=re.compile(r"^Cloud Backup for Acme\s*: uptime$")).click()
        expect_heading(page, "Uptime and service credits")
        assert f"{claimable:%B %Y}: 98.8" in text(page.locator(f"#month-{claimable:%Y-%m}"))
        visit(page, screenshot, "11-uptime")

        page.get_by_role("link", name=f"File a claim for {claimable:%B %Y}").click()
        expect_heading(page, "File a service-credit claim")
        assert page.get_by_label("Month").input_value() == f"{claimable:%Y-%m}"
        visit(page, screenshot, "12-claim-form")
        page.get_by_role("button", name="Preview the credit").click()
        preview = page.locator("section.preview")
        preview.wait_for()
        assert f"Cloud Backup for Acme, {claimable:%B %Y}" in text(preview)
        assert "Credit tier 10.0% of the month's invoice" in text(preview)
        assert "Eligible credit KES 15,000.00 (refund of the month's invoice)" in text(preview)
        assert not Claim.objects.exists()  # a preview files nothing
        visit(page, screenshot, "13-claim-preview")
        page.get_by_role("textbox", name="Note").fill("The backups failed all morning on the 10th.")
        page.get_by_role("button", name="File the claim").click()
        page.wait_for_url(re.compile(r"/claims/\d+/$"))
        claim = Claim.objects.get()
        assert (claim.month, claim.eligible_amount, claim.submitted_by) == (claimable, Decimal("15000.00"), alice)
        assert f"Your claim for {claimable:%B %Y} is filed." in text(page.locator(".messages"))
        visit(page, screenshot, "14-claim-filed")

        # Three months back: its window has closed. Typed into the URL, refused with the moment it was due.
        page.goto(f"/claims/new/?contract={kaluari.pk}&month={late:%Y-%m}")
        page.get_by_role("button", name="Preview the credit").click()
        page.wait_for_load_state("load")
        _, due, _ = claim_window(contract=kaluari, month=late, now=now)
        refusal = f"Claims for {late:%B %Y} closed at {in_tz(due, NBO)} (30 days after the month's end)."
        assert refusal in text(page.locator(".error-summary"))
        assert refusal in text(page.locator(".field.has-error"))
        assert Claim.objects.count() == 1
        visit(page, screenshot, "15-claim-late")

        # The other customer pages: the contract's terms, maintenance (with a calendar feed), the account.
        nav_to(page, "Contracts")
        expect_heading(page, "Cloud Backup for Acme")
        visit(page, screenshot, "16-contract")
        nav_to(page, "Maintenance")
        expect_heading(page, "Maintenance")
        assert "Backup storage upgrade" in text(
            page.locator("section", has=page.get_by_role("heading", name="Upcoming"))
        )
        page.get_by_role("button", name="Create a calendar feed URL").click()
        page.wait_for_load_state("load")
        assert page.get_by_label("Subscribe to your organisation's maintenance").input_value().endswith(".ics")
        visit(page, screenshot, "17-maintenance")
        nav_to(page, "Account")
        expect_heading(page, "Your account")
        visit(page, screenshot, "18-account")


# --- A phone ---------------------------------------------------------------------------------------
def scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_header_is_one_line_at_1280_px_whatever_the_name(logged_in_page, alice):
    User.objects.filter(pk=alice.pk).update(name="Alexandra Wanjiku-Featherstonehaugh")
    Organisation.objects.filter(pk=alice.organisation_id).update(name="Acme Savings and Credit Cooperative Society")
    page = logged_in_page(alice)
    nav = page.get_by_role("navigation", name="Main").bounding_box()
    who = page.locator("header.top .who").bounding_box()
    assert who["y"] < nav["y"] + nav["height"] and page.locator("header.top").bounding_box()["height"] < 60
    assert page.locator(".who-name").get_attribute("title") == (
        "Alexandra Wanjiku-Featherstonehaugh · Acme Savings and Credit Cooperative Society"
    )


def test_the_dashboard_fits_a_phone(logged_in_page, screenshot, alice, kaluari, last_month_closed, csp_violations):
    ticket = ticket_open(
        user=alice, contract=kaluari, service=kaluari.services.get(), priority="P3",
        subject="Restores of the finance share are slow", description="A 2 GB restore takes an hour.",
    )  # fmt: skip
    page = logged_in_page(alice, viewport=PHONE)
    visit(page, screenshot, "20-phone-dashboard")
    assert scroll_width(page) <= PHONE["width"], "the dashboard scrolls sideways on a phone"
    assert ticket.subject in text(page.locator("table"))

    # The nav: every link on the screen, tall enough to tap, and it leads where it says.
    nav = page.get_by_role("navigation", name="Main")
    for link in nav.get_by_role("link").all():
        box = link.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], link.inner_text()
        assert box["height"] >= 24, f"{link.inner_text()} is hard to tap: {box}"
    nav_to(page, "Tickets")
    expect_heading(page, "Tickets")
    screenshot(page, "21-phone-tickets")
    # The ticket list is a card a ticket, its cells named, as the dashboard's: nothing in a box that
    # scrolls sideways (it was an 880-px table).
    table = page.locator("table.tickets")
    assert table.evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth")
    row = page.locator("table.tickets tbody tr").first.bounding_box()
    assert row["x"] >= 0 and row["x"] + row["width"] <= PHONE["width"]
    cell = page.locator('table.tickets tbody tr td[data-label="What to do now"]').first
    assert cell.evaluate("c => getComputedStyle(c, '::before').content") == '"What to do now: "'

    # No other customer page scrolls sideways either: wide tables scroll in their own box.
    for path in (
        f"/tickets/{ticket.pk}/", "/tickets/new/", f"/contracts/{kaluari.pk}/", f"/contracts/{kaluari.pk}/uptime/",
        "/claims/", f"/claims/new/?contract={kaluari.pk}", "/maintenance/", "/account/",
    ):  # fmt: skip
        page.goto(path)
        assert scroll_width(page) <= PHONE["width"], f"{path} scrolls sideways on a phone"
    screenshot(page, "22-phone-account")
    page.goto(f"/contracts/{kaluari.pk}/uptime/")
    screenshot(page, "23-phone-uptime")

    # The CSP guard itself: an inline script is refused, and the refusal is seen (then forgotten).
    with pytest.raises(PlaywrightError, match="Content Security Policy"):
        page.add_script_tag(content="document.title = 'injected'")
    page.wait_for_timeout(200)
    assert page.title() != "injected"
    assert len(csp_violations) == 1 and "Content Security Policy" in csp_violations[0]
    csp_violations.clear()
