"""The public status page and its incident history in a real browser (Playwright driving Debian's
Chromium against the live server), logged out: an open incident with its timeline, past incidents
with a link to each one's page, the history, the Atom feed named in the head. axe-core finds no
serious or critical violation, the CSP refuses nothing, and each page leaves a screenshot in
var/screenshots/. The live server runs on the real clock, so the data is built relative to now."""

from datetime import timedelta

import pytest
from django.utils import timezone

from contracts.maintenance.services import window_publish

from .factories import ServiceFactory
from .status_helpers import publish_incident
from .test_browser import assert_accessible, scroll_width, text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def incidents():
    now = timezone.now()
    backup = ServiceFactory(name="Cloud Backup", slug="cloud-backup")
    assistant = ServiceFactory(name="AI Assistant", slug="ai-assistant")
    opened = publish_incident(
        [backup], now - timedelta(hours=1), title="Backups are failing on the Nairobi cluster",
        updates=[(now - timedelta(minutes=55), "investigating", "Backups started after 10:00 fail. We are investigating."),
                 (now - timedelta(minutes=20), "identified", "A storage node is full; we are moving data off it.")],
    )  # fmt: skip
    start = now - timedelta(days=6)
    past = publish_incident(
        [assistant], start, start + timedelta(hours=2), title="Slow answers from the assistant",
        updates=[(start + timedelta(minutes=5), "investigating", "Answers take 30 s or more."),
                 (start + timedelta(hours=1), "monitoring", "We added capacity and are watching."),
                 (start + timedelta(hours=2), "resolved", "Answers are back to normal.")],
    )  # fmt: skip
    old = now - timedelta(days=130)
    publish_incident(
        [backup], old, old + timedelta(hours=3), title="Restores failed for large archives",
        updates=[(old + timedelta(hours=3), "resolved", "Restores of archives over 2 GB work again.")],
    )  # fmt: skip
    window_publish(
        title="Storage upgrade", description="We upgrade the storage cluster; backups pause.", services=[backup],
        starts_at=now + timedelta(days=3), ends_at=now + timedelta(days=3, hours=2),
    )  # fmt: skip
    return {"open": opened, "past": past}


def test_the_status_page_and_its_history(logged_in_page, screenshot, incidents, csp_violations):
    page = logged_in_page(None)
    page.goto("/status/")
    assert (
        page.locator('link[rel="alternate"][type="application/atom+xml"]').get_attribute("href") == "/status/feed.atom"
    )
    active = page.locator("section", has=page.get_by_role("heading", name="Active incidents"))
    assert "Backups are failing on the Nairobi cluster" in text(active)
    assert "Identified" in text(active) and "A storage node is full" in text(active)
    past = page.locator("section", has=page.get_by_role("heading", name="Past incidents"))
    assert "Slow answers from the assistant" in text(past) and "Answers are back to normal." in text(past)
    assert "Restores failed for large archives" not in text(page.locator("main"))
    assert_accessible(page, "status")
    screenshot(page, "status-01-page")

    past.get_by_role("link", name="Slow answers from the assistant").click()
    page.wait_for_url(f"**/status/incidents/{incidents['past'].pk}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Slow answers from the assistant"
    assert_accessible(page, "incident")
    screenshot(page, "status-02-incident")

    page.get_by_role("link", name="Incident history").first.click()
    page.wait_for_url("**/status/history/")
    main = text(page.locator("main"))
    assert main.index("Backups are failing") < main.index("Slow answers") < main.index("Restores failed")
    assert_accessible(page, "history")
    screenshot(page, "status-03-history")

    phone = logged_in_page(None, viewport={"width": 375, "height": 740})
    phone.goto("/status/history/")
    assert scroll_width(phone) <= 375
    screenshot(phone, "status-04-history-phone")
    assert not csp_violations
