"""An unbroken string in an incident (a long URL in an update, a log line, a hash in the title) breaks
inside its line rather than widen the page: at 390 px (a phone) the public status page, its incident
page and history, and the customer's dashboard banner and incident page are no wider than the
screen. Playwright driving Debian's Chromium against the live server (real clock)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from .factories import ContractFactory
from .status_helpers import publish_incident
from .test_browser import month_start, scroll_width, today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
URL = "https://logs.example.com/" + "a1b2c3d4e5f6" * 40  # 505 characters, no space
HASH = "sha256:" + "9f86d081884c7d659a2feaa0c55ad015" * 4


@pytest.fixture
def long_incident(acme, alice):
    now = timezone.now()
    contract = ContractFactory(organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme",
                               contacts=[alice], starts_on=month_start(today(), 3))  # fmt: skip
    return publish_incident(
        list(contract.services.all()), now - timedelta(hours=1), title=f"Backups failing for {HASH}",
        updates=[(now - timedelta(minutes=55), "investigating", f"We are investigating. Details: {URL}"),
                 (now - timedelta(minutes=20), "identified", f"Failing job: {HASH}/{URL}")],
    )  # fmt: skip


def test_long_unbroken_text_does_not_widen_the_status_pages_at_390_px(logged_in_page, screenshot, long_incident):
    page = logged_in_page(None, viewport=PHONE)
    for path in ("/status/", f"/status/incidents/{long_incident.pk}/", "/status/history/"):
        page.goto(path)
        assert URL[-30:] in page.locator("main").inner_text()  # shown, broken across lines
        assert scroll_width(page) <= PHONE["width"], path
    screenshot(page, "status-long-text-phone")


def test_long_unbroken_text_does_not_widen_the_customers_pages_at_390_px(
    logged_in_page, screenshot, alice, long_incident
):
    page = logged_in_page(alice, viewport=PHONE)
    page.goto("/")
    assert page.locator("section.incident-banner").count() == 1
    assert scroll_width(page) <= PHONE["width"], "dashboard"
    page.goto(f"/incidents/{long_incident.pk}/")
    assert URL[-30:] in page.locator("main").inner_text()
    assert scroll_width(page) <= PHONE["width"], "incident page"
    screenshot(page, "incident-long-text-phone")
