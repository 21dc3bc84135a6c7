"""Proven in a real browser: the outbox admin shows a vulnerability report's emails (its receipt,
the security staff's notice, a staff reply to the reporter, a breach) to security staff alone. Sam,
a support agent, sees the outbox without them; Sol, security staff, sees them and opens the notice
with the report's text. Screenshots in var/screenshots/ (outbox-as-support-agent.png,
outbox-as-security.png, outbox-report-email-as-security.png); axe-core and the CSP pass."""

from datetime import timedelta

import pytest

from portal.core.outbox import Email, outbox_enqueue
from tickets.security import security_report_submit
from tickets.services import ticket_reply
from tickets.sweeps import check_sla_deadlines

from .test_browser import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WORDS = "Stored XSS in the claims CSV export"


def test_the_outbox_admin_shows_a_reports_emails_to_security_staff_alone(logged_in_page, screenshot, sam, sol, alice):
    ticket = security_report_submit(
        email="eve@research.example", name="Eve", summary=WORDS, details="Payload: a formula in a cell."
    )
    ticket_reply(ticket=ticket, author=sol, body="Thanks Eve, we reproduce it.")
    ticket.refresh_from_db()
    check_sla_deadlines(now=ticket.resolution_due + timedelta(minutes=1))  # a breach, mailed to staff
    # An ordinary email beside them, which everyone working tickets sees.
    outbox_enqueue(email=Email(key=f"password-reset:{alice.pk}", to=alice.email, template="password_reset",
                               context={"user": alice, "reset_url": "https://x.test/r/abc"}))  # fmt: skip

    wide = {"width": 1700, "height": 900}  # the keys are long: the subjects stay in view
    page = logged_in_page(sam, viewport=wide)
    page.goto("/admin/portal/outboxmessage/")
    page.wait_for_load_state("load")
    screenshot(page, "outbox-as-support-agent")
    assert_accessible(page, "outbox-as-support-agent")
    listing = page.locator("#result_list").inner_text()
    assert alice.email in listing
    assert "eve@research.example" not in listing and "security-report:" not in listing and sol.email not in listing
    assert WORDS not in page.content() and "Vulnerability report" not in page.content()
    filters = page.locator("#changelist-filter").inner_text()
    # The templates the code has, the vulnerability reports' own only for security staff.
    assert "password_reset" in filters and "ticket_breach_staff" in filters and "security_report" not in filters

    page = logged_in_page(sol, viewport=wide)
    page.goto("/admin/portal/outboxmessage/")
    page.wait_for_load_state("load")
    screenshot(page, "outbox-as-security")
    assert_accessible(page, "outbox-as-security")
    listing = page.locator("#result_list").inner_text()
    assert "eve@research.example" in listing and f"security-report:{ticket.pk}:staff:" in listing
    assert WORDS not in listing  # not even for security staff in a subject: the text is in the bodies
    page.get_by_role("link", name=f"security-report:{ticket.pk}:staff:{sol.email}").click()
    page.wait_for_load_state("load")
    screenshot(page, "outbox-report-email-as-security")
    assert "Payload: a formula in a cell." in page.locator("body").inner_text()
