"""The staff dashboard's day's work in a real browser at 1280 px (issue 21, item 6): the numbers on
top, each opening its filtered list; nothing scrolls sideways; axe-core and the CSP find nothing.
The live server runs on the real clock, so the data is built relative to timezone.now()."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from contracts.maintenance.services import window_publish
from tickets.services import ticket_open, ticket_reply, ticket_request_escalation
from tickets.sweeps import check_sla_deadlines

from .test_browser import assert_accessible, scroll_width
from .test_browser_staff import text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_days_work_fits_1280_px_and_each_number_opens_its_list(
    logged_in_page, screenshot, ayo, sam, acme_contract, alice
):
    now = timezone.now()
    service = acme_contract.services.get()
    ticket_open(user=alice, contract=acme_contract, service=service, priority="P1", subject="Nothing backs up",
                description="Since this morning.", now=now - timedelta(hours=2))  # fmt: skip
    asked = ticket_open(user=alice, contract=acme_contract, service=service, priority="P3",
                        subject="Restores are slow", description="Since Monday.", now=now - timedelta(hours=1))  # fmt: skip
    ticket_reply(ticket=asked, author=sam, body="Looking into it.", now=now - timedelta(minutes=50))
    ticket_request_escalation(ticket=asked, user=alice, reason="We need it today.", now=now - timedelta(minutes=5))
    window_publish(title="Storage firmware", description="", services=[service], starts_at=now - timedelta(minutes=30),
                   ends_at=now + timedelta(minutes=10))  # fmt: skip
    check_sla_deadlines(now=now)

    page = logged_in_page(ayo)
    page.goto("/admin/dashboard/")
    summary = page.get_by_role("list", name="Summary")
    assert "1 breached" in text(summary) and "1 waiting on staff" in text(summary)
    assert "1 escalation request to acknowledge" in text(summary) and "1 maintenance window today" in text(summary)
    assert "Restores are slow" in text(page.locator("#escalations"))
    assert scroll_width(page) <= 1280
    screenshot(page, "staff-today-1280")
    assert_accessible(page, "staff-today-1280")

    summary.get_by_role("link", name="1 waiting on staff").click()
    page.wait_for_url(re.compile(r"sla=waiting_on_staff"))
    assert "Nothing backs up" in text(page.locator("#result_list")) and "Restores" not in text(
        page.locator("#result_list")
    )
    page.go_back()
    summary.get_by_role("link", name="1 escalation request to acknowledge").click()
    page.wait_for_url(re.compile(r"escalationrequest/\?state=pending"))
    assert "Restores are slow" in text(page.locator("#result_list"))
